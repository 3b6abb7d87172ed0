import { EntitySchema } from '@mikro-orm/core';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { ConnectionFailedError, type DbConnection, DbManager, type DbManagerConfigInput, PoolerRefusedError } from '../../lib';
import { LogCapture } from '../support/health-app';
import { builderQuery, QUERY_BUILDER } from '../support/mikro-orm-leg';
import { peakBackendsDuring } from '../support/pg-activity';
import { pgbouncerBinaryOrSkipReason, startTestPgBouncer, type TestPgBouncer } from '../support/pgbouncer';
import { startTcpProxy } from '../support/tcp-proxy';

// A real PgBouncer (Debian's 1.18) in front of the run's PostgreSQL, in transaction and in session mode. Without
// `pooler`, a startup parameter it refuses (08P01) fails in one attempt and says to set `pooler: pgbouncer`; with it,
// nothing is refused and every setting holds: query_timeout through the protocol's cancel request, schema from the
// server's search_path (or startup refuses), application_name; the native client refuses what transaction pooling breaks.
const { reason: skipReason } = pgbouncerBinaryOrSkipReason();
if (skipReason) console.log(`[pgbouncer] skipped: ${skipReason}`);

const serverUrl = inject('postgresUrl');
/** A database of its own whose search_path the server sets (ALTER DATABASE), as the README tells users to do. */
const SCHEMA_DB = 'dbm_bouncer_db';
const SCHEMA = 'dbm_bouncer';

interface BouncerItem {
  id: number;
  label: string;
}
const BouncerItemSchema = new EntitySchema<BouncerItem>({
  name: 'BouncerItem',
  tableName: 'bouncer_items',
  properties: { id: { type: 'number', primary: true, autoincrement: true }, label: { type: 'string' } },
});

/** Runs statements on the server itself (not through PgBouncer), in `database`. */
async function onServer<R = Record<string, unknown>>(statement: string, database?: string): Promise<R[]> {
  const url = new URL(serverUrl);
  if (database) url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString(), application_name: 'dbm-test-observer' });
  await client.connect();
  try {
    return (await client.query(statement)).rows as R[];
  } finally {
    await client.end();
  }
}

/** `em.execute` on a fork: MikroORM's own path for raw SQL (both majors). */
function emExecute(db: DbConnection, statement: string): Promise<Array<Record<string, unknown>>> {
  return (db.em.fork() as unknown as { execute(sql: string): Promise<Array<Record<string, unknown>>> }).execute(statement);
}

/** A statement on a native client the connection lends: the pg client's own `query`. */
function nativeQuery(db: DbConnection, statement: string): Promise<Array<Record<string, unknown>>> {
  return db.withNativeClient(async (client: pg.Client) => (await client.query(statement)).rows);
}

/** The three SQL paths besides entities, by name. */
const PATHS: ReadonlyArray<[string, (db: DbConnection, statement: string) => Promise<Array<Record<string, unknown>>>]> = [
  [QUERY_BUILDER, (db, statement) => builderQuery(db, statement)],
  ['em.execute', emExecute],
  ['native client', nativeQuery],
];

beforeAll(async () => {
  if (skipReason) return;
  const exists = await onServer(`select 1 from pg_database where datname = '${SCHEMA_DB}'`);
  if (!exists.length) await onServer(`create database ${SCHEMA_DB}`);
  await onServer(`create schema if not exists ${SCHEMA}; create table if not exists ${SCHEMA}.bouncer_items (id serial primary key, label text)`, SCHEMA_DB);
  await onServer(`alter database ${SCHEMA_DB} set search_path = ${SCHEMA}, public`);
});

