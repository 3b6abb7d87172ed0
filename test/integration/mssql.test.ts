import { Logger, type LoggerService } from '@nestjs/common';
import { Connection as TediousConnection, Request } from 'tedious';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { AcquireTimeoutError, type DbConnection, DbManager, type DbManagerConfigInput, NotMongoDatabaseError } from '../../lib';
import { builderQuery, MIKRO_ORM_MAJOR, QUERY_BUILDER } from '../support/mikro-orm-leg';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { selfSignedCert } from '../support/self-signed-cert';
import { startTdsServer, type TdsWireServer } from '../support/tds-server';

// Through tedious, the query builder (Kysely on MikroORM 7, knex on 6) and MikroORM against the TDS wire server, or a
// real SQL Server when DBM_TEST_MSSQL_URL is set. Stop/start goes through a TCP proxy in front of either, so the same
// story runs against both.
const externalUrl = inject('mssqlUrl');
const WIRE_PASSWORD = 'Passw0rd!';

/** Runs one statement on a raw tedious connection and returns its rows by column name. */
function nativeQuery(connection: TediousConnection, sql: string): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const rows: Array<Record<string, unknown>> = [];
    const request = new Request(sql, (error) => (error ? reject(error) : resolve(rows)));
    request.on('row', (columns: Array<{ value: unknown; metadata: { colName: string } }>) =>
      rows.push(Object.fromEntries(columns.map((c) => [c.metadata.colName, c.value]))),
    );
    connection.execSql(request);
  });
}

