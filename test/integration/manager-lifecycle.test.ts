import { createServer, type Server, type Socket } from 'node:net';
import { EntitySchema } from '@mikro-orm/core';
import { Logger } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { ConnectionAbortedError, ConnectionClosedError, type ConnectionOptionsInputFor, DbManager, DbManagerConfigError, type PoolOptionsInput } from '../../lib';
import { freePort } from '../support/free-port';
import { LogCapture } from '../support/health-app';
import { startMongoWireServer } from '../support/mongo-wire-server';
import { builderQuery, QUERY_BUILDER, sqlRunner } from '../support/mikro-orm-leg';
import { countBackends } from '../support/pg-activity';
import type { WireServer } from '../support/wire-server';

// Startup that is stopped while it still retries (DbManager.create's signal, remove() during add(), close()), the
// add / remove / close interleavings, and what a DbConnection says once it is gone. Server-side counts come from
// pg_stat_activity, by each test's own application_name.
const url = inject('postgresUrl');
let seq = 0;
const managers: DbManager[] = [];
let logs: LogCapture;

beforeAll(() => {
  logs = new LogCapture();
  Logger.overrideLogger(logs);
});
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
  logs.lines.length = 0;
});

function track(m: DbManager): DbManager {
  managers.push(m);
  return m;
}

/** A PostgreSQL connection with its own application_name. */
function pgConnection(extra: PoolOptionsInput = {}): { app: string; config: ConnectionOptionsInputFor<'postgres'> } {
  const app = `dbm-lifecycle-${process.pid}-${++seq}`;
  return { app, config: { type: 'postgres', dsn: url, application_name: app, ...extra } };
}

/** Resolves right after the manager has logged that many failed attempts of `name` (before its next backoff can end). */
function attemptsFailed(name: string, count: number): Promise<void> {
  return logs.logged('DbManager', new RegExp(`^"${name}" attempt \\d+ failed`), count);
}

const slowRetries = { retry_attempts: 20, retry_delay: '1s', retry_max_delay: '1s' } as const;