describe.skipIf(skipReason !== undefined).each([['transaction' as const], ['session' as const]])('behind PgBouncer in %s mode', (mode) => {
  let bouncer: TestPgBouncer;
  let managers: DbManager[] = [];
  let seq = 0;

  /** A manager with one connection `b` through PgBouncer, under an application_name of its own. */
  async function throughBouncer(fields: Record<string, unknown> = {}, manager: Record<string, unknown> = {}): Promise<{ db: DbConnection; app: string; m: DbManager }> {
    const app = `dbm-bouncer-${mode}-${process.pid}-${++seq}`;
    const config = { retry_attempts: 1, ...manager, connections: { b: { type: 'postgres', dsn: bouncer.url, pooler: 'pgbouncer', application_name: app, ...fields } } };
    const m = await DbManager.create(config as DbManagerConfigInput);
    managers.push(m);
    return { db: m.get('b'), app, m };
  }

  beforeAll(async () => {
    bouncer = await startTestPgBouncer(serverUrl, { poolMode: mode, defaultPoolSize: 5 });
  });
  afterEach(async () => {
    await Promise.all(managers.map((m) => m.close()));
    managers = [];
    Logger.overrideLogger(new Logger());
  });
  afterAll(async () => {
    await bouncer?.close();
  });

  it.each([
    ['query_timeout (its default, 30s)', 'statement_timeout', 'query_timeout', {}],
    ['schema', 'options', 'schema', { query_timeout: 0, schema: SCHEMA }],
  ])('without pooler, %s is refused as a startup parameter: one attempt, and the message says to set pooler: pgbouncer', async (_what, parameter, field, fields) => {
    const logs = new LogCapture();
    Logger.overrideLogger(logs);
    const started = performance.now();
    const error = await DbManager.create({
      retry_attempts: 3,
      retry_delay: '200ms',
      connections: { pooled: { type: 'postgres', dsn: bouncer.url, connect_timeout: '2s', ...fields } },
    }).then(
      () => new Error('startup should have failed'),
      (e: unknown) => e as Error,
    );
    const ms = Math.round(performance.now() - started);
    console.log(`[pgbouncer] startup through PgBouncer sending ${parameter}: failed in ${ms} ms: ${error.message}`);

    expect(error).toBeInstanceOf(ConnectionFailedError);
    const failure = error as ConnectionFailedError;
    expect(failure.attempts).toBe(1);
    expect(failure.retryable).toBe(false);
    expect(failure.message).toContain(`failed after 1 attempt: unsupported startup parameter: ${parameter} (08P01): `);
    expect(failure.message).toContain(`refuses the startup parameter ${parameter}, which ${field} sends: set pooler: pgbouncer on this connection`);
    expect(failure.message).toMatch(/A retry cannot fix this error/);
    expect((failure.cause as { code?: string }).code).toBe('08P01');
    expect(logs.matching('DbManager', /attempt \d+ failed/)).toEqual([]);
    expect(bouncer.log()).toMatch(new RegExp(`unsupported startup parameter: ${parameter}`));
  });

  it('with pooler: pgbouncer it starts on the defaults: no startup parameter refused, and application_name reaches the server', async () => {
    const before = bouncer.log().match(/unsupported startup parameter/g)?.length ?? 0;
    const { db, app } = await throughBouncer();
    for (const [, run] of PATHS) {
      const [row] = await run(db, "select current_setting('application_name') as app");
      expect(row.app).toBe(app);
    }
    // The server's own view while one of our statements runs.
    const running = builderQuery(db, 'select pg_sleep(0.5)');
    await vi.waitFor(async () => {
      const rows = await onServer(`select application_name from pg_stat_activity where query = 'select pg_sleep(0.5)' and state = 'active'`);
      expect(rows.map((r) => r.application_name)).toEqual([app]);
    }, { timeout: 3_000, interval: 50 });
    await running;
    expect(bouncer.log().match(/unsupported startup parameter/g)?.length ?? 0).toBe(before);
  });

  it.each(PATHS)('query_timeout holds through %s: cancelled by the cancel request PgBouncer forwards, and the connection stays usable', async (path, run) => {
    const logs = new LogCapture();
    Logger.overrideLogger(logs);
    const { db } = await throughBouncer({ max_open_conns: 1, query_timeout: '500ms' });
    const sleep = `select pg_sleep(5) as "${mode}-${path}"`;
    const started = performance.now();
    const error = await run(db, sleep).then(
      (): Error & { code?: string } => new Error('the statement should have been cancelled'),
      (e: unknown) => e as Error & { code?: string },
    );
    const ms = Math.round(performance.now() - started);
    console.log(`[pgbouncer] ${mode} mode, ${path}: a 5 s statement under query_timeout 500ms failed after ${ms} ms: ${error.message}`);
    expect(error.code).toBe('57014');
    // knex (MikroORM 6) puts the SQL in front of every error message.
    expect(error.message).toMatch(/Connection "b": the statement ran longer than query_timeout \(500 ms\) and was cancelled \(canceling statement due to user request\)/);
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(2_500);
    // The server stopped it (not only the client gave up), and the same one pooled connection serves the next statement.
    expect(await onServer(`select pid from pg_stat_activity where query = '${sleep.replaceAll("'", "''")}' and state = 'active'`)).toEqual([]);
    const [row] = await run(db, 'select 1 as ok');
    expect(row.ok).toBe(1);
    expect(db.stats()).toMatchObject({ open: 1, inUse: 0 });
    // The check at open found pg's cancel key on the lent client (no false "no cancel key" warning).
    expect(logs.matching(/DbManager/, /cancel key/)).toEqual([]);
  });

  it('query_timeout still holds when the cancel request is lost: the connection is torn down after a grace period', async () => {
    // Between us and PgBouncer, a proxy that turns into a black hole: the statement's answer and its cancel are lost.
    const proxy = await startTcpProxy({ host: bouncer.host, port: bouncer.port });
    try {
      const url = new URL(bouncer.url);
      url.port = String(proxy.port);
      const { db } = await throughBouncer({ dsn: url.toString(), max_open_conns: 1, query_timeout: '300ms' });
      proxy.blackhole();
      const started = performance.now();
      const error = await builderQuery(db, 'select 1').then(
        () => new Error('the statement should have failed'),
        (e: unknown) => e as Error,
      );
      const ms = Math.round(performance.now() - started);
      console.log(`[pgbouncer] ${mode} mode: cancel lost, the statement failed after ${ms} ms: ${error.message}`);
      expect(error.message).toMatch(/Connection "b": the statement ran longer than query_timeout \(300 ms\) and its connection was torn down \(no answer to the cancel request\)/);
      expect(ms).toBeGreaterThanOrEqual(2_250);
      expect(ms).toBeLessThan(6_000);
      proxy.forward();
      const [row] = await builderQuery(db, 'select 1 as ok');
      expect(row.ok).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('schema without a server-side search_path: startup refuses in one attempt, naming the server-side fix', async () => {
    const error = await throughBouncer({ schema: SCHEMA }, { retry_attempts: 3, retry_delay: '200ms' }).then(
      () => new Error('startup should have failed'),
      (e: unknown) => e as Error,
    );
    console.log(`[pgbouncer] ${mode} mode, schema without a server-side search_path: ${error.message}`);
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect((error as ConnectionFailedError).attempts).toBe(1);
    expect((error as ConnectionFailedError).cause).toBeInstanceOf(PoolerRefusedError);
    expect(error.message).toContain(`Connection "b" (pooler: pgbouncer): schema "${SCHEMA}" is not first on the server's search_path`);
    expect(error.message).toContain(`SET search_path = "${SCHEMA}", public`);
    expect(error.message).toMatch(/ALTER ROLE .* IN DATABASE .* SET search_path/);
    expect(error.message).toContain("connect_query='SET search_path");
  });

  it('schema with the server-side search_path: EM entities, the query builder, em.execute and the native client all write to it', async () => {
    const { db } = await throughBouncer({ dsn: bouncer.urlOf(SCHEMA_DB), schema: SCHEMA, mikro_orm: { entities: [BouncerItemSchema] } });
    const tag = `${mode}-${process.pid}`;
    const em = db.em.fork();
    em.persist(em.create(BouncerItemSchema, { label: `${tag} orm` }));
    await em.flush();
    for (const [path, run] of PATHS) await run(db, `insert into bouncer_items (label) values ('${tag} ${path}')`);
    const rows = await onServer<{ label: string }>(`select label from ${SCHEMA}.bouncer_items where label like '${tag} %' order by id`, SCHEMA_DB);
    expect(rows.map((r) => r.label)).toEqual([`${tag} orm`, ...PATHS.map(([path]) => `${tag} ${path}`)]);
    expect(await onServer(`select 1 from information_schema.tables where table_schema = 'public' and table_name = 'bouncer_items'`, SCHEMA_DB)).toEqual([]);
  });

  it('the native client refuses what transaction pooling breaks, and lets transaction-scoped forms through', async () => {
    const { db } = await throughBouncer();
    const refused = [
      { name: 'dbm_named', text: 'select 1' },
      "set statement_timeout = '1h'",
      'reset all',
      'listen dbm_channel',
      'select pg_advisory_lock(42)',
      'prepare dbm_prepared as select 1',
    ];
    for (const statement of refused) {
      const error = await db.withNativeClient((client: pg.Client) => client.query(statement as string)).then(
        () => new Error(`${JSON.stringify(statement)} should have been refused`),
        (e: unknown) => e as Error,
      );
      expect(error, JSON.stringify(statement)).toBeInstanceOf(PoolerRefusedError);
      expect(error.message).toMatch(/^Connection "b" \(pooler: pgbouncer\): .* needs the server session to outlive the transaction.*Instead: /);
    }
    // A callback caller hears it through its callback.
    const viaCallback = await db.withNativeClient(
      (client: pg.Client) => new Promise<unknown>((resolve) => client.query('listen dbm_channel', (error: unknown) => resolve(error))),
    );
    expect(viaCallback).toBeInstanceOf(PoolerRefusedError);
    const inTransaction = await db.withNativeClient(async (client: pg.Client) => {
      await client.query('begin');
      await client.query("set local statement_timeout = '5s'");
      await client.query('select pg_advisory_xact_lock(42)');
      const { rows } = await client.query("select current_setting('statement_timeout') as timeout");
      await client.query('commit');
      return rows[0].timeout;
    });
    expect(inTransaction).toBe('5s');
  });

  it('health and stats through PgBouncer', async () => {
    const { db, m } = await throughBouncer({ max_open_conns: 3 });
    expect((await m.healthCheck()).b).toMatchObject({ status: 'up' });
    await Promise.all(Array.from({ length: 6 }, () => builderQuery(db, 'select pg_sleep(0.05)')));
    const stats = m.stats();
    expect(stats).toMatchObject({ totalConnections: 1, healthyCount: 1 });
    expect(stats.connections.b).toMatchObject({ status: 'up', max: 3, inUse: 0, pending: 0, lastError: null });
    expect(stats.connections.b.open).toBeGreaterThanOrEqual(1);
    expect(stats.connections.b.open).toBeLessThanOrEqual(3);
  });

  // Session mode gives each client a server connection for its whole life: a pool larger than default_pool_size
  // would leave its extra clients queued in PgBouncer, so there the pool is sized to it (the README's sizing rule).
  const poolSize = mode === 'transaction' ? 20 : 5;
  it(`200 concurrent queries from a pool of ${poolSize} through PgBouncer's 5 server connections all succeed`, async () => {
    const { db, app } = await throughBouncer({ max_open_conns: poolSize, max_idle_conns: poolSize });
    const started = performance.now();
    const work = Promise.allSettled(Array.from({ length: 200 }, (_, i) => PATHS[i % PATHS.length][1](db, 'select pg_sleep(0.01), 1 as one')));
    const peak = await peakBackendsDuring(serverUrl, app, work);
    const results = await work;
    const ms = Math.round(performance.now() - started);
    const failed = results.filter((r) => r.status === 'rejected');
    console.log(`[pgbouncer] ${mode} mode: 200 queries, pool ${poolSize}, 5 server connections: ${failed.length} failed, ${ms} ms, server backends peak ${peak}, pool open ${db.stats().open}`);
    expect(failed).toEqual([]);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(5);
    expect(db.stats().open).toBeLessThanOrEqual(poolSize);
  });

  it('PgBouncer killed and restarted: queries fail while it is gone, and none fails once it is back', async () => {
    const { db } = await throughBouncer({ max_open_conns: 4 }, { health_check_interval: '200ms', retry_delay: '50ms', retry_max_delay: '200ms' });
    await Promise.all(Array.from({ length: 8 }, () => builderQuery(db, 'select pg_sleep(0.02)')));
    await bouncer.kill();
    await expect(builderQuery(db, 'select 1')).rejects.toThrow();
    await vi.waitFor(() => expect(db.status).toBe('down'), { timeout: 5_000 });

    await bouncer.start();
    const back = performance.now();
    let firstGood: number | undefined;
    await vi.waitFor(
      async () => {
        await builderQuery(db, 'select 1');
        firstGood ??= performance.now() - back;
      },
      { timeout: 10_000, interval: 10 },
    );
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => PATHS[i % PATHS.length][1](db, 'select 1 as one')));
    const failed = results.filter((r) => r.status === 'rejected');
    await vi.waitFor(() => expect(db.status).toBe('up'), { timeout: 5_000 });
    console.log(`[pgbouncer] ${mode} mode: PgBouncer restarted; first good query ${Math.round(firstGood!)} ms after it listened again; then ${failed.length} of 100 failed`);
    expect(failed).toEqual([]);
  });
});
