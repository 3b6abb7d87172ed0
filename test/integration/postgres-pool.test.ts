import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type pg from 'pg';
import { type DbConnection, DbManager, type DbManagerConfigInput } from '../../lib';
import { builderQuery, QUERY_BUILDER } from '../support/mikro-orm-leg';
import { countBackends, peakBackendsDuring } from '../support/pg-activity';
import { startTcpProxy } from '../support/tcp-proxy';

const url = inject('postgresUrl');
let managers: DbManager[] = [];
let seq = 0;

/** A manager with one PostgreSQL connection whose application_name is unique, so pg_stat_activity shows only it. */
async function postgres(fields: Record<string, unknown> = {}, manager: Record<string, unknown> = {}): Promise<{ db: DbConnection; app: string; m: DbManager }> {
  const app = `dbm-pool-${process.pid}-${++seq}`;
  const m = await DbManager.create({ ...manager, connections: { pg: { type: 'postgres', dsn: url, application_name: app, ...fields } } } as DbManagerConfigInput);
  managers.push(m);
  return { db: m.get('pg'), app, m };
}

afterEach(async () => {
  await Promise.all(managers.map((m) => m.close()));
  managers = [];
});

beforeAll(async () => {
  const { db } = await postgres();
  await builderQuery(db, 'create table if not exists pool_items (id serial primary key, label text)');
});

describe(`PostgreSQL: EM, ${QUERY_BUILDER} and the native client share one pool`, () => {
  it('never opens more server connections than max_open_conns, whichever access path runs', async () => {
    const { db, app } = await postgres({ max_open_conns: 4 });
    const jobs = Array.from({ length: 60 }, (_, i) => {
      switch (i % 3) {
        case 0:
          return db.em.fork().getConnection().execute('select pg_sleep(0.01), 1 as one');
        case 1:
          return builderQuery(db, 'select pg_sleep(0.01), 2 as two');
        default:
          return db.withNativeClient((client: pg.Client) => client.query('select pg_sleep(0.01), 3 as three'));
      }
    });
    const peak = await peakBackendsDuring(url, app, Promise.all(jobs));
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);
    const stats = db.stats();
    expect(stats).toMatchObject({ max: 4, inUse: 0, pending: 0 });
    expect(stats.open).toBeLessThanOrEqual(4);
    expect(stats.waitCount).toBeGreaterThan(0);
    expect(stats.waitDurationMs).toBeGreaterThan(0);
  });

  it('lends the raw pg.Client of the pool and takes it back', async () => {
    const { db } = await postgres({ max_open_conns: 1 });
    const pids = new Set<number>();
    for (let i = 0; i < 3; i++) {
      await db.withNativeClient(async (client: pg.Client) => pids.add((await client.query('select pg_backend_pid() as pid')).rows[0].pid));
    }
    const [{ pid }] = await builderQuery(db, 'select pg_backend_pid() as pid');
    expect([...pids]).toEqual([pid]);
    expect(db.stats()).toMatchObject({ inUse: 0, idle: 1 });
  });

  it('inside em.transactional, withNativeClient uses the transaction connection (no deadlock on a one-connection pool)', async () => {
    const { db } = await postgres({ max_open_conns: 1, acquire_timeout: '2s' });
    const seen = await db.em.fork().transactional(async (em) => {
      await (em as unknown as { execute(sql: string): Promise<unknown> }).execute("insert into pool_items (label) values ('uncommitted')");
      return db.withNativeClient(async (client: pg.Client) => (await client.query("select count(*)::int as n from pool_items where label = 'uncommitted'")).rows[0].n);
    });
    expect(seen).toBeGreaterThanOrEqual(1);
    await builderQuery(db, "delete from pool_items where label = 'uncommitted'");
  });

  it('fails a withNativeClient that cannot get a connection with a clear error after acquire_timeout', async () => {
    const { db } = await postgres({ max_open_conns: 1, acquire_timeout: '300ms' });
    let release!: () => void;
    const holding = db.withNativeClient(() => new Promise<void>((r) => (release = r)));
    try {
      await vi.waitFor(() => expect(db.stats().inUse, 'connections in use').toBe(1), { timeout: 2_000 });
      const started = performance.now();
      await expect(db.withNativeClient(() => 1)).rejects.toThrow(/^Connection "pg": timed out after 300 ms \(acquire_timeout\) waiting for a pooled connection, all 1 being in use\. Raise max_open_conns/);
      expect(performance.now() - started).toBeLessThan(1_500);
      expect(db.stats().timeouts).toBe(1);
    } finally {
      release();
      await holding;
    }
  });
});

