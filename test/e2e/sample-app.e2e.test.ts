import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { type DatabaseType, METRIC } from '../../lib';
import { mikroOrm } from '../../lib/mikro-orm-version';
import { type AppProcess, startApp } from '../support/app-process';
import { buildIfStale, REPO_ROOT } from '../support/build-once';
import { mariadbUrlOrSkipReason } from '../support/mariadb';
import {
  MIKRO_ORM_MAJOR,
  onlyOnMikroOrm,
  OTHER_QUERY_BUILDER,
  QUERY_BUILDER,
} from '../support/mikro-orm-leg';
import { startMongoWireServer } from '../support/mongo-wire-server';
import { parsePrometheusText } from '../support/prometheus-text';
import { startTdsServer } from '../support/tds-server';
import type { WireServer } from '../support/wire-server';

/**
 * The sample app as a user runs it: `node sample-app/dist/main.js` from the repository root with PORT and DBM_CONFIG,
 * every endpoint exercised over HTTP, then SIGTERM. First on its default SQLite config, then on config.full.yaml with
 * every database type (PostgreSQL embedded, MongoDB and SQL Server wire servers, the local MariaDB).
 */

interface Expected {
  name: string;
  type: DatabaseType;
  /** max_open_conns as configured (SQLite :memory: is always 1). */
  max: number;
}

/** A SQLite connection's max: as configured on MikroORM 6 (a knex pool); 1 on 7, where it is one better-sqlite3 database. */
const sqliteMax = (configured: number) => (MIKRO_ORM_MAJOR === 7 ? 1 : configured);

/** The access paths a SQL connection reads through: the EntityManager, the running major's query builder, the native client. */
const SQL_PATHS = ['em', QUERY_BUILDER, 'native'] as const;

interface Answer {
  status: number;
  body: any;
}

const postgresUrl = inject('postgresUrl');
const mariadb = mariadbUrlOrSkipReason();
const SAMPLE_DB = 'dbm_sample_e2e';
const TDS_PASSWORD = 'Passw0rd!';

beforeAll(async () => {
  await buildIfStale();
}, 180_000);