describe('SQL Server (mssql)', () => {
  let server: { host: string; port: number; user: string; password: string; database: string; close(): Promise<void> };
  let proxy: TcpProxy;
  let managers: DbManager[] = [];

  /** Connection fields pointing at the proxy (default) or straight at the server. */
  const fields = (extra: Record<string, unknown> = {}, direct = false) => ({
    type: 'mssql',
    host: direct ? server.host : proxy.host,
    port: direct ? server.port : proxy.port,
    user: server.user,
    password: server.password,
    database: server.database,
    // The wire server offers no TLS; a real one gets the DSN's sslmode (default: tedious' login-only encryption).
    ...(externalUrl ? { sslmode: 'require' } : {}),
    ...extra,
  });
  async function open(extra: Record<string, unknown> = {}, manager: Record<string, unknown> = {}): Promise<DbConnection> {
    const m = await DbManager.create({ retry_attempts: 1, ...manager, connections: { sql: fields(extra) } } as DbManagerConfigInput);
    managers.push(m);
    return m.get('sql');
  }

  beforeAll(async () => {
    if (externalUrl) {
      const u = new URL(externalUrl);
      console.log(`[mssql.test] against the real SQL Server at ${u.hostname}:${u.port || 1433} (DBM_TEST_MSSQL_URL)`);
      server = {
        host: u.hostname,
        port: Number(u.port || 1433),
        user: decodeURIComponent(u.username),
        password: decodeURIComponent(u.password),
        database: decodeURIComponent(u.pathname.slice(1)) || u.searchParams.get('database') || 'master',
        close: async () => undefined,
      };
    } else {
      const tds = await startTdsServer({ user: 'sa', password: WIRE_PASSWORD });
      server = { host: tds.host, port: tds.port, user: 'sa', password: WIRE_PASSWORD, database: 'master', close: () => tds.close() };
    }
    proxy = await startTcpProxy({ host: server.host, port: server.port });
  });

  afterEach(async () => {
    await Promise.all(managers.map((m) => m.close()));
    managers = [];
    proxy.forward();
  });

  afterAll(async () => {
    await proxy?.close();
    await server?.close();
  });

  it(`connects and serves the EntityManager, ${QUERY_BUILDER} and a raw tedious connection from one pool`, async () => {
    const db = await open({ max_open_conns: 3 });
    expect(db.status).toBe('up');
    expect(await builderQuery(db, 'select 1 as x')).toEqual([{ x: 1 }]);
    expect(await db.em.fork().getConnection().execute('select 2 as y')).toEqual([{ y: 2 }]);
    const raw = await db.withNativeClient(async (c: TediousConnection) => {
      expect(c).toBeInstanceOf(TediousConnection);
      expect(db.stats()).toMatchObject({ inUse: 1, max: 3 });
      return nativeQuery(c, 'select 3 as z');
    });
    expect(raw).toEqual([{ z: 3 }]);
    expect(await db.em.fork().transactional((em) => em.getConnection().execute('select 4 as t'))).toEqual([{ t: 4 }]);
    expect((await db.healthCheck()).status).toBe('up');
    expect(() => db.mongo()).toThrow(NotMongoDatabaseError);
  });

  it(`enable_logging: statements of ${QUERY_BUILDER} and of the lent tedious connection are logged with literals masked`, async () => {
    const lines: string[] = [];
    const keep = (m: unknown) => void lines.push(String(m));
    const capture: LoggerService = { log: keep, warn: keep, debug: keep, error: keep, verbose: keep };
    Logger.overrideLogger(capture);
    try {
      const db = await open({ enable_logging: true });
      await builderQuery(db, 'select 41 as builder_answer');
      expect(await db.withNativeClient((c: TediousConnection) => nativeQuery(c, 'select 42 as native_answer'))).toEqual([{ native_answer: 42 }]);
      expect(lines).toContainEqual(expect.stringMatching(/^query [\d.]+ ms: select \? as builder_answer$/));
      expect(lines).toContainEqual(expect.stringMatching(/^query [\d.]+ ms: select \? as native_answer$/));
      // Durations may contain these digits: look for the literals where the SQL had them.
      expect(lines.join('\n')).not.toMatch(/select 41|select 42|Passw0rd/);
    } finally {
      Logger.overrideLogger(new Logger());
    }
  });

  it('config fields become tedious options', async () => {
    const db = await open({ application_name: 'dbm-sql', connect_timeout: '4s', query_timeout: '9s' });
    const options = await db.withNativeClient((c: TediousConnection) => (c as unknown as { config: { options: Record<string, unknown> } }).config.options);
    expect(options).toMatchObject({ appName: 'dbm-sql', connectTimeout: 4_000, requestTimeout: 9_000, database: server.database });
  });

  it('pool figures move: open, in use, idle and waits, never more than max_open_conns', async () => {
    const db = await open({ max_open_conns: 3 });
    let peakInUse = 0;
    db.on('acquire', () => (peakInUse = Math.max(peakInUse, db.stats().inUse)));
    await Promise.all(Array.from({ length: 12 }, () => builderQuery(db, "waitfor delay '00:00:00.05'")));
    const stats = db.stats();
    expect(peakInUse).toBe(3);
    expect(stats).toMatchObject({ open: 3, inUse: 0, idle: 3, pending: 0, max: 3 });
    expect(stats.waitCount).toBeGreaterThan(0);
    expect(stats.waitDurationMs).toBeGreaterThan(0);
    expect(proxy.openSockets).toBe(3);
  });

  it('acquire_timeout: a caller that finds every connection busy gets AcquireTimeoutError naming the connection', async () => {
    const db = await open({ max_open_conns: 1, acquire_timeout: '300ms' });
    let release!: () => void;
    const held = db.withNativeClient(() => new Promise<void>((resolve) => (release = resolve)));
    await vi.waitFor(() => expect(db.stats().inUse).toBe(1));
    const started = performance.now();
    const error = (await builderQuery(db, 'select 1 as x').catch((e: unknown) => e)) as Error;
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(error).toBeInstanceOf(AcquireTimeoutError);
    expect(error.message).toMatch(/^Connection "sql": timed out after 300 ms \(acquire_timeout\) waiting for a pooled connection, all 1 being in use/);
    expect(db.stats().timeouts).toBe(1);
    release();
    await held;
    expect(await builderQuery(db, 'select 1 as x')).toEqual([{ x: 1 }]);
  });

  it('a refused connect is retried until acquire_timeout: the query waits out a short outage, and a long one ends in AcquireTimeoutError naming the refusal', async () => {
    const db = await open({ max_open_conns: 1, acquire_timeout: '1500ms', connect_timeout: '1s' });
    const port = proxy.port;
    await proxy.close();
    // The health check finds the pooled connection dead (and the pool drops it) before the query asks for one.
    expect((await db.healthCheck({ timeout: 1_000 })).status).toBe('down');
    // Restarted while the query is still waiting: it gets a new connection instead of the refusal.
    const query = builderQuery(db, 'select 5 as x').catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 400));
    proxy = await startTcpProxy({ host: server.host, port: server.port }, { port });
    expect(await query).toEqual([{ x: 5 }]);

    await proxy.close();
    try {
      expect((await db.healthCheck({ timeout: 1_000 })).status).toBe('down');
      const started = performance.now();
      const error = (await builderQuery(db, 'select 6 as x').catch((e: unknown) => e)) as Error;
      expect(performance.now() - started).toBeGreaterThan(1_400);
      expect(error).toBeInstanceOf(AcquireTimeoutError);
      expect(error.message).toMatch(/^Connection "sql": timed out after 1500 ms \(acquire_timeout\) .*the pool could not open new ones meanwhile: Failed to connect to /);
    } finally {
      proxy = await startTcpProxy({ host: server.host, port: server.port }, { port });
    }
  });

  it('withNativeClient inside em.transactional lends the transaction\'s connection: no deadlock with max_open_conns 1', async () => {
    const db = await open({ max_open_conns: 1, acquire_timeout: '2s' });
    const rows = await db.em.fork().transactional(async (em) => {
      await (em as unknown as { execute(sql: string): Promise<unknown> }).execute('select 1 as x');
      return db.withNativeClient((c: TediousConnection) => nativeQuery(c, 'select 8 as in_tx'));
    });
    expect(rows).toEqual([{ in_tx: 8 }]);
    expect(db.stats()).toMatchObject({ open: 1, inUse: 0, timeouts: 0 });
  });

  it('conn_max_lifetime and max_idle_conns close connections, counted by reason', async () => {
    const db = await open({ max_open_conns: 3, max_idle_conns: 1, conn_max_lifetime: '400ms' });
    await Promise.all([1, 2, 3].map(() => builderQuery(db, "waitfor delay '00:00:00.05'")));
    // Three were open at once; on release the two beyond max_idle_conns closed.
    await vi.waitFor(() => expect(db.stats()).toMatchObject({ open: 1, maxIdleClosed: 2 }));
    await new Promise((resolve) => setTimeout(resolve, 450));
    // The survivor is past its lifetime: replaced when next acquired.
    expect(await builderQuery(db, 'select 1 as x')).toEqual([{ x: 1 }]);
    expect(db.stats()).toMatchObject({ open: 1, lifetimeClosed: 1 });
  });

  it('query_timeout becomes tedious requestTimeout: the statement is cancelled and the connection stays usable', async () => {
    const db = await open({ max_open_conns: 1, query_timeout: '300ms' });
    const started = performance.now();
    await expect(builderQuery(db, "waitfor delay '00:00:05'")).rejects.toMatchObject({ code: 'ETIMEOUT' });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(await builderQuery(db, 'select 1 as x')).toEqual([{ x: 1 }]);
  });

  it('bounds a connect to a server that accepts TCP and never answers by connect_timeout (tedious connectTimeout)', async () => {
    proxy.blackhole();
    const started = performance.now();
    const error = (await DbManager.create({ retry_attempts: 1, connections: { sql: fields({ connect_timeout: '500ms' }) } } as DbManagerConfigInput).catch(
      (e: unknown) => e,
    )) as Error;
    const elapsed = performance.now() - started;
    expect(error.name).toBe('ConnectionFailedError');
    expect(elapsed).toBeGreaterThan(450);
    expect(elapsed).toBeLessThan(2_500);
    // tedious' own timer, not only the ping's: the socket it opened is gone soon after.
    await expect.poll(() => proxy.openSockets === 0, { timeout: 2_000, interval: 25, message: 'no socket left to the black hole' }).toBe(true);
  });

  it('a ping to a hung server times out, is cancelled and does not pile up', async () => {
    const db = await open({ max_open_conns: 2, connect_timeout: '1s' });
    proxy.blackhole();
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const health = await db.healthCheck({ timeout: 300 });
      expect(health.status).toBe('down');
      expect(performance.now() - started).toBeLessThan(1_200);
    }
    expect(db.stats().pending).toBe(0);
    // At most the pool's max plus the ping's own short-lived connection ever reach the server.
    expect(proxy.openSockets).toBeLessThanOrEqual(3);
    proxy.forward();
    // A connect already waiting on the black hole holds its pool slot until connect_timeout; then pings get through.
    await expect.poll(async () => (await db.healthCheck({ timeout: 500 })).status === 'up', { timeout: 5_000, interval: 25, message: 'health up after the network heals' }).toBe(true);
  });

  it('shutdown tears down a query hung on the server once shutdown_timeout is spent, and leaves no socket', async () => {
    const db = await open({ max_open_conns: 2, connect_timeout: '1s' }, { shutdown_timeout: '200ms' });
    expect(await builderQuery(db, 'select 1 as x')).toEqual([{ x: 1 }]);
    proxy.blackhole();
    const hung = builderQuery(db, 'select 2 as y').catch((e: unknown) => e);
    await vi.waitFor(() => expect(db.stats().inUse).toBe(1));
    const started = performance.now();
    await managers.pop()!.close();
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(await hung).toMatchObject({ code: 'ECLOSE' });
    await vi.waitFor(() => expect(proxy.openSockets).toBe(0), { timeout: 3_000 });
  });

  it('server stopped: health is down with the real cause; started: up again; close() is quick and leaves no socket', async () => {
    const db = await open({ max_open_conns: 3, connect_timeout: '1s' });
    await Promise.all([1, 2, 3].map(() => builderQuery(db, "waitfor delay '00:00:00.05'")));
    expect(db.stats().open).toBe(3);

    const port = proxy.port;
    await proxy.close();
    const down = await db.healthCheck({ timeout: 2_000 });
    expect(down.status).toBe('down');
    expect(down.error).toMatch(/ECONNREFUSED|ECONNRESET|ESOCKET|ECLOSE|Connection lost|closed/i);
    expect(db.stats()).toMatchObject({ status: 'down' });
    expect(db.stats().lastError).toBe(down.error);

    proxy = await startTcpProxy({ host: server.host, port: server.port }, { port });
    expect(await db.healthCheck({ timeout: 2_000 })).toMatchObject({ status: 'up' });
    expect(await builderQuery(db, 'select 1 as x')).toEqual([{ x: 1 }]);
    expect(db.stats().reconnects).toBe(1);

    // Connections the server dropped have emitted `end` already; closing must not wait tarn's 5 s destroy timeout.
    await proxy.close();
    proxy = await startTcpProxy({ host: server.host, port: server.port }, { port });
    const started = performance.now();
    await managers.pop()!.close();
    expect(performance.now() - started).toBeLessThan(1_000);
    await expect.poll(() => proxy.openSockets === 0, { timeout: 2_000, interval: 25, message: 'every socket closed after close()' }).toBe(true);
  });

  it('fails at once, without retrying, on a wrong password (ELOGIN, 18456) — and never shows the password', async () => {
    const before = proxy.openSockets;
    const started = performance.now();
    const error = (await DbManager.create({
      retry_attempts: 5,
      retry_delay: '1s',
      connections: { sql: fields({ password: 'wrong-Pa55word' }) },
    } as DbManagerConfigInput).catch((e: unknown) => e)) as Error & { attempts: number };
    expect(performance.now() - started).toBeLessThan(900);
    expect(error.name).toBe('ConnectionFailedError');
    expect(error.attempts).toBe(1);
    expect(error.message).toMatch(/Login failed for user.*ELOGIN/);
    expect(error.message).not.toContain('wrong-Pa55word');
    await expect.poll(() => proxy.openSockets === before, { timeout: 2_000, interval: 25, message: 'the failed login socket to close' }).toBe(true);
  });

  it.skipIf(!!externalUrl)('sslmode require refuses a server without TLS instead of going on in plain text (wire server)', async () => {
    const started = performance.now();
    const error = (await DbManager.create({ retry_attempts: 5, retry_delay: '1s', connections: { sql: fields({ sslmode: 'require' }) } } as DbManagerConfigInput).catch(
      (e: unknown) => e,
    )) as Error & { attempts: number };
    expect(performance.now() - started).toBeLessThan(900);
    expect(error.attempts).toBe(1);
    expect(error.message).toMatch(/sslmode is "require" but the server does not support encryption; use sslmode: disable/);
  });

  describe.skipIf(!!externalUrl)('TLS (wire servers with a self-signed certificate)', () => {
    let offered: TdsWireServer;
    let required: TdsWireServer;
    const at = (tds: TdsWireServer, extra: Record<string, unknown>) => ({ ...fields({}, true), host: tds.host, port: tds.port, ...extra });
    /** tedious options through `mikro_orm.driverOptions`: a tedious config on MikroORM 7, knex's `connection` on 6. */
    const tediousOptions = (options: Record<string, unknown>) => ({ mikro_orm: { driverOptions: MIKRO_ORM_MAJOR === 7 ? { options } : { connection: { options } } } });
    const create = async (connection: Record<string, unknown>, manager: Record<string, unknown> = {}) => {
      const m = await DbManager.create({ retry_attempts: 5, retry_delay: '1s', ...manager, connections: { sql: connection } } as unknown as DbManagerConfigInput);
      managers.push(m);
      return m.get('sql');
    };

    beforeAll(async () => {
      offered = await startTdsServer({ user: 'sa', password: WIRE_PASSWORD, tls: 'offered' });
      required = await startTdsServer({ user: 'sa', password: WIRE_PASSWORD, tls: 'required' });
    });
    afterAll(async () => {
      await offered?.close();
      await required?.close();
    });

    it('sslmode require: TLS is negotiated on every pooled connection and the ping\'s, and queries run through it', async () => {
      const db = await create(at(offered, { sslmode: 'require', max_open_conns: 2 }));
      await Promise.all([1, 2].map(() => builderQuery(db, "waitfor delay '00:00:00.05'")));
      expect(db.stats().open).toBe(2);
      expect(offered.tlsSessions).toBe(offered.connectionsAccepted);
      expect(await db.withNativeClient((c: TediousConnection) => nativeQuery(c, 'select 9 as over_tls'))).toEqual([{ over_tls: 9 }]);
    });

    it('encrypt=strict (TDS 8) with the certificate trusted: TLS before any TDS, accepted as encrypted', async () => {
      const before = offered.tlsSessions;
      const db = await create({
        type: 'mssql',
        dsn: `sqlserver://sa:${encodeURIComponent(WIRE_PASSWORD)}@${offered.host}:${offered.port}/master?encrypt=strict`,
        sslmode: 'require',
        ...tediousOptions({ cryptoCredentialsDetails: { ca: selfSignedCert().cert } }),
      });
      expect(await builderQuery(db, 'select 1 as x')).toEqual([{ x: 1 }]);
      expect(offered.tlsSessions).toBeGreaterThan(before);
    });

    it('sslmode verify-full refuses the self-signed certificate', async () => {
      const error = (await create(at(offered, { sslmode: 'verify-full' }), { retry_attempts: 1 }).catch((e: unknown) => e)) as Error;
      expect(error.name).toBe('ConnectionFailedError');
      expect(error.message).toMatch(/self[- ]signed certificate/);
    });

    it('a server that requires TLS and sslmode disable: fails at once, without retrying, with tedious\' EENCRYPT', async () => {
      const started = performance.now();
      const error = (await create(at(required, { sslmode: 'disable' })).catch((e: unknown) => e)) as Error & { attempts: number };
      expect(performance.now() - started).toBeLessThan(900);
      expect(error.attempts).toBe(1);
      expect(error.message).toMatch(/Server requires encryption.*EENCRYPT/);
    });
  });

  it.skipIf(!externalUrl)('application_name reaches the server as the program name (real server only)', async () => {
    const db = await open({ application_name: 'dbm-mssql-test' });
    expect(await builderQuery(db, 'select app_name() as app')).toEqual([{ app: 'dbm-mssql-test' }]);
  });
  if (!externalUrl) console.log('[mssql.test] application_name check skipped: the TDS wire server does not report the program name');
});
