import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EntitySchema } from '@mikro-orm/core';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { type ConnectionOptionsInput, DbManager, DbManagerConfigError, type DbManagerConfigInput } from '../../lib';
import { LogCapture, startHealthApp } from '../support/health-app';
import { builderQuery, nativeQuery, schemaOf, sqlRunner } from '../support/mikro-orm-leg';
import { mariadbUrlOrSkipReason } from '../support/mariadb';
import { startMongoWireServer } from '../support/mongo-wire-server';
import { startTdsServer } from '../support/tds-server';
import { countBackends } from '../support/pg-activity';

// One database per tenant, few of them busy: lazy connections open no pool until first used, and idle_pool_timeout
// closes a pool nobody used for that long; every access path opens it again by itself. Server connections are
// counted in pg_stat_activity by each tenant's application_name.
const url = inject('postgresUrl');
let seq = 0;
const cleanups: (() => Promise<unknown>)[] = [];
let logs: LogCapture;

// Each test: an app started by a test (startHealthApp) installs its own logger in Nest's static Logger.
beforeEach(() => {
  logs = new LogCapture();
  Logger.overrideLogger(logs);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function manager(config: DbManagerConfigInput): Promise<DbManager> {
  const m = await DbManager.create(config);
  cleanups.push(() => m.close());
  return m;
}

/** `count` PostgreSQL tenants with application_names `<prefix>-<i>`. */
function pgTenants(count: number, extra: Partial<ConnectionOptionsInput> = {}): { prefix: string; connections: Record<string, ConnectionOptionsInput> } {
  const prefix = `dbm-tenant-${process.pid}-${++seq}`;
  const connections: Record<string, ConnectionOptionsInput> = {};
  for (let i = 0; i < count; i++) connections[`t${i}`] = { type: 'postgres', dsn: url, application_name: `${prefix}-${i}`, ...extra } as ConnectionOptionsInput;
  return { prefix, connections };
}

/** Server connections of every tenant whose application_name starts with `prefix`. */
async function backendsOf(prefix: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, application_name: 'dbm-test-observer' });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>("select count(*) as n from pg_stat_activity where application_name like $1 || '-%'", [prefix]);
    return Number(rows[0].n);
  } finally {
    await client.end();
  }
}

interface Note {
  id: number;
  body: string;
}
const NoteSchema = new EntitySchema<Note>({
  name: 'Note',
  tableName: 'tenant_note',
  properties: { id: { type: 'number', primary: true }, body: { type: 'string' } },
});

