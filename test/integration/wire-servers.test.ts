import { once } from 'node:events';
import { connect } from 'node:net';
import { MikroORM, type Options } from '@mikro-orm/core';
import { MongoDriver } from '@mikro-orm/mongodb';
import { MsSqlDriver } from '@mikro-orm/mssql';
import { MongoClient, MongoNetworkError, MongoServerError, MongoServerSelectionError } from 'mongodb';
import { type Kysely, sql } from 'kysely';
import { Connection, ConnectionError, Request, RequestError } from 'tedious';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MIKRO_ORM_MAJOR } from '../support/mikro-orm-leg';
import { startMongoWireServer } from '../support/mongo-wire-server';
import { selfSignedCert } from '../support/self-signed-cert';
import { startTdsServer } from '../support/tds-server';
import type { WireServer } from '../support/wire-server';

// These tests drive the real tedious / mongodb / MikroORM code (with its query builder: Kysely on 7, knex on 6) against
// the fake servers: tedious 20 and mongodb 7.6 on the MikroORM 7 leg, tedious 19 and mongodb 6 on the 6 leg.

const PASSWORD = 'Passw0rd!';

// ---------------------------------------------------------------------------------------------
// tedious helpers

/** What a tedious connection reported besides its connect callback. */
interface Observed {
  errorNumbers: number[];
  errors: Error[];
  /** tedious emitted `secure`: TLS was negotiated inside the TDS stream. */
  secure?: boolean;
}

function connectTedious(
  port: number,
  password = PASSWORD,
  observed: Observed = { errorNumbers: [], errors: [] },
  tls: { encrypt: boolean | 'strict'; trustServerCertificate?: boolean; cryptoCredentialsDetails?: { ca: string } } = { encrypt: false, trustServerCertificate: true },
): Promise<Connection> {
  const connection = new Connection({
    server: '127.0.0.1',
    options: { port, trustServerCertificate: true, connectTimeout: 2000, ...tls },
    authentication: { type: 'default', options: { userName: 'sa', password } },
  });
  connection.on('secure', () => (observed.secure = true));
  connection.on('errorMessage', (token: { number: number }) => observed.errorNumbers.push(token.number));
  // tedious emits 'error' when a logged-in connection loses its socket; unhandled, it would crash the run.
  connection.on('error', (err: Error) => observed.errors.push(err));
  return new Promise((resolve, reject) => connection.connect((err) => (err ? reject(err) : resolve(connection))));
}

type Row = Record<string, unknown>;

/** Runs `sql` through sp_executesql (or a plain SQL batch) and collects rows by column name. */
function query(connection: Connection, sql: string, opts: { batch?: boolean; timeoutMs?: number } = {}): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    const rows: Row[] = [];
    const request = new Request(sql, (err) => (err ? reject(err) : resolve(rows)));
    if (opts.timeoutMs !== undefined) request.setTimeout(opts.timeoutMs);
    request.on('row', (columns: Array<{ value: unknown; metadata: { colName: string } }>) => {
      rows.push(Object.fromEntries(columns.map((c) => [c.metadata.colName, c.value])));
    });
    if (opts.batch) connection.execSqlBatch(request);
    else connection.execSql(request);
  });
}

async function closeTedious(connection: Connection): Promise<void> {
  const ended = once(connection, 'end');
  connection.close();
  await ended;
}

const callback = (run: (cb: (err: Error | null | undefined) => void) => void): Promise<void> =>
  new Promise((resolve, reject) => run((err) => (err ? reject(err) : resolve())));

// ---------------------------------------------------------------------------------------------

