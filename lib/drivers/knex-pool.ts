import { Logger } from '@nestjs/common';
import type { EntityManager, MikroORM, Options } from '@mikro-orm/core';
import { TransactionContext } from '@mikro-orm/core';
import type { ConnectionConfig } from '../config/config.types';
import { AcquireTimeoutError } from '../errors';
import type { QueryDone, QueryListener } from '../tracing/query-listener';
import type { CloseReason, DbDriver, DerivedOrmOptions, PoolGauges, PoolObserver, TornDown } from './driver';
import { missingTarnInternals, type PooledConnection, rejectPendingAcquires, setCreateRetryDelay, type TarnPool } from './tarn-pool';

export type { PooledConnection } from './tarn-pool';

/** The slice of a knex client this library reads. */
interface KnexClient {
  pool?: TarnPool;
  acquireConnection(): Promise<PooledConnection>;
  releaseConnection(connection: PooledConnection): Promise<void>;
  acquireRawConnection(): Promise<PooledConnection>;
  destroyRawConnection(connection: PooledConnection): Promise<void>;
  query(connection: PooledConnection, query: { sql: string; bindings: unknown[]; options: object }): Promise<unknown>;
}

export interface KnexLike {
  client: KnexClient;
}

/** A ping's own short-lived connection (opened when the pool is saturated), per pool, until it is closed. */
const ownPingConnections = new WeakMap<object, Promise<void>>();
const noop = (): void => undefined;

/** Longest timer Node accepts; stands for "no limit" where tarn needs a number. */
const FOREVER = 2_147_483_647;
const ATTACHED = Symbol('dbmanager.poolAttached');

export function knexOf(orm: MikroORM): KnexLike {
  return (orm.em as unknown as { getKnex(): KnexLike }).getKnex();
}

function poolOf(orm: MikroORM): TarnPool | undefined {
  return knexOf(orm).client.pool;
}

/** Per-database hooks for the knex-based drivers. */
export interface KnexDialectHooks {
  /** True when the pool must keep exactly one connection for its data to live (SQLite `:memory:`). */
  singleConnection?(config: ConnectionConfig): boolean;
  /** Statements or setup run on each new connection (session settings). */
  prepareConnection?(connection: PooledConnection, config: ConnectionConfig): Promise<void>;
  /** Tears down a connection's socket at once, so a hung query or ping stops holding it. */
  destroySocket(connection: PooledConnection): void;
  /** Tears down every socket this connection's driver has open, connects under way included (shutdown's last resort). */
  destroyAllSockets?(config: ConnectionConfig): void;
  /** The statement a health ping runs. */
  pingSql?: string;
  /** True for connect errors a retry cannot fix (bad password, unknown database, a refused protocol). */
  isPermanentError(error: unknown): boolean;
}

/**
 * Builds the pool part of MikroORM's options: size, idle and lifetime closing, acquire timeout, and the hooks
 * that report acquires, waits, timeouts and closes to the observer. Knex's pool has no "max idle": we trim on release.
 */
export function knexPoolOptions(config: ConnectionConfig, observer: PoolObserver, hooks: KnexDialectHooks): DerivedOrmOptions {
  const single = hooks.singleConnection?.(config) ?? false;
  const notApplicable: string[] = [];
  if (single) {
    for (const field of ['maxOpenConns', 'maxIdleConns', 'connMaxLifetime', 'connMaxIdleTime'] as const) {
      if (config.explicit.includes(field)) {
        notApplicable.push(`${field} does not apply: a SQLite :memory: database lives in its one connection, which is never closed or replaced`);
      }
    }
  }
  const userDriverOptions = (config.mikroOrm.driverOptions ?? {}) as Record<string, unknown>;
  const userPool = (userDriverOptions.pool ?? {}) as {
    afterCreate?: (connection: unknown, done: (error: unknown, connection: unknown) => void) => void;
    validate?: (connection: unknown) => boolean | Promise<boolean>;
  };
  const idle = single || config.connMaxIdleTime === 0 ? FOREVER : config.connMaxIdleTime;
  const lifetime = single ? 0 : config.connMaxLifetime;

  const pool = {
    min: single ? 1 : 0,
    max: single ? 1 : config.maxOpenConns,
    idleTimeoutMillis: idle,
    // Idle connections close between idle time and idle time + reap interval.
    reapIntervalMillis: Math.max(50, Math.min(1_000, Math.floor(idle / 4))),
    acquireTimeoutMillis: config.acquireTimeout || FOREVER,
    createTimeoutMillis: config.connectTimeout ? config.connectTimeout + 1_000 : FOREVER,
    // A failed connect does not fail a waiting caller: the pool retries with backoff (see attachKnexPool) while callers
    // wait up to acquire_timeout, and a permanent error fails them all at once.
    propagateCreateError: false,
    afterCreate: (connection: PooledConnection, done: (error: unknown, connection: unknown) => void) => {
      connection.__dbmCreatedAt = performance.now();
      connection.on?.('error', (error: unknown) => observer.connectionError(error));
      Promise.resolve(hooks.prepareConnection?.(connection, config)).then(
        () => (userPool.afterCreate ? userPool.afterCreate(connection, done) : done(null, connection)),
        (error: unknown) => done(error, connection),
      );
    },
    validate: async (connection: PooledConnection) => {
      if (lifetime > 0 && performance.now() - (connection.__dbmCreatedAt ?? 0) > lifetime) {
        connection.__dbmClose = 'lifetime';
        return false;
      }
      return userPool.validate ? userPool.validate(connection) : true;
    },
  };
  // Knex's own warnings ("Connection Error: …") go to the Nest logger at debug level: our status changes already say it at warn.
  const logger = new Logger(`DbManager:${config.name}`);
  const log = { warn: (m: unknown) => logger.debug(String(m)), error: (m: unknown) => logger.debug(String(m)), deprecate: () => undefined, debug: () => undefined };
  const options: Options = {
    pool: { min: pool.min, max: pool.max },
    driverOptions: { log, ...userDriverOptions, pool: { ...userPool, ...pool } },
  };
  return { options, notApplicable };
}