describe('PostgreSQL: closing during a health ping', () => {
  it("never crashes the process, even when the ping runs on a saturated pool's own connection", async () => {
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', record);
    try {
      // The close lands at a different point of the ping each time: connecting, querying, ending.
      for (let i = 0; i < 150; i++) {
        const { db, m } = await postgres({ max_open_conns: 1 }, { health_check_interval: 0, shutdown_timeout: '20ms' });
        let release!: () => void;
        const holding = db.withNativeClient(() => new Promise<void>((resolve) => (release = resolve)));
        await vi.waitFor(() => expect(db.stats().inUse).toBe(1));
        const ping = db.healthCheck({ timeout: 2_000 }); // the pool is saturated: the ping opens a connection of its own
        await new Promise((resolve) => setTimeout(resolve, (i % 10) + 1));
        await m.close();
        release();
        await holding.catch(() => undefined);
        await ping;
      }
    } finally {
      process.off('uncaughtException', record);
    }
    expect(uncaught).toEqual([]);
  }, 60_000);
});

describe('PostgreSQL: every pool field takes effect', () => {
  it('max_idle_conns: connections beyond it are closed when released', async () => {
    const { db, app } = await postgres({ max_open_conns: 6, max_idle_conns: 2 });
    await Promise.all(Array.from({ length: 6 }, () => builderQuery(db, 'select pg_sleep(0.2)')));
    await vi.waitFor(() => expect(db.stats().idle, 'idle connections').toBe(2), { timeout: 2_000 });
    await expect.poll(() => countBackends(url, app), { message: 'server connections', timeout: 3_000 }).toBe(2);
    expect(db.stats().maxIdleClosed).toBe(4);
  });

  it('conn_max_idle_time: idle connections are closed after it', async () => {
    const { db, app } = await postgres({ max_open_conns: 3, conn_max_idle_time: '300ms' });
    await Promise.all(Array.from({ length: 3 }, () => builderQuery(db, 'select pg_sleep(0.05)')));
    expect(await countBackends(url, app)).toBe(3);
    const started = performance.now();
    await expect.poll(() => countBackends(url, app), { message: 'server connections after idle time', timeout: 3_000 }).toBe(0);
    expect(performance.now() - started).toBeGreaterThan(150);
    expect(db.stats().idleClosed).toBe(3);
  });

  it('conn_max_lifetime: a connection older than it is replaced instead of reused', async () => {
    const { db } = await postgres({ max_open_conns: 1, conn_max_lifetime: '300ms' });
    const pid = async () => (await builderQuery<{ pid: number }>(db, 'select pg_backend_pid() as pid'))[0].pid;
    const first = await pid();
    expect(await pid()).toBe(first);
    await new Promise((r) => setTimeout(r, 400));
    expect(await pid()).not.toBe(first);
    expect(db.stats().lifetimeClosed).toBe(1);
  });

  it('query_timeout: the server cancels a statement that runs longer, and the connection stays usable', async () => {
    const { db } = await postgres({ max_open_conns: 1, query_timeout: '300ms' });
    const started = performance.now();
    await expect(builderQuery(db, 'select pg_sleep(3)')).rejects.toMatchObject({ code: '57014' });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect((await builderQuery(db, 'select 1 as ok'))[0].ok).toBe(1);
  });

  it('application_name and schema reach the server session', async () => {
    const { db, app } = await postgres({ schema: 'dbm_schema_test' });
    await builderQuery(db, 'create schema if not exists dbm_schema_test');
    const rows = await builderQuery(db, "select current_setting('application_name') as app, current_setting('search_path') as path");
    expect(rows[0].app).toBe(app);
    expect(rows[0].path).toContain('dbm_schema_test');
  });

  it('acquire_timeout: a caller waits at most that long for a busy pool, and the timeout is counted', async () => {
    const { db } = await postgres({ max_open_conns: 1, acquire_timeout: '250ms' });
    const slow = builderQuery(db, 'select pg_sleep(1)');
    await vi.waitFor(() => expect(db.stats().inUse, 'connections in use').toBe(1), { timeout: 2_000 });
    const started = performance.now();
    await expect(builderQuery(db, 'select 1')).rejects.toThrow(/^Connection "pg": timed out after 250 ms \(acquire_timeout\)/);
    await expect(db.em.fork().getConnection().execute('select 1')).rejects.toThrow(/^Connection "pg": timed out after 250 ms/);
    expect(performance.now() - started).toBeLessThan(1_500);
    await slow;
    // A caller that gave up also waited: it counts in waitCount, as in Go's sql.DBStats.
    expect(db.stats()).toMatchObject({ timeouts: 2, waitCount: 2 });
    expect(db.stats().waitDurationMs).toBeGreaterThanOrEqual(450);
  });
});

