import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type AppProcess, startApp } from '../support/app-process';
import { REPO_ROOT, run } from '../support/build-once';
import { countBackends } from '../support/pg-activity';
import { parsePrometheusText } from '../support/prometheus-text';

/**
 * The package as npm publishes it: `npm pack` (prepack builds the library), installed with its peers into a new
 * project outside the repository; a TypeScript app compiled against its published types (skipLibCheck off); then a
 * CommonJS and an ESM app in plain JavaScript that import 'nestjs-dbmanager', run as child processes against the
 * embedded PostgreSQL.
 */

interface PackedFile {
  path: string;
}

const postgresUrl = inject('postgresUrl');
const ours = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  devDependencies: Record<string, string>;
};
/** The peers a user installs for a PostgreSQL app, at the exact versions this repository develops against. */
const PEERS = [
  '@nestjs/common',
  '@nestjs/core',
  '@nestjs/platform-express',
  '@nestjs/terminus',
  '@willsoto/nestjs-prometheus',
  'prom-client',
  '@mikro-orm/core',
  '@mikro-orm/postgresql',
  'reflect-metadata',
  'rxjs',
].map((name) => `${name}@${ours.devDependencies[name]}`);
/** What a TypeScript user adds to compile against the published declarations. */
const TYPESCRIPT = ['typescript', '@types/node', '@types/pg'].map((name) => `${name}@${ours.devDependencies[name]}`);

let project: string;
let packedFiles: string[] = [];
let tarball: string;

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), 'dbm-packed-'));
  const packStarted = performance.now();
  // `npm pack` runs prepack (tsc of the library) first; its --json report lists what the tarball holds.
  const report = await run('npm', ['pack', '--json', '--pack-destination', project], REPO_ROOT);
  // The prepack script's banner may precede the JSON on stdout.
  const packed = JSON.parse(report.slice(report.search(/^\[/m))) as Array<{ filename: string; files: PackedFile[] }>;
  packedFiles = packed[0].files.map((f) => f.path);
  tarball = join(project, packed[0].filename);
  const packMs = performance.now() - packStarted;

  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'dbm-packed-consumer', version: '1.0.0', private: true }, null, 2));
  const installStarted = performance.now();
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, ...PEERS, ...TYPESCRIPT], project);
  const installMs = performance.now() - installStarted;
  console.log(`[packed] npm pack (with prepack build): ${Math.round(packMs)} ms; npm install of the tarball + ${PEERS.length} peers and TypeScript: ${Math.round(installMs)} ms`);
  for (const file of ['app.cjs', 'app.mjs', 'consumer.ts', 'tsconfig.json']) copyFileSync(join(REPO_ROOT, 'test/fixtures/packed-app', file), join(project, file));
}, 150_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the compiled library with its type declarations, the README and ops/, and nothing else', () => {
    expect(packedFiles).toContain('package.json');
    expect(packedFiles).toContain('README.md');
    expect(packedFiles).toContain('dist/index.js');
    expect(packedFiles).toContain('dist/index.d.ts');
    // The alert rules (with their promtool tests) and the Grafana dashboard ship for operators.
    for (const file of ['ops/prometheus/alerts.yaml', 'ops/prometheus/tests/alerts_test.yaml', 'ops/grafana/dashboard.json']) expect(packedFiles).toContain(file);
    const js = packedFiles.filter((f) => f.endsWith('.js'));
    expect(js.length).toBeGreaterThan(20);
    for (const file of js) expect(packedFiles, `${file} has no declaration`).toContain(file.replace(/\.js$/, '.d.ts'));
    // The JSON Schema of the YAML config, for editors: nestjs-dbmanager/config.schema.json.
    expect(packedFiles).toContain('config.schema.json');
    const stray = packedFiles.filter((f) => !/^(dist\/.+\.(js|d\.ts|js\.map)|ops\/(prometheus\/(tests\/)?[\w.-]+\.yaml|grafana\/[\w.-]+\.json)|config\.schema\.json|README\.md|package\.json|LICENSE)$/.test(f));
    expect(stray).toEqual([]);
    for (const forbidden of [/^test\//, /^sample-app\//, /node_modules\//, /^bench\//, /^lib\//, /\.test\./]) {
      expect(packedFiles.filter((f) => forbidden.test(f)), String(forbidden)).toEqual([]);
    }
  });

  it('compiles a TypeScript app against its declarations alone (skipLibCheck: false), on the MikroORM major installed', async () => {
    // consumer.ts uses kysely() on MikroORM 7 and knex() on 6: the declarations must hold whichever is installed.
    const started = performance.now();
    // A type error rejects with tsc's report.
    await run(join(project, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], project);
    console.log(`[packed] tsc of consumer.ts against the published types: ${Math.round(performance.now() - started)} ms`);
  }, 60_000);

  it('installs with the peers at our pinned versions', () => {
    const installed = (name: string) => JSON.parse(readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8')).version as string;
    expect(installed('nestjs-dbmanager')).toBe(ours.version);
    expect(installed('@mikro-orm/core')).toBe(ours.devDependencies['@mikro-orm/core']);
    expect(installed('@nestjs/core')).toBe(ours.devDependencies['@nestjs/core']);
  });
});

describe.each([
  { file: 'app.cjs', moduleSystem: 'commonjs', prefix: 'packed-cjs' },
  { file: 'app.mjs', moduleSystem: 'esm', prefix: 'packed-esm' },
])('a $moduleSystem app on the installed package ($file)', ({ file, moduleSystem, prefix }) => {
  let app: AppProcess;

  beforeAll(async () => {
    app = await startApp({ args: [file], cwd: project, env: { PORT: '0', DATABASE_URL: postgresUrl } });
    console.log(`[packed] ${file}: listening after ${Math.round(app.bootMs)} ms`);
  }, 60_000);

  afterAll(() => app?.kill());

  it('answers /health 200 with both named connections up', async () => {
    const response = await fetch(`${app.baseUrl}/health`);
    const body = (await response.json()) as { status: string; details: Record<string, { status: string; type: string }> };
    expect(response.status).toBe(200);
    expect(body.status).toBe('ok');
    expect(Object.keys(body.details).sort()).toEqual(['main', 'reports']);
    for (const name of ['main', 'reports']) expect(body.details[name]).toMatchObject({ status: 'up', type: 'postgres' });
  });

  it('injects a named connection by its token (@InjectConnection without decorator metadata)', async () => {
    const response = await fetch(`${app.baseUrl}/reports/now`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ connection: 'reports', database: new URL(postgresUrl).pathname.slice(1), moduleSystem });
  });

  it('exports dbmanager_connection_status{name=…} for both on /metrics', async () => {
    const response = await fetch(`${app.baseUrl}/metrics`);
    expect(response.status).toBe(200);
    const s = parsePrometheusText(await response.text());
    expect(s.value('dbmanager_connection_status', { name: 'main', type: 'postgres' })).toBe(1);
    expect(s.value('dbmanager_connection_status', { name: 'reports', type: 'postgres' })).toBe(1);
    expect(s.value('dbmanager_connection_pool_size', { name: 'reports', state: 'max' })).toBe(2);
  });

  it('exits 0 on SIGTERM with its PostgreSQL connections closed', async () => {
    expect(await countBackends(postgresUrl, `${prefix}-reports`)).toBeGreaterThanOrEqual(1);
    const exit = await app.stop('SIGTERM');
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(await countBackends(postgresUrl, `${prefix}-main`)).toBe(0);
    expect(await countBackends(postgresUrl, `${prefix}-reports`)).toBe(0);
  });
});