/** What a server database adds to the pool options: its defaults and how its driver's connection settings are built. */
export interface KnexServerSpec {
  defaultPort: number;
  /** The name MikroORM gets (each database has its own default when none is configured). */
  dbName: string;
  /** DSN query parameters the driver passes on (the rest are reported as not used). */
  passedDsnParams?: readonly string[];
  /** The driver's `driverOptions.connection`, built on the user's own; lines for fields it cannot honour go to `notApplicable`. */
  connection(user: Record<string, unknown>, notApplicable: string[]): Record<string, unknown>;
}

/** The pool options plus the server's address, credentials and connection settings: what every server driver derives. */
export function knexServerOptions(config: ConnectionConfig, observer: PoolObserver, hooks: KnexDialectHooks, server: KnexServerSpec): DerivedOrmOptions {
  const derived = knexPoolOptions(config, observer, hooks);
  const driverOptions = derived.options.driverOptions as Record<string, unknown>;
  const connection = server.connection((driverOptions.connection ?? {}) as Record<string, unknown>, derived.notApplicable);
  derived.options = {
    ...derived.options,
    host: config.host,
    port: config.port ?? server.defaultPort,
    user: config.user,
    password: config.password,
    dbName: server.dbName,
    schema: config.schema,
    driverOptions: { ...driverOptions, connection },
  };
  for (const key of Object.keys(config.dsnParams)) {
    if (!server.passedDsnParams?.includes(key)) derived.notApplicable.push(`dsn parameter "${key}" is not used`);
  }
  return derived;
}

/** Listens to the pool's events (once per pool: a reconnect builds a new one). */
export function attachKnexPool(orm: MikroORM, config: ConnectionConfig, observer: PoolObserver, hooks: KnexDialectHooks): void {
  const pool = poolOf(orm) as (TarnPool & { [ATTACHED]?: boolean }) | undefined;
  if (!pool || pool[ATTACHED]) return;
  pool[ATTACHED] = true;
  const single = hooks.singleConnection?.(config) ?? false;
  const maxIdle = single ? Infinity : config.maxIdleConns;
  const started = new Map<number, { at: number; saturated: boolean }>();
  let reaping = false;
  let destroying = false;
  warnOnceIfTarnDiffers(pool, config);
  const creates = watchCreates(pool, hooks);
  guardAcquires(knexOf(orm).client, config, observer, creates);

  pool.on('acquireRequest', (eventId: number) => {
    const saturated = pool.numFree() === 0 && pool.numUsed() + pool.numPendingCreates() >= pool.max;
    started.set(eventId, { at: performance.now(), saturated });
  });
  pool.on('acquireSuccess', (eventId: number) => {
    const start = started.get(eventId);
    started.delete(eventId);
    if (start) observer.acquired(performance.now() - start.at, start.saturated);
  });
  pool.on('acquireFail', (eventId: number, error: Error) => {
    const start = started.get(eventId);
    started.delete(eventId);
    // tarn's TimeoutError keeps the default Error name; its class name tells it apart from create errors.
    if (error?.constructor?.name === 'TimeoutError') observer.acquireTimedOut(start ? performance.now() - start.at : 0);
  });
  pool.on('destroyRequest', (_eventId: number, connection: PooledConnection) => {
    const reason: CloseReason =
      connection.__dbmClose ?? (destroying ? 'shutdown' : connection.__knex__disposed ? 'broken' : reaping ? 'idle' : 'broken');
    observer.closed(reason);
  });
  pool.on('release', () => {
    if (pool.free.length + 1 > maxIdle) queueMicrotask(() => trimIdle(pool, maxIdle));
  });

  const check = pool.check.bind(pool);
  pool.check = () => {
    reaping = true;
    try {
      check();
    } finally {
      reaping = false;
    }
  };
  const destroy = pool.destroy.bind(pool);
  pool.destroy = () => {
    destroying = true;
    // A ping's own connection is not the pool's: wait for it too, so closing leaves no socket behind.
    return Promise.all([destroy(), ownPingConnections.get(pool)]).then(([result]) => result);
  };
}