describe('DbManager.create(config, { signal })', () => {
  let blackHole: Server;
  const swallowed = new Set<Socket>();

  beforeAll(async () => {
    blackHole = createServer((socket) => {
      swallowed.add(socket);
      socket.resume();
      socket.on('error', () => undefined);
      socket.once('close', () => swallowed.delete(socket));
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const socket of swallowed) socket.destroy();
    await new Promise((resolve) => blackHole.close(resolve));
  });

  it('aborting stops the retries at once and rejects saying startup was aborted, with the last real cause', async () => {
    const port = await freePort();
    const controller = new AbortController();
    const starting = DbManager.create({ ...slowRetries, connections: { primary: { type: 'postgres', host: '127.0.0.1', port } } }, { signal: controller.signal });
    await attemptsFailed('primary', 1);
    const abortedAt = performance.now();
    controller.abort();
    const error = await starting.then(
      () => new Error('create() should have rejected'),
      (e: unknown) => e as Error,
    );
    const ms = Math.round(performance.now() - abortedAt);
    console.log(`[lifecycle] create() aborted during a 1 s backoff: rejected ${ms} ms after the abort: ${error.message}`);
    expect(error).toBeInstanceOf(ConnectionAbortedError);
    expect(error).toMatchObject({ name: 'ConnectionAbortedError', connectionName: 'primary', reason: 'signal', attempts: 1 });
    expect(error.message).toMatch(/^Connection "primary" \(.*\): startup was aborted \(the signal given to DbManager\.create\(\) fired\) after 1 attempt; the last attempt failed with: connect ECONNREFUSED/);
    expect((error.cause as { code?: string }).code).toBe('ECONNREFUSED');
    expect(ms).toBeLessThan(200);
    // No attempt after the abort.
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    expect(logs.matching('DbManager', /^"primary" attempt \d+ failed/)).toHaveLength(1);
  });

  it('aborting during an attempt to a black hole rejects at once and leaves no socket behind', async () => {
    const { port } = blackHole.address() as { port: number };
    const controller = new AbortController();
    const starting = DbManager.create(
      { ...slowRetries, shutdown_timeout: '10s', connections: { hole: { type: 'postgres', host: '127.0.0.1', port, connect_timeout: '10s' } } },
      { signal: controller.signal },
    );
    await vi.waitFor(() => expect(swallowed.size).toBe(1));
    const abortedAt = performance.now();
    controller.abort();
    const error = await starting.then(
      () => new Error('create() should have rejected'),
      (e: unknown) => e as Error,
    );
    const ms = Math.round(performance.now() - abortedAt);
    console.log(`[lifecycle] create() aborted during a connect to a black hole (connect_timeout 10 s): rejected ${ms} ms after the abort`);
    expect(error).toMatchObject({ name: 'ConnectionAbortedError', reason: 'signal', attempts: 0 });
    expect(error.message).toMatch(/startup was aborted .* after 0 attempts\. Nothing was left open/);
    expect(ms).toBeLessThan(500);
    await vi.waitFor(() => expect(swallowed.size).toBe(0), { timeout: 1_000 });
    expect(logs.matching(/DbManager/, /still busy/)).toEqual([]);
  });

  it('an already aborted signal connects nothing', async () => {
    const { app, config } = pgConnection();
    const error = await DbManager.create({ connections: { primary: config } }, { signal: AbortSignal.abort() }).catch((e: unknown) => e as Error);
    expect(error).toMatchObject({ name: 'ConnectionAbortedError', attempts: 0 });
    expect(await countBackends(url, app)).toBe(0);
  });
});

describe('add(), remove() and close() interleaved', () => {
  it('concurrent add() of one name: exactly one wins, the others are refused, and no pool is left behind', async () => {
    const m = track(await DbManager.create({ connections: {} }));
    const { app, config } = pgConnection({ max_open_conns: 4 });
    const outcomes = await Promise.allSettled([m.add('dup', config), m.add('dup', config), m.add('dup', config)]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as Error] : []));
    expect(won).toHaveLength(1);
    expect(refused).toHaveLength(2);
    for (const error of refused) {
      expect(error).toBeInstanceOf(DbManagerConfigError);
      expect(error.message).toMatch(/connections\.dup: is already registered/);
    }
    await Promise.all(Array.from({ length: 8 }, () => builderQuery(m.get('dup'), 'select pg_sleep(0.05)')));
    expect(await countBackends(url, app)).toBeLessThanOrEqual(4);
    await m.remove('dup');
    await m.close();
    await vi.waitFor(async () => expect(await countBackends(url, app)).toBe(0), { timeout: 2_000 });
  });

  it('remove(name) while add(name) is retrying stops the retries, and add() rejects saying so', async () => {
    const m = track(await DbManager.create({ ...slowRetries, connections: {} }));
    const port = await freePort();
    const adding = m.add('late', { type: 'postgres', host: '127.0.0.1', port });
    await attemptsFailed('late', 1);
    expect(m.names()).toEqual(['late']);
    await m.remove('late');
    const error = await adding.then(() => new Error('add() should have rejected'), (e: unknown) => e as Error);
    expect(error).toBeInstanceOf(ConnectionAbortedError);
    expect(error).toMatchObject({ connectionName: 'late', reason: 'removed' });
    // Usually 1; a full-jitter backoff (0–1 s) may have let a second refused attempt in before remove().
    const { attempts } = error as ConnectionAbortedError;
    expect(attempts).toBe(logs.matching('DbManager', /^"late" attempt \d+ failed/).length);
    expect(error.message).toMatch(new RegExp(`add\\(\\) was aborted by remove\\("late"\\) after ${attempts} attempts?; the last attempt failed with: connect ECONNREFUSED`));
    expect(m.names()).toEqual([]);
    // Longer than the longest backoff: a retry that outlived remove() would have been logged by now.
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    expect(logs.matching('DbManager', /^"late" attempt \d+ failed/)).toHaveLength(attempts);
    // The name is free again.
    const { config } = pgConnection();
    expect((await m.add('late', config)).status).toBe('up');
  });

  it('close() while add() is retrying stops it; add() after close() says the manager is closed', async () => {
    const m = track(await DbManager.create({ ...slowRetries, connections: {} }));
    const adding = m.add('late', { type: 'postgres', host: '127.0.0.1', port: await freePort() });
    await attemptsFailed('late', 1);
    const started = performance.now();
    await m.close();
    expect(performance.now() - started).toBeLessThan(500);
    await expect(adding).rejects.toMatchObject({ name: 'ConnectionAbortedError', reason: 'closed', connectionName: 'late' });

    const { app, config } = pgConnection();
    const error = await m.add('after', config).then(() => new Error('add() should have rejected'), (e: unknown) => e as Error);
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ connectionName: 'after', closed: 'manager' });
    expect(error.message).toMatch(/^Cannot add connection "after": the DbManager is closed\./);
    expect(await countBackends(url, app)).toBe(0);
  });

  it('remove() of a connection whose add() already resolved closes it, and its name can be added again', async () => {
    const m = track(await DbManager.create({ connections: {} }));
    const first = pgConnection();
    await m.add('tenant', first.config);
    await Promise.all([m.remove('tenant'), expect(m.remove('tenant')).rejects.toThrow(/is not registered/)]);
    const second = pgConnection();
    await m.add('tenant', second.config);
    await vi.waitFor(async () => expect(await countBackends(url, first.app)).toBe(0), { timeout: 2_000 });
    expect(await countBackends(url, second.app)).toBe(1);
  });
});