describe('TDS wire server with tedious', () => {
  let server: WireServer;

  beforeAll(async () => {
    server = await startTdsServer();
  });

  afterAll(async () => {
    await server.close();
  });

  it('answers selects over sp_executesql and SQL batches', async () => {
    const connection = await connectTedious(server.port);
    expect(await query(connection, 'select 1 as x')).toEqual([{ x: 1 }]);
    expect(await query(connection, 'SELECT 42', { batch: true })).toEqual([{ '': 42 }]);
    expect(await query(connection, 'SELECT @@VERSION')).toEqual([{ '': 1 }]);
    expect(await query(connection, 'SET NOCOUNT ON')).toEqual([]);
    await expect(query(connection, "THROW 50001, 'boom', 1")).rejects.toMatchObject({ number: 50001, message: 'boom' });
    await closeTedious(connection);
    await vi.waitFor(() => expect(server.openSockets, 'sockets open').toBe(0), { timeout: 3_000 });
  });

  it('rejects a wrong password with error 18456 and drops the socket', async () => {
    const observed: Observed = { errorNumbers: [], errors: [] };
    const err = await connectTedious(server.port, 'wrong', observed).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'ELOGIN', message: "Login failed for user 'sa'." });
    expect(observed.errorNumbers).toEqual([18456]);
    await vi.waitFor(() => expect(server.openSockets, 'sockets open').toBe(0), { timeout: 3_000 });
  });

  it('cancels a WAITFOR with ATTENTION on request timeout and keeps the connection usable', async () => {
    const connection = await connectTedious(server.port);
    const startedAt = Date.now();
    const err = await query(connection, "WAITFOR DELAY '00:00:05'", { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect(err).toMatchObject({ code: 'ETIMEOUT' });
    expect(Date.now() - startedAt).toBeLessThan(2000);
    expect(await query(connection, 'select 1 as x')).toEqual([{ x: 1 }]);
    // A short WAITFOR simply answers late.
    expect(await query(connection, "waitfor delay '00:00:00.05'")).toEqual([]);
    await closeTedious(connection);
  });

  it('handles Transaction Manager begin/commit/rollback', async () => {
    const connection = await connectTedious(server.port);
    await callback((cb) => connection.beginTransaction(cb));
    expect(await query(connection, 'select 1 as x')).toEqual([{ x: 1 }]);
    await callback((cb) => connection.commitTransaction(cb));
    await callback((cb) => connection.beginTransaction(cb));
    await callback((cb) => connection.rollbackTransaction(cb));
    expect(await query(connection, 'select 2 as y')).toEqual([{ y: 2 }]);
    await closeTedious(connection);
  });

  it('refuses connections after stop() and accepts them again after start() on the same port', async () => {
    const port = server.port;
    const observed: Observed = { errorNumbers: [], errors: [] };
    const connection = await connectTedious(port, PASSWORD, observed);
    const ended = once(connection, 'end');
    await server.stop();
    expect(server.openSockets).toBe(0);
    await ended; // the live connection sees the server go away
    expect(observed.errors).toEqual([expect.objectContaining({ code: 'ESOCKET' })]);

    const refused = await connectTedious(port).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConnectionError);
    // tedious wraps the per-address failures in an AggregateError cause.
    expect((refused as ConnectionError).cause).toMatchObject({ errors: [expect.objectContaining({ code: 'ECONNREFUSED' })] });
    const accepted = server.connectionsAccepted;

    await server.start();
    expect(server.port).toBe(port);
    const again = await connectTedious(port);
    expect(await query(again, 'select 1 as x')).toEqual([{ x: 1 }]);
    expect(server.connectionsAccepted).toBe(accepted + 1);
    await closeTedious(again);
  });
});

