import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mikroOrm } from '../../lib/mikro-orm-version';

// The built library in a fresh Node process where the database driver packages cannot be resolved, as on a machine
// where the user never installed them: a SQLite app must still work (nothing imports a driver it does not use), and a
// connection of a missing type must fail at once with DriverNotInstalledError.

const MISSING = ['@mikro-orm/postgresql', '@mikro-orm/mssql', '@mikro-orm/mongodb', '@mikro-orm/mysql', '@mikro-orm/mariadb'];
const THEIR_CLIENTS = ['pg', 'tedious', 'mongodb', 'mysql2', 'mariadb', 'mariadb/callback'];

/** Runs in the child: hides the packages from require() and import(), then reports what the library did. */
const PROBE = `
const Module = require('node:module');
const hidden = JSON.parse(process.env.DBM_HIDDEN);
const notFound = (name, code) => Object.assign(new Error("Cannot find module '" + name + "'"), { code });
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (hidden.includes(request)) throw notFound(request, 'MODULE_NOT_FOUND');
  return resolveFilename.call(this, request, ...rest);
};
Module.register('data:text/javascript,' + encodeURIComponent(
  'const hidden = ' + JSON.stringify(hidden) + ';' +
  'export async function resolve(s, c, next) {' +
  '  if (hidden.includes(s)) throw Object.assign(new Error("Cannot find package " + s), { code: "ERR_MODULE_NOT_FOUND" });' +
  '  return next(s, c);' +
  '}'));
const { DbManager } = require(process.env.DBM_LIB);
(async () => {
  const out = {};
  const m = await DbManager.create({ connections: { local: { type: 'sqlite', filepath: ':memory:' } } });
  out.sqlite = (await m.get('local').healthCheck()).status;
  await m.close();
  for (const type of ['mssql', 'mongodb', 'mysql', 'mariadb']) {
    const started = Date.now();
    out[type] = await DbManager.create({ retry_attempts: 5, connections: { things: { type, host: '127.0.0.1', database: 'app' } } }).then(
      () => ({ name: 'connected?!' }),
      (e) => ({ name: e.name, message: e.message, connectionName: e.connectionName, ms: Date.now() - started }),
    );
  }
  process.stdout.write('\\nRESULT:' + JSON.stringify(out) + '\\n');
})().catch((e) => { process.stdout.write('\\nRESULT:' + JSON.stringify({ crashed: String(e && e.stack || e) }) + '\\n'); });
`;

describe('driver packages that are not installed', () => {
  const root = join(__dirname, '..', '..');
  const outDir = join(root, '.tmp', `driver-packages-${process.pid}`);
  let result: Record<string, { name: string; message: string; connectionName: string; ms: number }> & { sqlite?: string; crashed?: string };

  beforeAll(async () => {
    // Built into the repository (git-ignored .tmp/) so the child resolves everything else from node_modules.
    mkdirSync(outDir, { recursive: true });
    const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(outDir, 'lib'), '--declaration', 'false', '--sourceMap', 'false', '--inlineSources', 'false']);
    writeFileSync(join(outDir, 'probe.cjs'), PROBE);
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(outDir, 'probe.cjs')],
        { cwd: root, timeout: 60_000, env: { ...process.env, DBM_LIB: join(outDir, 'lib', 'index.js'), DBM_HIDDEN: JSON.stringify([...MISSING, ...THEIR_CLIENTS]) } },
        (error, out) => (error ? reject(error) : resolve(out)),
      ),
    );
    result = JSON.parse(stdout.split('\nRESULT:')[1]);
  }, 120_000);

  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('a SQLite-only app runs: no other driver package is imported', () => {
    expect(result.crashed).toBeUndefined();
    expect(result.sqlite).toBe('up');
  });

  it.each([
    ['mssql', '@mikro-orm/mssql'],
    ['mongodb', '@mikro-orm/mongodb'],
    ['mysql', '@mikro-orm/mysql'],
    ['mariadb', '@mikro-orm/mariadb'],
  ])('%s fails at once with DriverNotInstalledError naming the connection and the npm i line', (type, pkg) => {
    const error = result[type];
    expect(error).toMatchObject({ name: 'DriverNotInstalledError', connectionName: 'things' });
    // The install line pins the MikroORM version that runs (7.2.1 or 6.6.16): every @mikro-orm/* package must match it.
    expect(error.message).toBe(`Connection "things" has type "${type}", but its driver package ${pkg} is not installed. Run: npm i -E ${pkg}@${mikroOrm().version}`);
    // No retry for a missing package (retry_attempts 5, first backoff 1 s).
    expect(error.ms).toBeLessThan(900);
  });
});
