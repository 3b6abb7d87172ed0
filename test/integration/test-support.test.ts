import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { freePort } from '../support/free-port';
import { mariadbUrlOrSkipReason } from '../support/mariadb';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

// Every client a test opens is ended afterwards, whatever state the test left it in.
const clients: pg.Client[] = [];

function newClient(config: pg.ClientConfig): pg.Client {
  const client = new pg.Client({ connectionTimeoutMillis: 5_000, ...config });
  client.on('error', () => undefined); // a killed server makes idle clients emit 'error'; the tests assert on query results
  clients.push(client);
  return client;
}

async function connectedClient(config: pg.ClientConfig): Promise<pg.Client> {
  const client = newClient(config);
  await client.connect();
  return client;
}

function connectionError(config: pg.ClientConfig): Promise<Error & { code?: string }> {
  return newClient(config).connect().then(
    () => expect.fail('connect should have failed'),
    (err: Error & { code?: string }) => err,
  );
}

async function selectOne(client: pg.Client): Promise<number> {
  const result = await client.query<{ one: number }>('SELECT 1 AS one');
  return result.rows[0]?.one ?? 0;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.end().catch(() => undefined)));
});

describe('embedded PostgreSQL', () => {
  let server: TestPostgres;

  beforeAll(async () => {
    server = await startTestPostgres();
  });

  afterAll(async () => {
    await server?.close();
  });

  it('serves database test to user postgres on a free port', async () => {
    expect(server.port).not.toBe(5432);
    expect(server.url).toBe(`postgres://postgres:pg-test-secret@127.0.0.1:${server.port}/test`);
    const client = await connectedClient({ connectionString: server.url });
    const { rows } = await client.query<{ db: string; who: string }>('SELECT current_database() AS db, current_user AS who');
    expect(rows[0]).toEqual({ db: 'test', who: 'postgres' });
  });

  it('refuses connections after stop() and serves again on the same port after start()', async () => {
    const port = server.port;
    await server.stop();
    expect((await connectionError({ connectionString: server.url })).code).toBe('ECONNREFUSED');

    await server.start();
    expect(server.port).toBe(port);
    expect(await selectOne(await connectedClient({ connectionString: server.url }))).toBe(1);
  });

  it('breaks open connections on kill() and starts again afterwards', async () => {
    const survivor = await connectedClient({ connectionString: server.url });
    await server.kill();
    await expect(survivor.query('SELECT 1')).rejects.toThrow();
    expect((await connectionError({ connectionString: server.url })).code).toBe('ECONNREFUSED');

    await server.start();
    expect(await selectOne(await connectedClient({ connectionString: server.url }))).toBe(1);
  });

  it('terminates only the backends with the given application_name', async () => {
    const victim = await connectedClient({ connectionString: server.url, application_name: 'victim' });
    const bystander = await connectedClient({ connectionString: server.url, application_name: 'bystander' });
    expect(await server.countConnections('victim')).toBe(1);
    expect(await server.countConnections()).toBeGreaterThanOrEqual(2);

    expect(await server.terminateBackends('victim')).toBe(1);

    await expect(victim.query('SELECT 1')).rejects.toThrow();
    expect(await selectOne(bystander)).toBe(1);
    expect(await selectOne(await connectedClient({ connectionString: server.url }))).toBe(1);
    expect(await server.countConnections('victim')).toBe(0);
  });

  it('terminates every other backend when no application_name is given', async () => {
    // Clients ended by earlier tests may still have backends on their way out.
    await vi.waitFor(async () => expect(await server.countConnections()).toBe(0));
    const first = await connectedClient({ connectionString: server.url });
    const second = await connectedClient({ connectionString: server.url });
    expect(await server.terminateBackends()).toBe(2);
    await expect(first.query('SELECT 1')).rejects.toThrow();
    await expect(second.query('SELECT 1')).rejects.toThrow();
    expect(await server.countConnections()).toBe(0);
  });

  it('rejects a wrong password with 28P01', async () => {
    const err = await connectionError({ host: server.host, port: server.port, user: server.user, database: server.database, password: 'wrong' });
    expect(err.code).toBe('28P01');
  });

  it('refuses an explicit port 5432, which belongs to the system PostgreSQL', async () => {
    await expect(startTestPostgres({ port: 5432 })).rejects.toThrow(/5432/);
  });
});

