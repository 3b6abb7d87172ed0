import type { EntityManager, MikroORM, Options } from '@mikro-orm/core';
import type { ConnectionConfig, DatabaseType } from '../config/config.types';
import type { QueryListener } from '../tracing/query-listener';

/** Why the pool closed one of its connections. */
export type CloseReason = 'idle' | 'lifetime' | 'max_idle' | 'broken' | 'shutdown';

/** Live pool gauges, read when asked. */
export interface PoolGauges {
  /** Connections open to the server (in use + idle). */
  open: number;
  inUse: number;
  idle: number;
  /** Callers waiting for a connection. */
  pending: number;
  max: number;
}

/**
 * What a driver reports about its pool as it happens (the connection counts it and forwards it to metrics), and what
 * it asks of the connection that owns the pool.
 */
export interface PoolObserver {
  /** A caller got a connection after `waitMs`; `waited` is true when the pool was saturated when it asked. */
  acquired(waitMs: number, waited: boolean): void;
  /** A caller gave up waiting after `acquire_timeout`. */
  acquireTimedOut(waitMs: number): void;
  /** The pool closed a connection. */
  closed(reason: CloseReason): void;
  /** A pooled connection failed on its own (the server closed it, the network dropped). */
  connectionError(error: unknown): void;
  /** Once the connection is closed, the `ConnectionClosedError` new work gets (with `cause`); undefined while it is open. */
  closedError(cause?: unknown): Error | undefined;
  /** An error's message as one line, with the connection's secrets masked: for messages built from driver errors. */
  describeError(error: unknown): string;
}

/** What shutdown's last resort tore down. */
export interface TornDown {
  /** Connections still lent out to callers: their queries fail. */
  inUse: number;
  /** Connects still under way: nobody's work is lost. */
  connecting: number;
}

/** The MikroORM options a driver derives from one connection's config, and the settings it cannot honour. */
export interface DerivedOrmOptions {
  options: Options;
  /** One line per configured field this database cannot honour (logged once per connection). */
  notApplicable: string[];
}

/** Where a connection points, for span attributes and messages (never credentials). */
export interface ConnectionTarget {
  /** OpenTelemetry `db.system.name`. */
  dbSystem: string;
  namespace?: string;
  address?: string;
  port?: number;
  /** A DSN-shaped description with the password masked. */
  display: string;
}

/** Hands a raw driver client to `fn` and takes it back afterwards. */
export type NativeClientLender = <T>(fn: (client: unknown) => Promise<T> | T) => Promise<T>;

/**
 * One database type: everything that depends on which database a connection talks to lives behind this interface,
 * so the rest of the library never asks "which database is this?".
 */
export interface DbDriver {
  readonly type: DatabaseType;
  /** The MikroORM driver package users install for this type. */
  readonly packageName: string;
  readonly family: 'sql' | 'mongo';
  /** Imports the MikroORM driver package (only when a connection of this type is configured). */
  loadOrmDriver(connectionName: string): Promise<NonNullable<Options['driver']>>;
  ormOptions(config: ConnectionConfig, observer: PoolObserver): DerivedOrmOptions;
  target(config: ConnectionConfig): ConnectionTarget;
  /**
   * Opens the pool (default: MikroORM's own `connect()`). MongoDB builds its client here, so its pool listeners are
   * on before the first connection; on failure it must leave nothing open.
   */
  open?(orm: MikroORM, config: ConnectionConfig, observer: PoolObserver): Promise<void>;
  /** Called after each (re)connect: the pool is new, so listeners go on again. */
  attach(orm: MikroORM, config: ConnectionConfig, observer: PoolObserver): void;
  gauges(orm: MikroORM, config: ConnectionConfig): PoolGauges;
  /**
   * One round trip to the server, bounded by `timeoutMs`; a ping that times out — or whose `signal` aborts (the
   * connection is closing) — is cancelled, not left queued.
   */
  ping(orm: MikroORM, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /**
   * Shutdown, once shutdown_timeout is spent: tears down connections still lent out and connects still under way,
   * so the pool closes at once; says how many of each there were.
   */
  abortInUse?(orm: MikroORM, config: ConnectionConfig): TornDown;
  /** Lends the raw driver client from the shared pool (or the current transaction's connection). */
  withNativeClient<T>(orm: MikroORM, em: EntityManager, fn: (client: unknown) => Promise<T> | T): Promise<T>;
  /** The query builder (SQL only). */
  knex?(orm: MikroORM): unknown;
  /** The MongoClient (MongoDB only). */
  mongo?(orm: MikroORM): unknown;
  /**
   * Reports every query the ORM and query builder run to `listener` (tracing, query logging); called after each
   * (re)connect, like `attach`, and only when a listener exists, so a connection without them pays nothing.
   */
  observeQueries?(orm: MikroORM, listener: QueryListener): void;
  /** Wraps a lent native client so the queries run on it reach `listener`, for that lend only. */
  watchNativeClient?(client: unknown, listener: QueryListener): unknown;
  /** True for errors a retry cannot fix (bad password, unknown database). */
  isPermanentError(error: unknown): boolean;
}

/** Imports a driver package, turning "not installed" into a recognisable result. */
export async function importDriverPackage<T>(load: () => Promise<T>): Promise<T | undefined> {
  try {
    return await load();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}
