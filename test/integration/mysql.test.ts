import { Logger, type LoggerService } from '@nestjs/common';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AcquireTimeoutError, type DbConnection, DbManager, type DbManagerConfigInput, NotMongoDatabaseError } from '../../lib';
import { mariadbUrlOrSkipReason } from '../support/mariadb';
import { builderQuery, MIKRO_ORM_MAJOR, QUERY_BUILDER } from '../support/mikro-orm-leg';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

// Both MySQL-family types against the real MariaDB the machines run (DBM_TEST_MARIADB_URL). On MikroORM 7 both use
// mysql2 (@mikro-orm/mariadb is built on @mikro-orm/mysql); on 6 mariadb uses the MariaDB connector.
const { url, reason } = mariadbUrlOrSkipReason();
if (reason) console.log(`[mysql.test] skipped: ${reason}`);

/** A callback-style raw connection, as both mysql2 and the MariaDB connector lend it. */
interface CallbackConnection {
  query(sql: string, callback: (error: Error | null, rows: unknown) => void): void;
}
const nativeQuery = (c: CallbackConnection, sql: string) => new Promise((resolve, reject) => c.query(sql, (e, rows) => (e ? reject(e) : resolve(rows))));

const PASSWORD = 'Dbm-test-Pa55!';

describe.skipIf(!url).each(['mysql', 'mariadb'] as const)('%s on a real MariaDB', (type) => {
  const server = url ? new URL(url) : new URL('mysql://127.0.0.1');
  const host = server.hostname;
  const port = Number(server.port || 3306);
  const database = `dbm_${type}_${process.pid}`;
  // A user of its own, so information_schema.processlist shows exactly this test's connections.
  const user = `dbm_${type}_${process.pid}`;
  let admin: mysql.Connection;
  let managers: DbManager[] = [];

  const fields = (extra: Record<string, unknown> = {}) => ({ type, host, port, user, password: PASSWORD, database, ...extra });
  async function open(extra: Record<string, unknown> = {}, manager: Record<string, unknown> = {}): Promise<DbConnection> {
    const m = await DbManager.create({ retry_attempts: 1, ...manager, connections: { db: fields(extra) } } as DbManagerConfigInput);
    managers.push(m);
    return m.get('db');
  }
  const serverConnections = async () => {
    const [rows] = await admin.query('select count(*) as n from information_schema.processlist where user = ?', [user]);
    return Number((rows as Array<{ n: number }>)[0].n);
  };

  beforeAll(async () => {
    admin = await mysql.createConnection(url!);
    await admin.query(`create database if not exists \`${database}\``);
    await admin.query(`create user if not exists '${user}'@'%' identified by '${PASSWORD}'`);
    await admin.query(`grant all on \`${database}\`.* to '${user}'@'%'`);
  });

  afterEach(async () => {
    await Promise.all(managers.map((m) => m.close()));
    managers = [];
  });

  afterAll(async () => {
    if (!admin) return;
    await admin.query(`drop user if exists '${user}'@'%'`);
    await admin.query(`drop database if exists \`${database}\``);
    await admin.end();
  });

  it(`EM, ${QUERY_BUILDER} and the native client share one pool: 60 concurrent jobs never open more than max_open_conns`, async () => {
    const db = await open({ max_open_conns: 4 });
    let peak = 0;
    let done = false;
    const sampling = (async () => {
      while (!done) {
        peak = Math.max(peak, await serverConnections());
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const jobs = Array.from({ length: 60 }, (_, i) => {
      switch (i % 3) {
        case 0:
          return db.em.fork().getConnection().execute('select sleep(0.02) as s, 1 as one');
        case 1:
          return builderQuery(db, 'select sleep(0.02) as s, 2 as two');
        default:
          return db.withNativeClient((c: CallbackConnection) => nativeQuery(c, 'select sleep(0.02) as s, 3 as three'));
      }
    });
    await Promise.all(jobs).finally(() => (done = true));
    await sampling;
    console.log(`[mysql.test] ${type} on MikroORM ${MIKRO_ORM_MAJOR}: 60 jobs (EM, ${QUERY_BUILDER}, native) with max_open_conns 4 → peak ${peak} server connections`);
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);
    const stats = db.stats();
    expect(stats).toMatchObject({ max: 4, inUse: 0, pending: 0, status: 'up' });
    expect(stats.open).toBeLessThanOrEqual(4);
    expect(stats.idle).toBe(stats.open);
    expect(stats.waitCount).toBeGreaterThan(0);
    expect(stats.waitDurationMs).toBeGreaterThan(0);
  });

  it(`enable_logging: statements of the EntityManager, ${QUERY_BUILDER} and the native client are logged with literals masked`, async () => {
    const lines: string[] = [];
    const keep = (m: unknown) => void lines.push(String(m));
    const capture: LoggerService = { log: keep, warn: keep, debug: keep, error: keep, verbose: keep };
    Logger.overrideLogger(capture);
    try {
      const db = await open({ enable_logging: true });
      await db.em.fork().getConnection().execute('select 40 as em_answer');
      await builderQuery(db, 'select 41 as builder_answer');
      await db.withNativeClient((c: CallbackConnection) => nativeQuery(c, 'select 42 as native_answer'));
      for (const name of ['em_answer', 'builder_answer', 'native_answer']) {
        expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^query [\\d.]+ ms: select \\? as ${name}$`)));
      }
      expect(lines.join('\n')).not.toMatch(/select 4[012]|Dbm-test-Pa55/);
      // Health pings stay out of the log.
      await db.healthCheck();
      expect(lines.join('\n')).not.toMatch(/ms: select 1$/i);
    } finally {
      Logger.overrideLogger(new Logger());
    }
  });

  it('lends the raw connection and counts it in use while lent', async () => {
    const db = await open({ max_open_conns: 2 });
    const seen = await db.withNativeClient(async (c: CallbackConnection) => {
      expect(db.stats()).toMatchObject({ inUse: 1, max: 2 });
      return nativeQuery(c, 'select current_user() as u');
    });
    expect(JSON.stringify(seen)).toContain(user);
    expect(db.stats()).toMatchObject({ inUse: 0, idle: db.stats().open });
  });

  // On MikroORM 7 both types use mysql2; on 6 mariadb uses the MariaDB connector.
  const usesMysql2 = type === 'mysql' || MIKRO_ORM_MAJOR === 7;
  if (!usesMysql2) console.log('[mysql.test] mariadb on MikroORM 6: program_name check skipped: the MariaDB connector keeps its options private, and this server has performance_schema off');
  it.skipIf(!usesMysql2)('application_name goes to the server as the program_name connection attribute (mysql2)', async () => {
    const db = await open({ application_name: 'dbm-orders', connect_timeout: '4s' });
    const config = await db.withNativeClient((c: unknown) => (c as { config: { connectAttributes: Record<string, string>; connectTimeout: number } }).config);
    expect(config.connectAttributes.program_name).toBe('dbm-orders');
    expect(config.connectTimeout).toBe(4_000);
  });

  it('query_timeout: the server stops a longer statement and the connection stays usable', async () => {
    const db = await open({ max_open_conns: 1, query_timeout: '300ms' });
    // The server said it is MariaDB (whichever type the connection has): its syntax, in seconds.
    const [{ t }] = await builderQuery<{ t: unknown }>(db, 'select @@max_statement_time as t');
    expect(Number(t)).toBeCloseTo(0.3, 3);
    const started = performance.now();
    await expect(builderQuery(db, 'select * from information_schema.tables a, information_schema.tables b, information_schema.tables c')).rejects.toMatchObject({
      errno: 1969,
    });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(await builderQuery(db, 'select 1 as ok')).toEqual([{ ok: 1 }]);
    // The native client and the EntityManager get the limit too: it is the connection's.
    expect(await db.withNativeClient((c: CallbackConnection) => nativeQuery(c, 'select @@max_statement_time as t'))).toMatchObject([{ t: expect.anything() }]);
    const [{ t: emLimit }] = (await db.em.fork().getConnection().execute('select @@max_statement_time as t')) as Array<{ t: unknown }>;
    expect(Number(emLimit)).toBeCloseTo(0.3, 3);
  });

  it('acquire_timeout: a caller that finds every connection busy gets AcquireTimeoutError naming the connection', async () => {
    const db = await open({ max_open_conns: 1, acquire_timeout: '300ms' });
    let release!: () => void;
    const held = db.withNativeClient(() => new Promise<void>((resolve) => (release = resolve)));
    await vi.waitFor(() => expect(db.stats().inUse).toBe(1));
    const started = performance.now();
    const error = (await builderQuery(db, 'select 1 as one').catch((e: unknown) => e)) as Error;
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(error).toBeInstanceOf(AcquireTimeoutError);
    expect(error.message).toMatch(/^Connection "db": timed out after 300 ms \(acquire_timeout\) waiting for a pooled connection, all 1 being in use/);
    expect(db.stats()).toMatchObject({ timeouts: 1, pending: 0 });
    release();
    await held;
    expect(await builderQuery(db, 'select 1 as one')).toEqual([{ one: 1 }]);
    expect(await serverConnections()).toBe(1);
  });

  it('withNativeClient inside em.transactional lends the transaction\'s connection: no deadlock with max_open_conns 1', async () => {
    const db = await open({ max_open_conns: 1, acquire_timeout: '2s' });
    const ids = await db.em.fork().transactional(async (em) => {
      const [{ id }] = (await (em as unknown as { execute(sql: string): Promise<Array<{ id: number }>> }).execute('select connection_id() as id'));
      const native = (await db.withNativeClient((c: CallbackConnection) => nativeQuery(c, 'select connection_id() as id'))) as Array<{ id: number }>;
      return [Number(id), Number(native[0].id)];
    });
    expect(ids[1]).toBe(ids[0]);
    expect(db.stats()).toMatchObject({ open: 1, inUse: 0, timeouts: 0 });
  });

  it('max_idle_conns, conn_max_idle_time and conn_max_lifetime close connections, counted by reason', async () => {
    const db = await open({ max_open_conns: 3, max_idle_conns: 1, conn_max_idle_time: '1s', conn_max_lifetime: '600ms' });
    await Promise.all([1, 2, 3].map(() => builderQuery(db, 'select sleep(0.05)')));
    // Three were open at once; on release the two beyond max_idle_conns closed.
    await vi.waitFor(() => expect(db.stats()).toMatchObject({ open: 1, maxIdleClosed: 2 }));
    await vi.waitFor(() => expect(serverConnections()).resolves.toBe(1));
    await new Promise((resolve) => setTimeout(resolve, 650));
    // The survivor is past its lifetime: replaced when next acquired.
    expect(await builderQuery(db, 'select 1 as one')).toEqual([{ one: 1 }]);
    expect(db.stats()).toMatchObject({ open: 1, lifetimeClosed: 1 });
    // Left idle, it closes after conn_max_idle_time.
    await vi.waitFor(() => expect(db.stats()).toMatchObject({ open: 0, idleClosed: 1 }), { timeout: 4_000 });
    await vi.waitFor(() => expect(serverConnections()).resolves.toBe(0));
  });

  it('fails at once, without retrying, on a wrong password (1045) — and never shows the password', async () => {
    const started = performance.now();
    const error = (await DbManager.create({
      retry_attempts: 5,
      retry_delay: '1s',
      connections: { db: fields({ password: 'wrong-Pa55word' }) },
    } as DbManagerConfigInput).catch((e: unknown) => e)) as Error & { attempts: number };
    expect(performance.now() - started).toBeLessThan(900);
    expect(error.name).toBe('ConnectionFailedError');
    expect(error.attempts).toBe(1);
    expect(error.message).toMatch(/Access denied.*ER_ACCESS_DENIED_ERROR/);
    expect(error.message).not.toContain('wrong-Pa55word');
  });

  it('fails at once on an unknown database (1049)', async () => {
    const error = (await DbManager.create({
      retry_attempts: 5,
      retry_delay: '1s',
      connections: { db: { type, host, port, user: server.username || 'root', password: server.password || undefined, database: 'dbm_no_such_db' } },
    } as DbManagerConfigInput).catch((e: unknown) => e)) as Error & { attempts: number };
    expect(error.attempts).toBe(1);
    expect(error.message).toMatch(/Unknown database.*ER_BAD_DB_ERROR/);
  });

  it('mongo() is refused with NotMongoDatabaseError', async () => {
    const db = await open();
    expect(() => db.mongo()).toThrow(NotMongoDatabaseError);
  });

  describe('through a TCP proxy', () => {
    let proxy: TcpProxy;

    beforeAll(async () => {
      proxy = await startTcpProxy({ host, port });
    });
    afterAll(async () => {
      await proxy.close();
    });

    it('bounds a connect to a server that never answers by connect_timeout, and leaves no socket', async () => {
      proxy.blackhole();
      try {
        const started = performance.now();
        await expect(
          DbManager.create({ retry_attempts: 1, connections: { db: fields({ host: proxy.host, port: proxy.port, connect_timeout: '500ms' }) } } as DbManagerConfigInput),
        // mysql2's own connect timeout (MikroORM 7) says "connect ETIMEDOUT"; the ping's says "timed out".
        ).rejects.toThrow(/timeout|timed out|ETIMEDOUT/i);
        const elapsed = performance.now() - started;
        expect(elapsed).toBeGreaterThan(450);
        expect(elapsed).toBeLessThan(3_000);
        await expect.poll(() => proxy.openSockets === 0, { timeout: 3_000, interval: 25, message: 'no socket left to the black hole' }).toBe(true);
      } finally {
        proxy.forward();
      }
    });

    it('a ping to a hung server times out, is cancelled and does not pile up', async () => {
      const db = await open({ host: proxy.host, port: proxy.port, max_open_conns: 2, connect_timeout: '1s' });
      proxy.blackhole();
      try {
        for (let i = 0; i < 5; i++) {
          const started = performance.now();
          const health = await db.healthCheck({ timeout: 300 });
          expect(health.status).toBe('down');
          expect(performance.now() - started).toBeLessThan(1_200);
        }
        expect(db.stats().pending).toBe(0);
        // At most the pool's max plus the ping's own short-lived connection ever reach the server.
        expect(proxy.openSockets).toBeLessThanOrEqual(3);
      } finally {
        proxy.forward();
      }
      // Connects already waiting on the black hole hold their pool slots until connect_timeout; then pings get through.
      await vi.waitFor(async () => expect((await db.healthCheck({ timeout: 500 })).status).toBe('up'), { timeout: 5_000, interval: 100 });
    });

    it('shutdown tears down a query hung on the server once shutdown_timeout is spent, and leaves no socket', async () => {
      const db = await open({ host: proxy.host, port: proxy.port, max_open_conns: 2, connect_timeout: '1s' }, { shutdown_timeout: '200ms' });
      expect(await builderQuery(db, 'select 1 as one')).toEqual([{ one: 1 }]);
      proxy.blackhole();
      try {
        const hung = builderQuery(db, 'select 2 as two').catch((e: unknown) => e);
        await vi.waitFor(() => expect(db.stats().inUse).toBe(1));
        const started = performance.now();
        await managers.pop()!.close();
        expect(performance.now() - started).toBeLessThan(1_500);
        expect(await hung).toBeInstanceOf(Error);
        await vi.waitFor(() => expect(proxy.openSockets).toBe(0), { timeout: 3_000 });
      } finally {
        proxy.forward();
      }
    });

    it('server gone: health goes down with the cause; server back: up again, and close() leaves no socket', async () => {
      const db = await open({ host: proxy.host, port: proxy.port, max_open_conns: 3, connect_timeout: '1s' });
      await Promise.all([1, 2, 3].map(() => builderQuery(db, 'select sleep(0.05)')));
      expect(db.stats().open).toBe(3);

      const proxyPort = proxy.port;
      await proxy.close();
      const down = await db.healthCheck({ timeout: 2_000 });
      expect(down.status).toBe('down');
      expect(down.error).toMatch(/ECONNREFUSED|ECONNRESET|closed|PROTOCOL_CONNECTION_LOST|socket/i);
      expect(db.status).toBe('down');

      proxy = await startTcpProxy({ host, port }, { port: proxyPort });
      const up = await db.healthCheck({ timeout: 2_000 });
      expect(up).toMatchObject({ status: 'up' });
      expect(await builderQuery(db, 'select 1 as ok')).toEqual([{ ok: 1 }]);

      const started = performance.now();
      await managers.pop()!.close();
      expect(performance.now() - started).toBeLessThan(1_500);
      await expect.poll(() => proxy.openSockets === 0, { timeout: 3_000, interval: 25, message: 'every socket closed after close()' }).toBe(true);
    });
  });
});