/** The SQL EntityManager's `execute` (MikroORM 6's SqlEntityManager, 7's), as far as these tests use it. */
interface SqlEntityManagerLike {
  execute(sql: string): Promise<unknown>;
  getConnection(): { execute(sql: string): Promise<unknown> };
}

describe('a DbConnection used after remove()', () => {
  function expectClosed(error: unknown): void {
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ name: 'ConnectionClosedError', connectionName: 'gone' });
    expect((error as Error).message).toMatch(/^Connection "gone" is closed\. Get a live connection from DbManager\.get\(\)/);
  }

  it('fails with ConnectionClosedError naming it on every SQL access path, also through handles taken before', async () => {
    const m = track(await DbManager.create({ connections: {} }));
    const gone = await m.add('gone', pgConnection().config);
    const em = gone.em.fork() as unknown as SqlEntityManagerLike;
    const builder = sqlRunner(gone);
    const orm = gone.orm;
    await m.remove('gone');

    expect(() => gone.em).toThrow(ConnectionClosedError);
    expect(() => gone[QUERY_BUILDER]()).toThrow(ConnectionClosedError);
    const attempts: [string, () => unknown][] = [
      ['connection.em', () => gone.em],
      [`connection.${QUERY_BUILDER}()`, () => gone[QUERY_BUILDER]()],
      ['connection.withNativeClient()', () => gone.withNativeClient(() => 1)],
      ['an EntityManager fork taken before', () => em.execute('select 1')],
      ['its getConnection().execute()', () => em.getConnection().execute('select 1')],
      [`a ${QUERY_BUILDER} taken before`, () => builder.query('select 1')],
      [`a ${QUERY_BUILDER} transaction`, () => builder.transaction((trx) => trx.query('select 1'))],
      ['orm.em', () => (orm.em.fork() as unknown as SqlEntityManagerLike).execute('select 1')],
    ];
    for (const [path, use] of attempts) {
      const error = await Promise.resolve()
        .then(use)
        .then(() => new Error(`${path} should have failed`), (e: unknown) => e);
      expectClosed(error);
    }
  });

  it('a caller still waiting for a connection when remove() closes the pool gets ConnectionClosedError', async () => {
    const m = track(await DbManager.create({ shutdown_timeout: '200ms', connections: {} }));
    const gone = await m.add('gone', pgConnection({ max_open_conns: 1, acquire_timeout: '10s' }).config);
    let release!: () => void;
    const holding = gone.withNativeClient(() => new Promise<void>((resolve) => (release = resolve)));
    await vi.waitFor(() => expect(gone.stats().inUse).toBe(1));
    const waiting = builderQuery(gone, 'select 1').then(() => undefined, (e: unknown) => e);
    await vi.waitFor(() => expect(gone.stats().pending).toBe(1));
    await m.remove('gone');
    release();
    await holding.catch(() => undefined);
    expectClosed(await waiting);
    const warning = logs.matching('DbManager:gone', /still busy/);
    expect(warning).toHaveLength(1);
    expect(warning[0]!.message).toMatch(/^1 connection\(s\) still busy after \d+ ms \(shutdown_timeout\), 1 caller\(s\) still waiting for one: torn down/);
  });

  describe('MongoDB', () => {
    /** A collection MikroORM knows (MikroORM 7 refuses a driver call for an entity it has no metadata for). */
    const Thing = new EntitySchema<{ _id: string }>({ name: 'Thing', collection: 'things', properties: { _id: { type: 'string', primary: true } } });
    let wire: WireServer;
    beforeAll(async () => {
      wire = await startMongoWireServer();
    });
    afterAll(async () => {
      await wire?.close();
    });

    it('fails with ConnectionClosedError naming it through em, mongo() and an EntityManager taken before', async () => {
      const m = track(await DbManager.create({ connections: {} }));
      const gone = await m.add('gone', { type: 'mongodb', host: wire.host, port: wire.port, database: 'test', mikro_orm: { entities: [Thing] } });
      const em = gone.em.fork();
      await m.remove('gone');
      expect(() => gone.mongo()).toThrow(ConnectionClosedError);
      expect(() => gone.em).toThrow(ConnectionClosedError);
      // The driver's error goes through MikroORM's error conversion, which names the closed connection.
      expectClosed(await em.find(Thing, {}).then(() => new Error('find should have failed'), (e: unknown) => e));
    });
  });
});