async function http(app: AppProcess, path: string, init?: RequestInit): Promise<Answer> {
  const response = await fetch(app.baseUrl + path, { ...init, signal: AbortSignal.timeout(15_000) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // /metrics is text
  }
  return { status: response.status, body };
}

/** The first row of whatever a read through em, the query builder or native answered (drivers shape rows differently). */
function firstRow(result: unknown): Record<string, unknown> {
  const rows = Array.isArray(result) ? result : (result as { rows?: unknown[] }).rows;
  return (rows?.[0] ?? {}) as Record<string, unknown>;
}

/** Waits until /health says every connection in `up` is up (critical: false ones may still be connecting). */
async function waitUntilUp(app: AppProcess, up: string[], timeoutMs = 20_000): Promise<void> {
  await vi.waitFor(
    async () => {
      const { body } = await http(app, '/health');
      const notUp = up.filter((name) => body?.details?.[name]?.status !== 'up');
      if (notUp.length) throw new Error(`not up yet: ${notUp.join(', ')}: ${JSON.stringify(body)}\n${app.output().slice(-3000)}`);
    },
    { timeout: timeoutMs, interval: 200 },
  );
}

/**
 * The same HTTP checks for any config: every endpoint, every connection, every access path its type offers.
 * `primaryType` is the type of the connection named primary (whose pool the hold check watches).
 */
function describeEndpoints(ctx: () => { app: AppProcess; up: Expected[]; down?: Expected[] }, primaryType: DatabaseType): void {
  const sql = () => ctx().up.filter((c) => c.type !== 'mongodb');
  const acquiresSkipped =
    primaryType === 'sqlite' ? onlyOnMikroOrm(6, 'counting the acquires of a SQLite connection (on 7 it is one better-sqlite3 database: nothing is acquired)') : undefined;

  it('prints every URL on start', () => {
    const { app } = ctx();
    for (const path of ['/health', '/health/primary', '/metrics', '/stats', '/connections', `/connections/primary/em|${QUERY_BUILDER}|native`, '/connections/primary/hold/', '/notes', '/reports/summary']) {
      expect(app.output()).toContain(app.baseUrl + path);
    }
  });

  it('GET /health answers every connection; /health/<name> each one; /health/unknown 503', async () => {
    const { app, up, down = [] } = ctx();
    const all = await http(app, '/health');
    expect(all.status).toBe(200);
    expect(all.body.status).toBe(down.length ? 'degraded' : 'ok');
    for (const c of up) expect(all.body.details[c.name]).toMatchObject({ status: 'up', type: c.type });
    for (const c of down) expect(all.body.details[c.name]).toMatchObject({ status: 'degraded', type: c.type, critical: false });

    for (const c of up) {
      const one = await http(app, `/health/${c.name}`);
      expect(one.status, c.name).toBe(200);
      expect(Object.keys(one.body.details)).toEqual([c.name]);
      expect(one.body.details[c.name].responseTimeMs).toBeGreaterThanOrEqual(0);
    }
    for (const c of down) {
      const one = await http(app, `/health/${c.name}`);
      expect(one.status, c.name).toBe(200);
      expect(one.body.status, c.name).toBe('degraded');
    }
    const unknown = await http(app, '/health/unknown');
    expect(unknown.status).toBe(503);
    expect(unknown.body.details.unknown).toMatchObject({ status: 'down' });
    expect(unknown.body.details.unknown.message).toContain('unknown');
  });

  it('GET /connections lists every connection with its type, status and tags', async () => {
    const { app, up, down = [] } = ctx();
    const { status, body } = await http(app, '/connections');
    expect(status).toBe(200);
    const byName = Object.fromEntries((body as Array<{ name: string }>).map((c) => [c.name, c]));
    expect(Object.keys(byName).sort()).toEqual([...up, ...down].map((c) => c.name).sort());
    for (const c of up) expect(byName[c.name]).toMatchObject({ type: c.type, status: 'up' });
    expect(byName.primary).toMatchObject({ tags: { role: 'app' } });
  });

  it(`reads through ${SQL_PATHS.join(', ')} on every SQL connection`, async () => {
    const { app } = ctx();
    for (const c of sql()) {
      for (const path of SQL_PATHS) {
        const { status, body } = await http(app, `/connections/${c.name}/${path}`);
        expect(status, `${c.name}/${path}: ${JSON.stringify(body)}`).toBe(200);
        expect(body).toMatchObject({ connection: c.name, type: c.type, path });
        expect(Number(firstRow(body.result).one), `${c.name}/${path}: ${JSON.stringify(body.result)}`).toBe(1);
      }
    }
  });

  it('answers a bad path with 400 and an unknown connection with 404 naming the known ones', async () => {
    const { app } = ctx();
    const badPath = await http(app, '/connections/primary/orm');
    expect(badPath.status).toBe(400);
    expect(badPath.body.message).toBe('path must be em, kysely, knex, native');
    // The other major's query builder is a caller's mistake too, named.
    const otherBuilder = await http(app, `/connections/primary/${OTHER_QUERY_BUILDER}`);
    expect(otherBuilder.status).toBe(400);
    expect(otherBuilder.body).toMatchObject({ error: 'QueryBuilderUnavailableError', connection: 'primary' });
    expect(otherBuilder.body.message).toContain(`Use connection.${QUERY_BUILDER}()`);
    expect(otherBuilder.body.message).toContain(`MikroORM ${mikroOrm().version} runs here`);
    const unknown = await http(app, '/connections/nope/em');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: 'ConnectionNotFoundError', connection: 'nope' });
    expect(unknown.body.message).toContain('Connection "nope" is not registered (known: ');
    expect(unknown.body.message).toContain('primary');
  });

  it('holds a pooled connection (GET /connections/<name>/hold/<ms>) and shows it in use in /metrics meanwhile', async () => {
    const { app } = ctx();
    for (const c of sql()) {
      const { status, body } = await http(app, `/connections/${c.name}/hold/20`);
      expect(status, `${c.name}: ${JSON.stringify(body)}`).toBe(200);
      expect(body).toMatchObject({ connection: c.name, heldMs: 20 });
    }
    const before = parsePrometheusText((await http(app, '/metrics')).body);
    const held = http(app, '/connections/primary/hold/1500');
    await expect
      .poll(async () => parsePrometheusText((await http(app, '/metrics')).body).value(METRIC.poolSize, { name: 'primary', state: 'in_use' }) ?? 0, {
        message: 'primary in use in /metrics',
        timeout: 2_000,
        interval: 20,
      })
      .toBeGreaterThanOrEqual(1);
    expect((await held).status).toBe(200);
    const after = parsePrometheusText((await http(app, '/metrics')).body);
    const acquires = (s: typeof after) => s.value(`${METRIC.acquireDuration}_count`, { name: 'primary' }) ?? 0;
    if (!acquiresSkipped) expect(acquires(after)).toBeGreaterThan(acquires(before));
    expect((await http(app, '/connections/primary/hold/99999')).status).toBe(400);
  });

  it('POST /notes stores a note through the EntityManager and GET /notes lists it first', async () => {
    const { app } = ctx();
    const text = `e2e note ${Date.now()}`;
    const created = await http(app, '/notes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ text });
    expect(created.body.id).toBeGreaterThan(0);
    const listed = await http(app, '/notes');
    expect(listed.status).toBe(200);
    expect(listed.body[0]).toMatchObject({ id: created.body.id, text });
    expect((await http(app, '/notes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(400);
  });

  it('GET /reports/summary reads through the analytics connection’s query builder', async () => {
    const { app, up } = ctx();
    const { status, body } = await http(app, '/reports/summary');
    expect(status).toBe(200);
    expect(body).toMatchObject({ connection: 'analytics', type: up.find((c) => c.name === 'analytics')!.type });
    expect(body.tables).toBeGreaterThanOrEqual(0);
  });

  it('GET /stats reports every connection’s pool', async () => {
    const { app, up, down = [] } = ctx();
    const { status, body } = await http(app, '/stats');
    expect(status).toBe(200);
    expect(body).toMatchObject({ totalConnections: up.length + down.length, healthyCount: up.length, unhealthyCount: down.length });
    for (const c of up) {
      expect(body.connections[c.name], c.name).toMatchObject({ name: c.name, type: c.type, status: 'up', max: c.max, pending: 0, timeouts: 0 });
      expect(body.connections[c.name].lastHealthCheck, c.name).not.toBeNull();
    }
    for (const c of down) expect(body.connections[c.name]).toMatchObject({ status: 'down' });
    expect(body.connections.primary.waitCount).toBeGreaterThanOrEqual(0);
  });

  it('GET /metrics exports every connection’s series with live values', async () => {
    const { app, up, down = [] } = ctx();
    const { status, body } = await http(app, '/metrics');
    expect(status).toBe(200);
    const s = parsePrometheusText(body);
    for (const c of up) {
      expect(s.value(METRIC.status, { name: c.name, type: c.type }), c.name).toBe(1);
      expect(s.value(METRIC.poolSize, { name: c.name, state: 'max' }), c.name).toBe(c.max);
      expect(s.value(`${METRIC.healthCheckDuration}_count`, { name: c.name }), c.name).toBeGreaterThan(0);
    }
    for (const c of down) expect(s.value(METRIC.status, { name: c.name, type: c.type }), c.name).toBe(0);
    for (const type of new Set([...up, ...down].map((c) => c.type))) {
      expect(s.value(METRIC.connections, { type }), type).toBe([...up, ...down].filter((c) => c.type === type).length);
    }
    for (const name of Object.values(METRIC)) expect(s.type(name), name).toBeDefined();
    expect(s.text).toContain('process_resident_memory_bytes');
  });
}

describe('sample app on its default config (SQLite), as `npm start` runs it', () => {
  let dir: string;
  let app: AppProcess;
  // config.yaml sets no max_open_conns: its default, 25.
  const up: Expected[] = [
    { name: 'primary', type: 'sqlite', max: sqliteMax(25) },
    { name: 'analytics', type: 'sqlite', max: sqliteMax(25) },
    { name: 'cache-db', type: 'sqlite', max: 1 },
  ];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dbm-e2e-sample-'));
    // config.yaml as shipped, with its SQLite files in a fresh (not yet existing) folder instead of sample-app/data/.
    const shipped = readFileSync(join(REPO_ROOT, 'sample-app/config.yaml'), 'utf8');
    const config = shipped.replaceAll('./sample-app/data/', `${join(dir, 'data')}/`);
    expect(config.split(join(dir, 'data')).length - 1, 'config.yaml no longer puts two files in ./sample-app/data/').toBe(2);
    writeFileSync(join(dir, 'config.yaml'), config);
    app = await startApp({ args: ['sample-app/dist/main.js'], cwd: REPO_ROOT, env: { PORT: '0', DBM_CONFIG: join(dir, 'config.yaml') } });
    console.log(`[sample e2e] SQLite config: listening after ${Math.round(app.bootMs)} ms`);
    await waitUntilUp(app, up.map((c) => c.name));
  }, 60_000);

  afterAll(() => {
    app?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describeEndpoints(() => ({ app, up }), 'sqlite');

  it(`answers the ${QUERY_BUILDER} path of a SQLite :memory: connection too, and closes on SIGTERM with exit code 0`, async () => {
    expect((await http(app, `/connections/cache-db/${QUERY_BUILDER}`)).status).toBe(200);
    const exit = await app.stop('SIGTERM');
    console.log(`[sample e2e] SQLite config: exited ${exit.code} ${Math.round(exit.ms)} ms after SIGTERM`);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.ms).toBeLessThan(8_000);
    // Terminus logs the deliberate /health/unknown failure; nothing else may be an error.
    const errors = app.output().split('\n').filter((line) => line.includes('ERROR') && !line.includes('Health Check has failed! {"unknown"'));
    expect(errors).toEqual([]);
  });
});

describe('sample app on config.full.yaml: PostgreSQL, SQLite, MongoDB, SQL Server, MariaDB', () => {
  let app: AppProcess;
  let mongo: WireServer;
  let mssql: WireServer;
  let admin: pg.Client;
  const pgUrl = new URL(postgresUrl);
  const up: Expected[] = [];
  const down: Expected[] = [];
  const configured: Expected[] = [
    { name: 'primary', type: 'postgres', max: 10 },
    { name: 'analytics', type: 'postgres', max: 4 },
    { name: 'cache-db', type: 'sqlite', max: 1 },
    { name: 'documents', type: 'mongodb', max: 10 },
    { name: 'sqlserver', type: 'mssql', max: 10 },
    { name: 'orders', type: 'mariadb', max: 10 },
  ];
  for (const c of configured) {
    if (c.type === 'mariadb' && !mariadb.url) {
      console.log(`[sample e2e] config.full.yaml: "orders" (MariaDB) is expected down, its endpoints unchecked: ${mariadb.reason}`);
      down.push(c);
    } else up.push(c);
  }

  /** Server connections the sample app holds in its own database, by application_name. */
  async function backends(): Promise<Record<string, number>> {
    const { rows } = await admin.query<{ name: string; n: string }>(
      'select application_name as name, count(*) as n from pg_stat_activity where datname = $1 group by 1',
      [SAMPLE_DB],
    );
    return Object.fromEntries(rows.map((r) => [r.name, Number(r.n)]));
  }

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: postgresUrl, application_name: 'dbm-test-admin' });
    await admin.connect();
    await admin.query(`drop database if exists ${SAMPLE_DB} with (force)`);
    await admin.query(`create database ${SAMPLE_DB}`);
    mongo = await startMongoWireServer();
    mssql = await startTdsServer({ user: 'sa', password: TDS_PASSWORD });
    const analytics = new URL(postgresUrl);
    analytics.pathname = `/${SAMPLE_DB}`;
    // Only the variables config.full.yaml documents in its header.
    const env = {
      PORT: '0',
      DBM_CONFIG: 'sample-app/config.full.yaml',
      PRIMARY_HOST: pgUrl.hostname,
      PRIMARY_PORT: pgUrl.port,
      PRIMARY_USER: decodeURIComponent(pgUrl.username),
      PRIMARY_PASSWORD: decodeURIComponent(pgUrl.password),
      PRIMARY_DATABASE: SAMPLE_DB,
      ANALYTICS_DSN: analytics.toString(),
      DOCUMENTS_HOST: mongo.host,
      DOCUMENTS_PORT: String(mongo.port),
      SQLSERVER_HOST: mssql.host,
      SQLSERVER_PORT: String(mssql.port),
      SQLSERVER_PASSWORD: TDS_PASSWORD,
      // The TDS test server has no TLS.
      SQLSERVER_SSLMODE: 'disable',
      // Without MariaDB: a port nothing listens on, so "orders" stays down and the app starts anyway.
      ORDERS_DSN: mariadb.url ?? 'mysql://root@127.0.0.1:9/test',
    };
    app = await startApp({ args: ['sample-app/dist/main.js'], cwd: REPO_ROOT, env });
    console.log(`[sample e2e] config.full.yaml: listening after ${Math.round(app.bootMs)} ms`);
    await waitUntilUp(app, up.map((c) => c.name));
  }, 90_000);

  afterAll(async () => {
    app?.kill();
    await mongo?.close();
    await mssql?.close();
    await admin?.query(`drop database if exists ${SAMPLE_DB} with (force)`).catch(() => undefined);
    await admin?.end();
  });

  describeEndpoints(() => ({ app, up, down }), 'postgres');

  it(`reads MongoDB through em and native, and refuses its ${QUERY_BUILDER} and hold paths with 400 NotSqlDatabaseError`, async () => {
    for (const path of ['em', 'native']) {
      const { status, body } = await http(app, `/connections/documents/${path}`);
      expect(status, path).toBe(200);
      expect(body).toMatchObject({ connection: 'documents', type: 'mongodb', path, result: { ok: 1 } });
    }
    const builder = await http(app, `/connections/documents/${QUERY_BUILDER}`);
    expect(builder.status).toBe(400);
    expect(builder.body).toEqual({
      statusCode: 400,
      error: 'NotSqlDatabaseError',
      connection: 'documents',
      message: `Connection "documents" is mongodb, not a SQL database, so ${QUERY_BUILDER}() is not available. Use connection.mongo() or connection.em instead.`,
    });
    const hold = await http(app, '/connections/documents/hold/10');
    expect(hold.status).toBe(400);
    expect(hold.body.message).toContain('so withNativeClient() is not available');
  });

  it('shows its PostgreSQL connections in pg_stat_activity under their application_name', async () => {
    const seen = await backends();
    expect(seen.primary).toBeGreaterThanOrEqual(1);
    expect(seen.analytics).toBeGreaterThanOrEqual(1);
    expect(seen.primary).toBeLessThanOrEqual(10);
    expect(seen.analytics).toBeLessThanOrEqual(4);
  });

  it('never prints a password', () => {
    expect(app.output()).not.toContain(decodeURIComponent(pgUrl.password));
    expect(app.output()).not.toContain(TDS_PASSWORD);
  });

  it('closes every pool on SIGTERM and exits 0: no PostgreSQL connection of the app is left', async () => {
    const exit = await app.stop('SIGTERM');
    console.log(`[sample e2e] config.full.yaml: exited ${exit.code} ${Math.round(exit.ms)} ms after SIGTERM`);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.ms).toBeLessThan(8_000);
    expect(await backends()).toEqual({});
    // The wire servers see the sockets close a moment after the process is gone.
    await vi.waitFor(() => expect([mongo.openSockets, mssql.openSockets], 'MongoDB and SQL Server sockets open').toEqual([0, 0]), { timeout: 5_000 });
  });
});