/**
 * Shutdown's last resort once shutdown_timeout is spent: tears down what would keep the pool from closing —
 * connections still lent out (hung queries, open transactions; those fail) and connects still under way (a pending
 * create or a ping's own connection waits for connect_timeout otherwise). Nothing torn down leaves the pool to close
 * gracefully.
 */
export function abortKnexInUse(orm: MikroORM, hooks: KnexDialectHooks, config?: ConnectionConfig): TornDown {
  const pool = poolOf(orm);
  if (!pool) return { inUse: 0, connecting: 0 };
  const connecting = pool.numPendingCreates() + (ownPingConnections.has(pool) ? 1 : 0);
  const used = Array.isArray(pool.used) ? [...pool.used] : [];
  for (const { resource } of used) {
    resource.__knex__disposed ??= 'aborted: the connection was closed at shutdown';
    hooks.destroySocket(resource);
    // Taken back now: tarn's destroy() waits for every lent connection, and a holder that never returns (a native
    // client callback awaiting something else) would hold close() forever. Its own release later is a no-op.
    pool.release(resource);
  }
  if (connecting && config) hooks.destroyAllSockets?.(config);
  return { inUse: used.length, connecting };
}

/** Closes the longest-idle free connections beyond `maxIdle` (tarn keeps free connections oldest first). */
function trimIdle(pool: TarnPool, maxIdle: number): void {
  while (pool.free.length > maxIdle) {
    const oldest = pool.free.shift()!;
    oldest.settle();
    oldest.resource.__dbmClose = 'max_idle';
    void pool._destroy(oldest.resource);
  }
}

/** A knex query event's payload: `__knexQueryUid` is set on queries run through a builder or `raw` (not on our pings). */
interface KnexQueryEvent {
  __knexQueryUid?: string;
  sql?: unknown;
}

interface KnexEvents {
  on(event: 'query', listener: (query: KnexQueryEvent) => void): unknown;
  on(event: 'query-response', listener: (response: unknown, query: KnexQueryEvent) => void): unknown;
  on(event: 'query-error', listener: (error: unknown, query: KnexQueryEvent) => void): unknown;
}

const QUERIES_OBSERVED = Symbol('dbmanager.queriesObserved');
/** Queries whose end never comes (a knex timeout without cancel emits nothing) are ended after this many newer ones. */
const MAX_RUNNING_QUERIES = 1_000;

/**
 * Reports each query run through this knex instance (EntityManager and query builder alike) to `listener`, from
 * knex's `query` / `query-response` / `query-error` events. Once per knex instance: a reconnect builds a new one.
 */
export function observeKnexQueries(orm: MikroORM, listener: QueryListener): void {
  const knex = knexOf(orm) as KnexLike & KnexEvents & { [QUERIES_OBSERVED]?: boolean };
  if (knex[QUERIES_OBSERVED]) return;
  knex[QUERIES_OBSERVED] = true;
  const running = new Map<string, QueryDone>();
  const end = (query: KnexQueryEvent | undefined, error?: unknown) => {
    const id = query?.__knexQueryUid;
    const done = id === undefined ? undefined : running.get(id);
    if (!done) return;
    running.delete(id!);
    done(error);
  };
  knex.on('query', (query) => {
    if (typeof query?.__knexQueryUid !== 'string' || typeof query.sql !== 'string') return;
    if (running.size >= MAX_RUNNING_QUERIES) {
      const [oldest, done] = running.entries().next().value!;
      running.delete(oldest);
      done(new QueryOutcomeUnknownError());
    }
    running.set(query.__knexQueryUid, listener(query.sql));
  });
  knex.on('query-response', (_response, query) => end(query));
  knex.on('query-error', (error, query) => end(query, error ?? new Error('query failed')));
}

