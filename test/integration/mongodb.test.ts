import { MongoEntityManager } from '@mikro-orm/mongodb';
import { Logger, type LoggerService } from '@nestjs/common';
import { MongoClient, MongoNetworkError, MongoParseError, MongoServerError, MongoServerSelectionError } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DbConnection, DbManager, type DbManagerConfigInput, NotSqlDatabaseError } from '../../lib';
import { startMongoWireServer } from '../support/mongo-wire-server';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import type { WireServer } from '../support/wire-server';

// Through the official driver and MikroORM against the MongoDB wire server, or a real server when
// DBM_TEST_MONGODB_URL is set. A TCP proxy in front of either plays the network: black hole, server gone, back.
const externalUrl = inject('mongodbUrl');
const externalHasCredentials = externalUrl ? new URL(externalUrl).username !== '' : false;

describe('MongoDB (mongodb)', () => {
  let wire: WireServer | undefined;
  let server: { host: string; port: number; user?: string; password?: string; database: string; authSource?: string };
  let proxy: TcpProxy;
  let proxyPort: number;
  let managers: DbManager[] = [];

  /** Connection fields pointing at the proxy. */
  const fields = (extra: Record<string, unknown> = {}) => ({
    type: 'mongodb',
    host: proxy.host,
    port: proxyPort,
    database: server.database,
    ...(server.user ? { user: server.user, password: server.password, auth_source: server.authSource ?? 'admin' } : {}),
    // Through the proxy to a real replica set member, talk to that member only (not the hosts it advertises).
    ...(externalUrl ? { mikro_orm: { driverOptions: { directConnection: true } } } : {}),
    ...extra,
  });
  async function open(extra: Record<string, unknown> = {}, manager: Record<string, unknown> = {}): Promise<DbConnection> {
    const m = await DbManager.create({ retry_attempts: 1, ...manager, connections: { docs: fields(extra) } } as DbManagerConfigInput);
    managers.push(m);
    return m.get('docs');
  }
  /** Stops the "server" for the client: every socket drops and new connections are refused. */
  async function stopServer(): Promise<void> {
    await proxy.close();
  }
  async function startServer(): Promise<void> {
    proxy = await startTcpProxy({ host: server.host, port: server.port }, { port: proxyPort });
  }

  beforeAll(async () => {
    if (externalUrl) {
      const u = new URL(externalUrl);
      console.log(`[mongodb.test] against the real MongoDB at ${u.hostname}:${u.port || 27017} (DBM_TEST_MONGODB_URL)`);
      server = {
        host: u.hostname,
        port: Number(u.port || 27017),
        user: u.username ? decodeURIComponent(u.username) : undefined,
        password: u.password ? decodeURIComponent(u.password) : undefined,
        database: decodeURIComponent(u.pathname.slice(1)) || 'test',
        authSource: u.searchParams.get('authSource') ?? undefined,
      };
    } else {
      wire = await startMongoWireServer();
      server = { host: wire.host, port: wire.port, database: 'test' };
    }
    proxy = await startTcpProxy({ host: server.host, port: server.port });
    proxyPort = proxy.port;
  });

  afterEach(async () => {
    await Promise.all(managers.map((m) => m.close()));
    managers = [];
    proxy.forward();
  });

  afterAll(async () => {
    await proxy?.close();
    await wire?.close();
  });

  it('connects: em is the Mongo EntityManager, mongo() the MongoClient; knex() and withNativeClient() are refused', async () => {
    const db = await open();
    expect(db.status).toBe('up');
    const client = db.mongo<MongoClient>();
    expect(client).toBeInstanceOf(MongoClient);
    expect(client.db().databaseName).toBe(server.database);
    expect(await client.db(server.database).command({ ping: 1 })).toMatchObject({ ok: 1 });
    expect(db.em).toBeInstanceOf(MongoEntityManager);
    // One client: the EntityManager's is mongo()'s, not a second one MikroORM built from the URL.
    expect((db.em.getConnection() as unknown as { getClient(): MongoClient }).getClient()).toBe(client);
    expect(await (db.em.fork() as MongoEntityManager).getCollection('dbm_nothing_here').find({ never: true }).toArray()).toEqual([]);
    expect(() => db.knex()).toThrow(NotSqlDatabaseError);
    await expect(db.withNativeClient(() => 1)).rejects.toThrow(NotSqlDatabaseError);
    expect(await db.healthCheck()).toMatchObject({ status: 'up' });
    // The pool listeners were on before the first connection: the connect's own ping is counted.
    expect(db.stats()).toMatchObject({ open: 1, inUse: 0, idle: 1, pending: 0, max: 25 });
  });

  it('treats bad credentials and bad settings as permanent, network trouble as worth a retry', async () => {
    const db = await open();
    const authFailed = new MongoServerError({ ok: 0, code: 18, codeName: 'AuthenticationFailed', errmsg: 'Authentication failed.' });
    expect(db.isPermanentError(authFailed)).toBe(true);
    expect(db.isPermanentError(new Error('connection failed', { cause: authFailed }))).toBe(true);
    expect(db.isPermanentError(new MongoParseError('Invalid scheme'))).toBe(true);
    expect(db.isPermanentError(new MongoNetworkError('connect ECONNREFUSED'))).toBe(false);
    expect(db.isPermanentError(new MongoServerSelectionError('Server selection timed out after 500 ms', { type: 'Unknown' } as never))).toBe(false);
  });

  it('config fields become MongoClient options', async () => {
    const db = await open({
      application_name: 'dbm-docs',
      max_open_conns: 7,
      conn_max_idle_time: '2m',
      connect_timeout: '4s',
      query_timeout: '9s',
      acquire_timeout: '6s',
      read_preference: 'primaryPreferred',
    });
    const options = db.mongo<MongoClient>().options;
    expect(options).toMatchObject({
      appName: 'dbm-docs',
      maxPoolSize: 7,
      minPoolSize: 0,
      maxIdleTimeMS: 120_000,
      serverSelectionTimeoutMS: 4_000,
      connectTimeoutMS: 4_000,
      timeoutMS: 9_000,
      waitQueueTimeoutMS: 6_000,
    });
    expect(options.readPreference.mode).toBe('primaryPreferred');
    expect(db.orm.config.get('clientUrl')).not.toContain('password');
  });

  it('enable_logging: commands of the EntityManager and of mongo() are logged by name and collection, never their values', async () => {
    const lines: string[] = [];
    const keep = (m: unknown) => void lines.push(String(m));
    const capture: LoggerService = { log: keep, warn: keep, debug: keep, error: keep, verbose: keep };
    Logger.overrideLogger(capture);
    try {
      const db = await open({ enable_logging: true });
      await (db.em.fork() as MongoEntityManager).getCollection('dbm_logged').find({ secret: 'hunter2' }).toArray();
      await db.mongo<MongoClient>().db(server.database).collection('dbm_logged').insertOne({ secret: 'hunter2' });
      expect(lines).toContainEqual(expect.stringMatching(/^query [\d.]+ ms: find dbm_logged$/));
      expect(lines).toContainEqual(expect.stringMatching(/^query [\d.]+ ms: insert dbm_logged$/));
      expect(lines.join('\n')).not.toContain('hunter2');
      expect(lines.join('\n')).not.toMatch(/ms: ping/);
    } finally {
      Logger.overrideLogger(new Logger());
    }
  });

  it('pool figures come from the driver events: in use, waiting, then a wait counted', async () => {
    const db = await open({ max_open_conns: 1, query_timeout: '600ms' });
    const client = db.mongo<MongoClient>();
    proxy.blackhole();
    const hung = client.db('admin').command({ ping: 1 }).catch((e: Error) => e);
    await expect.poll(() => db.stats().inUse === 1, { timeout: 2_000, interval: 25, message: 'the only connection in use' }).toBe(true);
    const waiting = client.db('admin').command({ ping: 1 }, { timeoutMS: 5_000 });
    await expect.poll(() => db.stats().pending === 1, { timeout: 2_000, interval: 25, message: 'a second caller waiting' }).toBe(true);
    expect(db.stats()).toMatchObject({ open: 1, inUse: 1, idle: 0, pending: 1, max: 1 });
    proxy.forward();
    // query_timeout (timeoutMS) ends the hung command and drops its socket; the waiter gets a fresh connection.
    expect(await hung).toMatchObject({ name: 'MongoOperationTimeoutError' });
    expect(await waiting).toMatchObject({ ok: 1 });
    // The dropped socket also triggers a health check at once (connectionError): let it finish.
    await expect.poll(() => db.stats().pending === 0 && db.stats().inUse === 0, { timeout: 2_000, interval: 25, message: 'the pool to settle' }).toBe(true);
    const stats = db.stats();
    expect(stats).toMatchObject({ open: 1, inUse: 0, idle: 1, pending: 0, waitCount: 1 });
    expect(stats.waitDurationMs).toBeGreaterThan(300);
  });

  it('acquire_timeout (without query_timeout): a checkout waits at most that long, and the timeout is counted', async () => {
    const db = await open({ max_open_conns: 1, query_timeout: 0, acquire_timeout: '300ms' }, { shutdown_timeout: '200ms' });
    const client = db.mongo<MongoClient>();
    proxy.blackhole();
    const hung = client.db('admin').command({ ping: 1 }).catch((e: Error) => e);
    await expect.poll(() => db.stats().inUse === 1, { timeout: 2_000, interval: 25, message: 'the only connection in use' }).toBe(true);
    const started = performance.now();
    await expect(client.db('admin').command({ ping: 1 })).rejects.toMatchObject({ name: 'MongoWaitQueueTimeoutError' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(db.stats().timeouts).toBe(1);
    // After shutdown_timeout, close() ends the command still hung on the black hole, opens no connection to end
    // sessions over, and leaves no socket behind.
    const closing = performance.now();
    await managers.pop()!.close();
    expect(performance.now() - closing).toBeLessThan(1_000);
    expect(await hung).toMatchObject({ name: 'MongoClientClosedError' });
    await expect.poll(() => proxy.openSockets === 0, { timeout: 2_000, interval: 25, message: 'no socket left after close()' }).toBe(true);
  });

  it('conn_max_idle_time becomes maxIdleTimeMS: idle connections close and are counted', async () => {
    const db = await open({ conn_max_idle_time: '300ms' });
    expect(db.stats().open).toBe(1);
    await expect.poll(() => db.stats().open === 0, { timeout: 3_000, interval: 25, message: 'the idle connection to close' }).toBe(true);
    expect(db.stats().idleClosed).toBe(1);
    expect((await db.healthCheck()).status).toBe('up');
  });

  it('bounds a connect to a server that accepts TCP and never answers by connect_timeout, leaking no client', async () => {
    proxy.blackhole();
    const started = performance.now();
    const error = (await DbManager.create({ retry_attempts: 1, connections: { docs: fields({ connect_timeout: '500ms' }) } } as DbManagerConfigInput).catch(
      (e: unknown) => e,
    )) as Error;
    const elapsed = performance.now() - started;
    expect(error.name).toBe('ConnectionFailedError');
    expect(error.message).toMatch(/Server selection timed out after 500 ms/);
    expect(elapsed).toBeGreaterThan(450);
    expect(elapsed).toBeLessThan(2_500);
    await expect.poll(() => proxy.openSockets === 0, { timeout: 2_000, interval: 25, message: 'no socket left to the black hole' }).toBe(true);
  });

  it('a ping to a hung server is bounded by its timeout and does not pile up', async () => {
    const db = await open({ max_open_conns: 2, connect_timeout: '1s' });
    proxy.blackhole();
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const health = await db.healthCheck({ timeout: 300 });
      expect(health.status).toBe('down');
      expect(performance.now() - started).toBeLessThan(1_200);
    }
    expect(db.stats().pending).toBe(0);
    // The pool (at most max) plus the driver's monitoring socket.
    expect(proxy.openSockets).toBeLessThanOrEqual(3);
    proxy.forward();
    await expect.poll(async () => (await db.healthCheck({ timeout: 500 })).status === 'up', { timeout: 5_000, interval: 25, message: 'health up after the network heals' }).toBe(true);
  });

  it('server stopped: health is down with the real cause; started: up again on the same client', async () => {
    const db = await open({ connect_timeout: '1s' });
    const client = db.mongo();
    await stopServer();
    const down = await db.healthCheck({ timeout: 1_500 });
    expect(down.status).toBe('down');
    expect(down.error).toMatch(/ECONNREFUSED|ECONNRESET|closed|Server selection timed out/i);
    expect(db.stats().lastError).toBe(down.error);

    await startServer();
    await expect.poll(async () => (await db.healthCheck({ timeout: 1_000 })).status === 'up', { timeout: 5_000, interval: 25, message: 'health up after the server is back' }).toBe(true);
    expect(db.mongo()).toBe(client);
    expect(db.stats().reconnects).toBe(1);
    await managers.pop()!.close();
    await expect.poll(() => proxy.openSockets === 0, { timeout: 2_000, interval: 25, message: 'every socket closed after close()' }).toBe(true);
  });

  it('critical: false starts down when the server is away, then comes up with a fresh client once it is back', async () => {
    await stopServer();
    const started = performance.now();
    const db = await open({ critical: false, connect_timeout: '500ms' });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(db.status).toBe('down');
    expect(db.stats().lastError).toMatch(/ECONNREFUSED/);
    expect(() => db.mongo()).toThrow(/Connection "docs": the MongoDB client is not open.*Wait until the connection is up/);

    await startServer();
    expect(await db.healthCheck({ timeout: 2_000 })).toMatchObject({ status: 'up' });
    expect(db.mongo<MongoClient>()).toBeInstanceOf(MongoClient);
    await managers.pop()!.close();
    await expect.poll(() => proxy.openSockets === 0, { timeout: 2_000, interval: 25, message: 'every socket closed after close()' }).toBe(true);
    if (wire) expect(wire.openSockets).toBe(0);
  });

  it.skipIf(!externalHasCredentials)('fails at once, without retrying, on a wrong password (AuthenticationFailed, 18)', async () => {
    const started = performance.now();
    const error = (await DbManager.create({
      retry_attempts: 5,
      retry_delay: '1s',
      connections: { docs: fields({ password: 'wrong-Pa55word' }) },
    } as DbManagerConfigInput).catch((e: unknown) => e)) as Error & { attempts: number };
    expect(performance.now() - started).toBeLessThan(900);
    expect(error.attempts).toBe(1);
    expect(error.message).toMatch(/Authentication failed/);
    expect(error.message).not.toContain('wrong-Pa55word');
  });
  if (!externalHasCredentials) {
    console.log('[mongodb.test] wrong-password check skipped: the MongoDB wire server has no authentication (set DBM_TEST_MONGODB_URL with credentials)');
  }
});