describe('PostgreSQL: connecting', () => {
  const withPassword = (password: string) => {
    const u = new URL(url);
    u.password = password;
    return u.toString();
  };

  it('fails at once, without retrying, on a wrong password — and never shows the password', async () => {
    const started = performance.now();
    const error = await DbManager.create({
      retry_attempts: 5,
      retry_delay: '1s',
      connections: { pg: { type: 'postgres', dsn: withPassword('wrong-Pa55word') } },
    }).then(
      () => undefined,
      (e: unknown) => e as Error & { attempts: number },
    );
    if (!error) throw new Error('expected the connection to fail');
    expect(performance.now() - started).toBeLessThan(900);
    expect(error.name).toBe('ConnectionFailedError');
    expect(error.attempts).toBe(1);
    expect(error.message).toMatch(/Connection "pg" .* failed after 1 attempt: .*password authentication failed.*28P01/);
    expect(error.message).not.toContain('wrong-Pa55word');
  });

  it('fails at once on an unknown database', async () => {
    const u = new URL(url);
    u.pathname = '/no_such_db';
    const error = await DbManager.create({ retry_attempts: 5, connections: { pg: { type: 'postgres', dsn: u.toString() } } }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/failed after 1 attempt: .*does not exist.*3D000/);
  });

  it('starts with a critical: false connection down, and closes what it opened when a critical one fails', async () => {
    const app = `dbm-partial-${process.pid}`;
    const m = await DbManager.create({
      retry_attempts: 1,
      connections: {
        good: { type: 'postgres', dsn: url, application_name: app },
        optional: { type: 'postgres', host: '127.0.0.1', port: 1, critical: false, connect_timeout: '500ms' },
      },
    });
    managers.push(m);
    expect(m.get('good').status).toBe('up');
    expect(m.get('optional').status).toBe('down');
    expect(m.stats()).toMatchObject({ totalConnections: 2, healthyCount: 1, unhealthyCount: 1 });
    expect(m.stats().connections.optional.lastError).toMatch(/ECONNREFUSED/);

    const app2 = `dbm-failed-${process.pid}`;
    const failing = DbManager.create({
      retry_attempts: 2,
      retry_delay: '50ms',
      connections: { good: { type: 'postgres', dsn: url, application_name: app2 }, broken: { type: 'postgres', host: '127.0.0.1', port: 1 } },
    });
    await expect(failing).rejects.toThrow(/Connection "broken" \(postgres:\/\/127\.0\.0\.1:1\/postgres\) failed after 2 attempts: .*ECONNREFUSED/);
    expect(await countBackends(url, app2)).toBe(0);
  });

  it('bounds a connect to a server that never answers by connect_timeout', async () => {
    const u = new URL(url);
    const proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port) });
    proxy.blackhole();
    try {
      const started = performance.now();
      await expect(
        DbManager.create({ retry_attempts: 1, connections: { pg: { type: 'postgres', host: proxy.host, port: proxy.port, user: 'postgres', connect_timeout: '400ms' } } }),
      ).rejects.toThrow(/failed after 1 attempt: ping timed out after 400 ms/);
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThan(350);
      expect(elapsed).toBeLessThan(2_500);
      await vi.waitFor(() => expect(proxy.openSockets, 'sockets to the black hole').toBe(0), { timeout: 3_000 });
    } finally {
      await proxy.close();
    }
  });
});