describe('global setup', () => {
  it('provides a reachable postgresUrl', async () => {
    const client = await connectedClient({ connectionString: inject('postgresUrl') });
    expect(await selectOne(client)).toBe(1);
  });

  it('explains why MariaDB tests skip when DBM_TEST_MARIADB_URL is unset', () => {
    const { url, reason } = mariadbUrlOrSkipReason();
    if (process.env.DBM_TEST_MARIADB_URL) expect(url).toBe(process.env.DBM_TEST_MARIADB_URL);
    else expect(reason).toContain('DBM_TEST_MARIADB_URL is not set');
  });
});

describe('TCP proxy', () => {
  const postgresUrl = new URL(inject('postgresUrl'));
  const target = { host: postgresUrl.hostname, port: Number(postgresUrl.port || 5432) };
  let proxy: TcpProxy;

  // The shared server's URL with the proxy in between.
  function urlVia(through: TcpProxy): string {
    const url = new URL(postgresUrl);
    url.hostname = through.host;
    url.port = String(through.port);
    return url.toString();
  }

  beforeAll(async () => {
    proxy = await startTcpProxy(target);
  });

  afterAll(async () => {
    await proxy?.close();
  });

  afterEach(() => {
    proxy.forward();
  });

  it('forwards queries and counts sockets on both sides', async () => {
    const acceptedBefore = proxy.acceptedSockets;
    const client = await connectedClient({ connectionString: urlVia(proxy) });
    expect(await selectOne(client)).toBe(1);
    expect(proxy.openSockets).toBe(1);
    expect(proxy.upstreamSockets).toBe(1);

    await client.end();
    await vi.waitFor(() => expect([proxy.openSockets, proxy.upstreamSockets]).toEqual([0, 0]));
    // Every accepted socket is counted, also once it is gone.
    expect(proxy.acceptedSockets).toBe(acceptedBefore + 1);
  });

  it('blackholes new and existing connections until forward()', async () => {
    const existing = await connectedClient({ connectionString: urlVia(proxy), query_timeout: 300 });
    proxy.blackhole();

    await expect(existing.query('SELECT 1')).rejects.toThrow(/timeout/i);
    const err = await connectionError({ connectionString: urlVia(proxy), connectionTimeoutMillis: 500 });
    expect(err.message).toMatch(/timeout/i);
    // The timed-out client's socket was accepted but never got an upstream; pg destroys it on timeout.
    expect(proxy.upstreamSockets).toBe(1);
    await vi.waitFor(() => expect(proxy.openSockets).toBe(1));

    proxy.forward();
    expect(await selectOne(await connectedClient({ connectionString: urlVia(proxy) }))).toBe(1);
    expect([proxy.openSockets, proxy.upstreamSockets]).toEqual([2, 2]);
  });

  it('dropAll() breaks every open connection', async () => {
    const client = await connectedClient({ connectionString: urlVia(proxy) });
    expect(await selectOne(client)).toBe(1);
    proxy.dropAll();
    await vi.waitFor(() => expect([proxy.openSockets, proxy.upstreamSockets]).toEqual([0, 0]));
    await expect(client.query('SELECT 1')).rejects.toThrow();
  });

  it('close() leaves no socket open and refuses new connections', async () => {
    const own = await startTcpProxy(target);
    const url = urlVia(own);
    await connectedClient({ connectionString: url });
    await connectedClient({ connectionString: url });
    expect([own.openSockets, own.upstreamSockets]).toEqual([2, 2]);

    await own.close();
    expect([own.openSockets, own.upstreamSockets]).toEqual([0, 0]);
    expect((await connectionError({ connectionString: url })).code).toBe('ECONNREFUSED');
  });

  it('listens on a requested port', async () => {
    const port = await freePort();
    const own = await startTcpProxy(target, { port });
    try {
      expect(own.port).toBe(port);
    } finally {
      await own.close();
    }
  });
});