describe('TDS wire server with TLS', () => {
  let offered: WireServer;
  let required: WireServer;

  beforeAll(async () => {
    offered = await startTdsServer({ tls: 'offered' });
    required = await startTdsServer({ tls: 'required' });
  });

  afterAll(async () => {
    await offered.close();
    await required.close();
  });

  it('negotiates TLS inside PRELOGIN for a client that asks (tedious emits secure), and serves requests through it', async () => {
    const observed: Observed = { errorNumbers: [], errors: [] };
    const connection = await connectTedious(offered.port, PASSWORD, observed, { encrypt: true });
    expect(observed.secure).toBe(true);
    expect(await query(connection, 'select 1 as x')).toEqual([{ x: 1 }]);
    expect(await query(connection, "waitfor delay '00:00:00.05'")).toEqual([]);
    await closeTedious(connection);
    await vi.waitFor(() => expect(offered.openSockets, 'sockets open').toBe(0), { timeout: 3_000 });
  });

  it('speaks TDS 8 (encrypt: strict): TLS first, then PRELOGIN and login inside it', async () => {
    // tedious checks the certificate in strict mode whatever trustServerCertificate says: the test trusts it as a CA.
    const connection = await connectTedious(offered.port, PASSWORD, undefined, { encrypt: 'strict', cryptoCredentialsDetails: { ca: selfSignedCert().cert } });
    expect(await query(connection, 'select 2 as y')).toEqual([{ y: 2 }]);
    await closeTedious(connection);
  });

  it('lets a client that does not ask for TLS in plain text when only offered, and refuses it when required', async () => {
    const plain: Observed = { errorNumbers: [], errors: [] };
    const connection = await connectTedious(offered.port, PASSWORD, plain);
    expect(plain.secure).toBeUndefined();
    expect(await query(connection, 'select 3 as z')).toEqual([{ z: 3 }]);
    await closeTedious(connection);
    await expect(connectTedious(required.port)).rejects.toMatchObject({ code: 'EENCRYPT', message: "Server requires encryption, set 'encrypt' config option to true." });
  });

  it('its certificate is self-signed: a client that checks it refuses the server', async () => {
    const error = await connectTedious(offered.port, PASSWORD, undefined, { encrypt: true, trustServerCertificate: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(`${(error as Error).message} ${String((error as Error).cause)}`).toMatch(/self[- ]signed certificate/);
  });
});

describe(`TDS wire server with MikroORM ${MIKRO_ORM_MAJOR} (${MIKRO_ORM_MAJOR === 7 ? 'Kysely + tarn' : 'knex + tarn'} + tedious)`, () => {
  let server: WireServer;

  beforeAll(async () => {
    server = await startTdsServer();
  });

  afterAll(async () => {
    await server.close();
  });

  it('connects, queries, runs a transaction, reaches the raw tedious connection and closes quickly', async () => {
    // MikroORM's own SQL Server stack, as it builds it (on 7 Kysely's validate runs a `select 1` on every acquire).
    const created: Connection[] = [];
    const orm = await MikroORM.init({
      driver: MsSqlDriver,
      host: '127.0.0.1',
      port: server.port,
      user: 'sa',
      password: PASSWORD,
      dbName: 'master',
      connect: false,
      ensureDatabase: false,
      discovery: { warnWhenNoEntities: false },
      // MikroORM 7 takes tedious' config and lends each new connection to onCreateConnection; 6 takes knex's.
      ...(MIKRO_ORM_MAJOR === 7
        ? { driverOptions: { options: { encrypt: false } }, onCreateConnection: async (c: unknown) => void created.push(c as Connection) }
        : { driverOptions: { connection: { options: { encrypt: false, trustServerCertificate: true } } } }),
    } as unknown as Options);
    await orm.em.getDriver().connect(); // `orm.driver` is private in the typings; this is the same driver
    const connection = orm.em.getConnection() as unknown as { execute(sql: string): Promise<unknown> };

    expect(await connection.execute('select 1 as x')).toEqual([{ x: 1 }]);
    expect(await orm.isConnected()).toBe(true);
    // Transactions go through tedious' Transaction Manager requests.
    expect(await orm.em.transactional((em) => (em.getConnection() as unknown as typeof connection).execute('select 7 as n'))).toEqual([{ n: 7 }]);

    let raw: Connection;
    if (MIKRO_ORM_MAJOR === 7) {
      const kysely = (orm.em.getConnection() as unknown as { getClient(): Kysely<unknown> }).getClient();
      expect((await sql.raw('select 1').execute(kysely)).rows).toEqual([{ '': 1 }]);
      raw = created[0];
    } else {
      const knex = (orm.em as unknown as { getKnex(): { raw(sql: string): Promise<unknown>; client: { acquireConnection(): Promise<Connection>; releaseConnection(c: Connection): Promise<void> } } }).getKnex();
      expect(await knex.raw('select 1')).toEqual([{ '': 1 }]);
      raw = await knex.client.acquireConnection();
      await knex.client.releaseConnection(raw);
    }
    expect(raw).toBeInstanceOf(Connection);
    expect(await query(raw, 'select 1 as x')).toEqual([{ x: 1 }]);
    expect(server.openSockets).toBeGreaterThan(0);

    const startedAt = Date.now();
    await orm.close(true);
    expect(Date.now() - startedAt).toBeLessThan(2000);
    await vi.waitFor(() => expect(server.openSockets, 'sockets open').toBe(0), { timeout: 3_000 });
  });
});

// ---------------------------------------------------------------------------------------------

describe('MongoDB wire server with the mongodb driver', () => {
  let server: WireServer;
  let url: string;

  beforeAll(async () => {
    server = await startMongoWireServer();
    url = `mongodb://127.0.0.1:${server.port}/test?directConnection=true&serverSelectionTimeoutMS=2000`;
  });

  afterAll(async () => {
    await server.close();
  });

  it('handshakes, pings, finds nothing and acknowledges writes', async () => {
    const client = new MongoClient(url);
    const events: string[] = [];
    client.on('connectionCreated', () => events.push('created'));
    client.on('connectionCheckedOut', () => events.push('checkedOut'));
    await client.connect();

    const db = client.db('test');
    expect(await db.command({ ping: 1 })).toEqual({ ok: 1 });
    expect(await db.collection('things').find({}).toArray()).toEqual([]);
    expect(await db.collection('things').countDocuments()).toBe(0);
    expect(await db.listCollections().toArray()).toEqual([]);
    expect((await db.collection('things').insertOne({ a: 1 })).acknowledged).toBe(true);
    await expect(db.command({ frobnicate: 1 })).rejects.toSatisfy(
      (err: unknown) => err instanceof MongoServerError && err.code === 59 && err.message === 'no such command: frobnicate',
    );
    expect(events).toContain('created');
    expect(events).toContain('checkedOut');

    await client.close();
    await vi.waitFor(() => expect(server.openSockets, 'sockets open').toBe(0), { timeout: 3_000 });
  });

  it('looks down after stop() and recovers on the same client after start()', async () => {
    const client = new MongoClient(url);
    await client.connect();
    const db = client.db('test');
    expect(await db.command({ ping: 1 })).toEqual({ ok: 1 });

    await server.stop();
    const startedAt = Date.now();
    // The pooled connection's socket is gone, so the first ping fails at once and marks the server Unknown...
    await expect(db.command({ ping: 1 })).rejects.toBeInstanceOf(MongoNetworkError);
    // ...after which selection keeps failing to reach it until serverSelectionTimeoutMS (2000) expires.
    await expect(db.command({ ping: 1 })).rejects.toBeInstanceOf(MongoServerSelectionError);
    expect(Date.now() - startedAt).toBeLessThan(3500);

    await server.start();
    const restartedAt = Date.now();
    await vi.waitFor(async () => expect((await db.command({ ping: 1 }, { timeoutMS: 1000 })).ok).toBe(1), { timeout: 5_000, interval: 20 });
    expect(Date.now() - restartedAt).toBeLessThan(5000);

    await client.close();
    await vi.waitFor(() => expect(server.openSockets, 'sockets open').toBe(0), { timeout: 3_000 });
  });
});

describe('MongoDB wire server with MikroORM', () => {
  let server: WireServer;

  beforeAll(async () => {
    server = await startMongoWireServer();
  });

  afterAll(async () => {
    await server.close();
  });

  it('connects, pings through the client and closes', async () => {
    const orm = await MikroORM.init({
      driver: MongoDriver,
      clientUrl: `mongodb://127.0.0.1:${server.port}`,
      dbName: 'test',
      connect: false,
      ensureDatabase: false,
      discovery: { warnWhenNoEntities: false },
      driverOptions: { serverSelectionTimeoutMS: 2000, directConnection: true },
    } as unknown as Options);
    await orm.em.getDriver().connect(); // `orm.driver` is private in the typings; this is the same driver
    const client = (orm.em.getConnection() as unknown as { getClient(): MongoClient }).getClient();
    expect(await client.db('test').command({ ping: 1 })).toEqual({ ok: 1 });
    expect(await orm.isConnected()).toBe(true);

    const startedAt = Date.now();
    await orm.close(true);
    expect(Date.now() - startedAt).toBeLessThan(2000);
    await vi.waitFor(() => expect(server.openSockets, 'sockets open').toBe(0), { timeout: 3_000 });
  });
});

describe('malformed input', () => {
  it.each([
    ['TDS', startTdsServer],
    ['MongoDB', startMongoWireServer],
  ])('%s server drops a client that sends garbage and keeps serving', async (_name, start) => {
    const server = await start();
    try {
      const socket = connect(server.port, server.host);
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      // TDS reads a SQL batch before login, MongoDB an absurd message length: both must hang up.
      socket.write(Buffer.from([0x01, 0x01, 0x00, 0x20, 0x20, 0x00, 0x00, 0x00, ...Array<number>(32).fill(0xff)]));
      await once(socket, 'close');
      await vi.waitFor(() => expect(server.openSockets, 'sockets open').toBe(0), { timeout: 3_000 });
      expect(server.connectionsAccepted).toBe(1);
    } finally {
      await server.close();
    }
  });
});