describe('lazy tenants', () => {
  it('open no pool at startup, report idle as healthy, and reach the server only for the tenants used', async () => {
    const { prefix, connections } = pgTenants(200, { lazy: true });
    const started = performance.now();
    const m = await manager({ health_check_interval: '100ms', connections });
    const startupMs = performance.now() - started;
    expect(m.names()).toHaveLength(200);
    expect(new Set(m.all().map((c) => c.status))).toEqual(new Set(['idle']));
    // Loose: the bench measures it; 200 eager PostgreSQL pools took seconds.
    expect(startupMs).toBeLessThan(3_000);

    const health = await m.healthCheck();
    expect(health.t7).toEqual({ status: 'up', responseTimeMs: 0, idle: true });
    expect(m.stats()).toMatchObject({ totalConnections: 200, healthyCount: 200, unhealthyCount: 0 });
    expect(m.stats().connections.t7).toMatchObject({ status: 'idle', open: 0, inUse: 0 });
    // The loop ran several times meanwhile: it pinged none of them (a ping would open a pool).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await backendsOf(prefix)).toBe(0);

    // First use, through every access path: the EntityManager (a fork), the query builder, the native client.
    const [a, b, c] = [m.get('t1'), m.get('t2'), m.get('t3')];
    expect(await a.em.fork().getConnection().execute('select 1 as one')).toEqual([{ one: 1 }]);
    expect(await builderQuery(b, 'select 2 as two')).toEqual([{ two: 2 }]);
    expect(await nativeQuery(c, 'select 3 as three')).toEqual([{ three: 3 }]);
    expect([a.status, b.status, c.status]).toEqual(['up', 'up', 'up']);
    expect(m.get('t4').status).toBe('idle');
    const used = await backendsOf(prefix);
    expect(used).toBeGreaterThanOrEqual(3);
    expect(used).toBeLessThanOrEqual(3 * 2); // each pool, plus at most a ping's own connection
    for (const name of ['t1', 't2', 't3']) expect(await countBackends(url, `${prefix}-${name.slice(1)}`)).toBeGreaterThanOrEqual(1);
  });

  it('/health shows idle tenants up with idle: true and pings none of them; readiness passes; the ORM is built only when used', async () => {
    const { prefix, connections } = pgTenants(100, { lazy: true });
    const h = await startHealthApp({ health_check_interval: '100ms', connections: { home: { type: 'sqlite', filepath: ':memory:' }, ...connections } });
    cleanups.push(() => h.close());
    let pings = 0;
    for (const c of h.manager.all()) if (c.name !== 'home') c.on('healthCheck', () => pings++);
    const health = await h.get('/health');
    expect(health.status).toBe(200);
    expect(health.body.details.t42).toEqual({ status: 'up', type: 'postgres', critical: true, responseTimeMs: 0, idle: true });
    expect((await h.get('/health/ready')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(pings).toBe(0);
    expect(await backendsOf(prefix)).toBe(0);
    // Nest resolved every tenant's injection tokens at startup without building a MikroORM instance for any of them.
    expect(h.manager.all().filter((c) => c.ormBuilt).map((c) => c.name)).toEqual(['home']);
  });

  it('add() of a lazy connection resolves at once, idle, even when its server is unreachable', async () => {
    const m = await manager({ connections: pgTenants(1).connections });
    const started = performance.now();
    const tenant = await m.add('nowhere', { type: 'postgres', host: '127.0.0.1', port: 1, database: 'x', lazy: true, connect_timeout: '2s' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(tenant.status).toBe('idle');
    // Its first use fails with the connect error and leaves it down.
    await expect(tenant.em.fork().getConnection().execute('select 1')).rejects.toThrow(/ECONNREFUSED|connect/);
    expect(tenant.status).toBe('down');
    expect(m.stats().unhealthyCount).toBe(1);
  });

  it('a lazy tenant refused by a connection limit does not fail startup; its first use fails, then it works once there is room', async () => {
    const role = `dbm_tenant_limited_${process.pid}_${++seq}`;
    const admin = new pg.Client({ connectionString: url, application_name: 'dbm-test-admin' });
    await admin.connect();
    cleanups.push(async () => {
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`);
      await vi.waitFor(async () => expect((await admin.query(`select 1 from pg_stat_activity where usename = '${role}'`)).rows).toEqual([]), { timeout: 5_000 });
      await admin.query(`drop role ${role}`);
      await admin.end();
    });
    await admin.query(`create role ${role} login password 'pw' connection limit 1`);
    const roleUrl = new URL(url);
    roleUrl.username = role;
    roleUrl.password = 'pw';
    const occupier = new pg.Client({ connectionString: roleUrl.toString() });
    await occupier.connect();

    const m = await manager({
      health_check_interval: '200ms',
      retry_delay: '50ms',
      retry_max_delay: '200ms',
      connections: { tenant: { type: 'postgres', dsn: roleUrl.toString(), lazy: true, max_open_conns: 1 } },
    });
    const tenant = m.get('tenant');
    expect(tenant.status).toBe('idle');
    await expect(tenant.em.fork().getConnection().execute('select 1')).rejects.toThrow(/too many connections|connection limit/);
    expect(tenant.status).toBe('down');

    await occupier.end();
    await vi.waitFor(() => expect(tenant.status).toBe('up'), { timeout: 10_000 });
    expect(await tenant.em.fork().getConnection().execute('select 1 as one')).toEqual([{ one: 1 }]);
  });
});

interface Doc {
  _id: unknown;
  name: string;
}
const DocSchema = new EntitySchema<Doc>({ name: 'TenantDoc', properties: { _id: { type: 'ObjectId', primary: true }, name: { type: 'string' } } });

describe('idle_pool_timeout', () => {
  it('MongoDB tenants: the client handle and the EntityManager reopen a lazy or idle client', async () => {
    const wire = await startMongoWireServer();
    cleanups.push(() => wire.close());
    const m = await manager({
      connections: {
        docs: { type: 'mongodb', host: wire.host, port: wire.port, database: 'tenant', lazy: true, idle_pool_timeout: '1s', mikro_orm: { entities: [DocSchema] } },
      },
    });
    const tenant = m.get('docs');
    expect(tenant.status).toBe('idle');
    expect(wire.connectionsAccepted).toBe(0);
    const client = tenant.mongo<{ db(name: string): { command(c: object): Promise<{ ok: number }> } }>();
    expect(await client.db('tenant').command({ ping: 1 })).toMatchObject({ ok: 1 });
    expect(tenant.status).toBe('up');
    await vi.waitFor(() => expect(tenant.status).toBe('idle'), { timeout: 5_000, interval: 50 });
    expect(tenant.stats()).toMatchObject({ open: 0 });
    expect(await tenant.em.fork().find(DocSchema, {})).toEqual([]);
    expect(tenant.status).toBe('up');
    await vi.waitFor(() => expect(tenant.status).toBe('idle'), { timeout: 5_000, interval: 50 });
    // The handle kept from before still reaches the reopened client.
    expect(await client.db('tenant').command({ ping: 1 })).toMatchObject({ ok: 1 });
  });

  it('closes a pool unused that long (pings are not use) and every access path reopens it', async () => {
    const { prefix, connections } = pgTenants(1, { idle_pool_timeout: '1s' });
    const m = await manager({ health_check_interval: '100ms', connections });
    const tenant = m.get('t0');
    expect(tenant.status).toBe('up');
    // A query builder kept from before the pool closes still works after.
    const kept = sqlRunner(tenant);
    expect(await kept.query('select 1 as one')).toEqual([{ one: 1 }]);

    await vi.waitFor(() => expect(tenant.status).toBe('idle'), { timeout: 5_000, interval: 50 });
    await vi.waitFor(async () => expect(await backendsOf(prefix)).toBe(0), { timeout: 5_000 });
    expect(m.stats()).toMatchObject({ healthyCount: 1 });

    expect(await kept.query('select 2 as two')).toEqual([{ two: 2 }]);
    expect(tenant.status).toBe('up');
    await vi.waitFor(() => expect(tenant.status).toBe('idle'), { timeout: 5_000, interval: 50 });
    expect(await nativeQuery(tenant, 'select 3 as three')).toEqual([{ three: 3 }]);
    await vi.waitFor(() => expect(tenant.status).toBe('idle'), { timeout: 5_000, interval: 50 });
    expect(await tenant.em.fork().getConnection().execute('select 4 as four')).toEqual([{ four: 4 }]);
    expect(await backendsOf(prefix)).toBeGreaterThanOrEqual(1);
  });

  const mariadb = mariadbUrlOrSkipReason();
  if (mariadb.reason) console.log(`[many-tenants] MariaDB tenants skipped: ${mariadb.reason}`);
  it.skipIf(!mariadb.url).each(['mysql', 'mariadb'] as const)('%s tenants on a real MariaDB: lazy, closed when idle, reopened by the builder and the EntityManager', async (type) => {
    const m = await manager({ connections: { shop: { type, dsn: mariadb.url!, lazy: true, idle_pool_timeout: '1s' } } });
    const tenant = m.get('shop');
    expect(tenant.status).toBe('idle');
    expect(await builderQuery(tenant, 'select 1 as one')).toEqual([{ one: 1 }]);
    expect(tenant.status).toBe('up');
    await vi.waitFor(() => expect(tenant.status).toBe('idle'), { timeout: 5_000, interval: 50 });
    expect(tenant.stats()).toMatchObject({ open: 0 });
    expect(await tenant.em.fork().getConnection().execute('select 2 as two')).toEqual([{ two: 2 }]);
    expect(tenant.status).toBe('up');
  });

  it('SQL Server tenants (TDS wire server): lazy, closed when idle, reopened by the EntityManager', async () => {
    const tds = await startTdsServer({ user: 'sa', password: 'Wire-secret-1' });
    cleanups.push(() => tds.close());
    const m = await manager({
      connections: { ledger: { type: 'mssql', host: tds.host, port: tds.port, user: 'sa', password: 'Wire-secret-1', database: 'master', lazy: true, idle_pool_timeout: '1s' } },
    });
    const tenant = m.get('ledger');
    expect(tenant.status).toBe('idle');
    expect(tds.connectionsAccepted).toBe(0);
    await tenant.em.fork().getConnection().execute('select 1');
    expect(tenant.status).toBe('up');
    await vi.waitFor(() => expect(tenant.status).toBe('idle'), { timeout: 5_000, interval: 50 });
    expect(tenant.stats()).toMatchObject({ open: 0 });
    await tenant.em.fork().getConnection().execute('select 1');
    expect(tenant.status).toBe('up');
  });

  it('keeps a pool open while a transaction holds it, however long', async () => {
    const { connections } = pgTenants(1, { idle_pool_timeout: '1s' });
    const m = await manager({ connections });
    const tenant = m.get('t0');
    await tenant.em.fork().transactional(async (em) => {
      await em.getConnection().execute('select 1');
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(tenant.status).toBe('up');
      await em.getConnection().execute('select 2');
    });
    await vi.waitFor(() => expect(tenant.status).toBe('idle'), { timeout: 5_000, interval: 50 });
  });

  it('SQLite file tenants: entities, flushes and finds across idle closes, on the ORM built at first use', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbm-tenants-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const connections: Record<string, ConnectionOptionsInput> = {};
    for (let i = 0; i < 20; i++) connections[`s${i}`] = { type: 'sqlite', filepath: join(dir, `s${i}.db`), lazy: true, idle_pool_timeout: '1s', mikro_orm: { entities: [NoteSchema] } };
    const m = await manager({ connections });
    const tenant = m.get('s3');
    await schemaOf(tenant.orm).create();
    const em = tenant.em.fork();
    em.persist(em.create(NoteSchema, { id: 1, body: 'hello' }));
    await em.flush();
    await vi.waitFor(() => expect(tenant.status).toBe('idle'), { timeout: 5_000, interval: 50 });
    expect(tenant.stats()).toMatchObject({ open: 0 });
    const found = await tenant.em.fork().findOneOrFail(NoteSchema, 1);
    expect(found.body).toBe('hello');
    expect(tenant.status).toBe('up');
    expect(m.all().filter((c) => c.status === 'idle')).toHaveLength(19);
  });

  it('is a config error below 1s, and on an in-memory SQLite database (closing its pool would lose the data)', async () => {
    await expect(DbManager.create({ connections: { a: { type: 'sqlite', filepath: ':memory:', idle_pool_timeout: '5s' } } })).rejects.toThrow(DbManagerConfigError);
    await expect(DbManager.create({ connections: { a: { type: 'sqlite', filepath: ':memory:', idle_pool_timeout: '5s' } } })).rejects.toThrow(
      /connections\.a\.idle_pool_timeout.*in-memory SQLite/,
    );
    await expect(DbManager.create({ connections: { a: { type: 'postgres', dsn: url, idle_pool_timeout: '500ms' } } })).rejects.toThrow(/idle_pool_timeout.*at least 1s/);
    // Inherited from the manager, an in-memory database keeps its pool (said once as a warning).
    const m = await manager({ idle_pool_timeout: '1s', connections: { mem: { type: 'sqlite', filepath: ':memory:' } } });
    expect(m.get('mem').settings.idlePoolTimeout).toBe(0);
    expect(logs.lines.some((l) => /idle_pool_timeout does not apply to an in-memory SQLite/.test(l.message))).toBe(true);
  });
});

afterAll(() => undefined);