/** Ends a query span whose result knex never reported. */
class QueryOutcomeUnknownError extends Error {
  override name = 'QueryOutcomeUnknownError';
}

export function knexPoolGauges(orm: MikroORM, config: ConnectionConfig, hooks: KnexDialectHooks): PoolGauges {
  const pool = poolOf(orm);
  const max = hooks.singleConnection?.(config) ? 1 : config.maxOpenConns;
  if (!pool) return { open: 0, inUse: 0, idle: 0, pending: 0, max };
  const inUse = pool.numUsed();
  const idle = pool.numFree();
  return { open: inUse + idle, inUse, idle, pending: pool.numPendingAcquires(), max };
}

/**
 * A ping that cannot pile up: it borrows a pooled connection when one can be had (opening one if the pool has room),
 * or — when every connection is busy — opens one short-lived connection of its own. On timeout the pending acquire
 * is aborted and a hung connection's socket destroyed, so nothing stays queued and the server sees at most max + 1.
 */
export async function pingKnex(orm: MikroORM, timeoutMs: number, hooks: KnexDialectHooks, signal?: AbortSignal): Promise<void> {
  const client = knexOf(orm).client;
  const pool = client.pool;
  if (!pool) throw new Error('the connection pool is not open');
  if (signal?.aborted) throw new Error('ping cancelled: the connection is closing');
  const sql = hooks.pingSql ?? 'select 1';
  const saturated = pool.numFree() === 0 && pool.numUsed() + pool.numPendingCreates() >= pool.max;

  let timer: NodeJS.Timeout | undefined;
  let onTimeout: () => void = () => undefined;
  let stop: (error: Error) => void = () => undefined;
  const timeout = new Promise<never>((_, reject) => {
    stop = (error) => {
      onTimeout();
      reject(error);
    };
    if (!timeoutMs) return;
    timer = setTimeout(() => stop(new Error(`ping timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
  });
  // Closing the connection cancels its ping as a timeout would.
  const onAbort = () => stop(new Error('ping cancelled: the connection is closing'));
  signal?.addEventListener('abort', onAbort, { once: true });

  // Its own connection may outlive a timed-out ping until connect_timeout (an opening socket cannot be reached):
  // one at a time, so the server sees at most max + 1, and pool.destroy() waits for it.
  const ownConnectionPing = async (): Promise<void> => {
    const connecting = client.acquireRawConnection();
    onTimeout = () => void connecting.then((c) => hooks.destroySocket(c), () => undefined);
    const connection = await connecting;
    onTimeout = () => hooks.destroySocket(connection);
    try {
      await client.query(connection, { sql, bindings: [], options: {} });
    } finally {
      await client.destroyRawConnection(connection).catch(() => undefined);
    }
  };
  const pooledPing = async (): Promise<void> => {
    const pending = pool.acquire();
    onTimeout = () => pending.abort();
    // The pool retries a failed connect for its waiting callers; a ping reports the first failure instead.
    const onCreateFail = (_eventId: number, error: unknown) => stop(error instanceof Error ? error : new Error(String(error)));
    pool.on('createFail', onCreateFail);
    const connection = await pending.promise.finally(() => pool.removeListener('createFail', onCreateFail));
    onTimeout = () => {
      connection.__knex__disposed = 'health ping timed out';
      hooks.destroySocket(connection);
    };
    try {
      await client.query(connection, { sql, bindings: [], options: {} });
    } catch (error) {
      connection.__knex__disposed ??= error;
      throw error;
    } finally {
      pool.release(connection);
    }
  };
  let ping: Promise<void>;
  if (!saturated) ping = pooledPing();
  else if (ownPingConnections.has(pool)) {
    ping = Promise.reject(new Error("every pooled connection is busy and the previous ping's own connection is still waiting for the server"));
  } else {
    ping = ownConnectionPing();
    const gone = ping.then(noop, noop).finally(() => ownPingConnections.delete(pool));
    ownPingConnections.set(pool, gone);
  }
  try {
    await Promise.race([ping, timeout]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    ping.catch(() => undefined);
  }
}

/** The knex transaction MikroORM is running for this connection in the current async context, if any. */
function currentTransaction(orm: MikroORM, em: EntityManager): { client: KnexClient } | undefined {
  const name = orm.config.get('contextName');
  const inTransaction = TransactionContext.getEntityManager(name) ?? em.getContext(false);
  return inTransaction?.getTransactionContext<{ client: KnexClient }>();
}

/**
 * Lends the raw driver connection from the shared pool and takes it back after `fn`. Inside `em.transactional`
 * it lends the transaction's own connection, so a one-connection pool cannot deadlock.
 */
export async function withKnexNativeClient<T>(orm: MikroORM, em: EntityManager, fn: (client: unknown) => Promise<T> | T): Promise<T> {
  const transaction = currentTransaction(orm, em);
  if (transaction) return fn(await transaction.client.acquireConnection());
  const client = knexOf(orm).client;
  const connection = await client.acquireConnection();
  try {
    return await fn(connection);
  } finally {
    await client.releaseConnection(connection);
  }
}

/** Longest idle time allowed between a failed connect and the pool's next try; it doubles from the first one. */
const CREATE_RETRY_FIRST_MS = 100;
const CREATE_RETRY_MAX_MS = 2_000;

/** What the pool's recent connects tell: the last failure since the last success, if any. */
interface CreateOutcomes {
  lastFailure(): unknown;
}

/**
 * Retries failed connects with backoff (jittered, doubling from 100 ms to 2 s) instead of tarn's fixed 200 ms, and
 * fails every waiting caller at once when the failure is permanent (wrong password, unknown database): waiting
 * would not help them.
 */
function watchCreates(pool: TarnPool, hooks: KnexDialectHooks): CreateOutcomes {
  let failures = 0;
  let last: unknown;
  pool.on('createFail', (_eventId: number, error: unknown) => {
    failures++;
    last = error;
    const ceiling = Math.min(CREATE_RETRY_MAX_MS, CREATE_RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 10));
    setCreateRetryDelay(pool, Math.round(ceiling * (0.5 + Math.random() / 2)));
    if (hooks.isPermanentError(error)) rejectPendingAcquires(pool, error);
  });
  pool.on('createSuccess', () => {
    failures = 0;
    last = undefined;
  });
  return { lastFailure: () => last };
}

/**
 * Every access path (EM, Knex, native) acquires through the knex client: there, an acquire timeout becomes an
 * `AcquireTimeoutError` naming the connection (with the connect error that kept the pool from growing as its cause),
 * and a closed connection refuses with its `ConnectionClosedError`.
 */
function guardAcquires(client: KnexClient, config: ConnectionConfig, observer: PoolObserver, creates: CreateOutcomes): void {
  const acquire = client.acquireConnection.bind(client);
  const asOurs = (error: unknown): unknown => {
    const closed = observer.closedError(error);
    if (closed) return closed;
    if ((error as Error)?.name !== 'KnexTimeoutError') return error;
    const cause = creates.lastFailure();
    return new AcquireTimeoutError(
      config.name,
      config.acquireTimeout,
      client.pool?.max ?? config.maxOpenConns,
      cause === undefined ? undefined : { error: cause, message: observer.describeError(cause) },
    );
  };
  // A rejection handler, not an async wrapper: no extra tick on the (hot) success path.
  client.acquireConnection = () => {
    const closed = observer.closedError();
    if (closed) return Promise.reject(closed);
    return acquire().catch((error: unknown) => {
      throw asOurs(error);
    });
  };
}

const warnedConfigs = new WeakSet<ConnectionConfig>();

/** One warning per connection when the tarn under knex is not the one this library reads the internals of. */
function warnOnceIfTarnDiffers(pool: TarnPool, config: ConnectionConfig): void {
  const missing = missingTarnInternals(pool);
  if (!missing.length || warnedConfigs.has(config)) return;
  warnedConfigs.add(config);
  new Logger(`DbManager:${config.name}`).warn(`this tarn release lacks what the library relies on, so: ${missing.join('; ')}. Install tarn 3 (knex 3 ships it).`);
}

/** The pool half of a `DbDriver` that every knex-based database shares; each driver adds its options, target and errors. */
export function knexDriverMethods(
  hooks: KnexDialectHooks,
): Pick<DbDriver, 'family' | 'attach' | 'gauges' | 'ping' | 'abortInUse' | 'withNativeClient' | 'knex' | 'observeQueries' | 'isPermanentError'> {
  return {
    family: 'sql',
    attach: (orm, config, observer) => attachKnexPool(orm, config, observer, hooks),
    gauges: (orm, config) => knexPoolGauges(orm, config, hooks),
    ping: (orm, timeoutMs, signal) => pingKnex(orm, timeoutMs, hooks, signal),
    abortInUse: (orm, config) => abortKnexInUse(orm, hooks, config),
    withNativeClient: (orm, em, fn) => withKnexNativeClient(orm, em, fn),
    knex: (orm) => knexOf(orm),
    observeQueries: (orm, listener) => observeKnexQueries(orm, listener),
    isPermanentError: (error) => hooks.isPermanentError(error),
  };
}
