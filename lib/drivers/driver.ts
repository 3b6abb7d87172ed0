import type { MikroORM, Options } from '@mikro-orm/core';
import type { ConnectionConfig } from '../config/config.types';
import { DriverNotInstalledError } from '../errors';
import type { ConnectionTarget, DatabaseType, PoolGauges, PoolObserver, QueryListener } from '../vocabulary';

/** What a connection offers besides its EntityManager: a query builder and native SQL client, or MongoDB's client. */
export type AccessFamily = 'sql' | 'mongo';

/** The MikroORM options a driver derives from one connection's config, and the settings it cannot honour. */
export interface DerivedOrmOptions {
  options: Partial<Options>;
  /** One line per configured field this database cannot honour (logged once per connection). */
  notApplicable: string[];
}

/** What a session is given by the connection that opens it. */
export interface SessionContext {
  /** The validated configuration (holds the password: never log it). */
  readonly config: ConnectionConfig;
  /** Told about acquires, timeouts, closes and connection failures as they happen. */
  readonly observer: PoolObserver;
  /** Told about every query (tracing, query logging); undefined when both are off, so nothing is attached. */
  readonly queries?: QueryListener;
  /** Once the connection is closed, the `ConnectionClosedError` new work gets (with `cause`); undefined while it is open. */
  closedError(cause?: unknown): Error | undefined;
  /** An error's message as one line, the connection's secrets masked: for messages built from driver errors. */
  describeError(error: unknown): string;
  /** A dependency lacks a shape an adapter needs and the feature degrades: said once, as a warning. */
  warn(message: string): void;
}

/** What shutdown's last resort tore down. */
export interface TornDown {
  /** Connections still lent out to callers: their queries fail. */
  inUse: number;
  /** Connects still under way: nobody's work is lost. */
  connecting: number;
}

/**
 * One open pool of one connection and everything that depends on it: its gauges, the bounded ping, the access paths
 * and teardown. A connection holds its session; a reconnect that rebuilds the pool opens a new one.
 */
export interface DriverSession {
  /** Live pool gauges. */
  gauges(): PoolGauges;
  /**
   * One round trip to the server, bounded by `timeoutMs`; a ping that times out — or whose `signal` aborts (the
   * connection is closing) — is cancelled, not left queued.
   */
  ping(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Lends the raw driver client from the shared pool (or the current transaction's connection) for `fn`. */
  withNativeClient<T>(fn: (client: unknown) => Promise<T> | T): Promise<T>;
  /** The Knex query builder on this pool, for SQL sessions on MikroORM 6. */
  knex?(): unknown;
  /** The Kysely query builder on this pool, for SQL sessions on MikroORM 7. */
  kysely?(): unknown;
  /** The MongoClient, for MongoDB sessions. */
  mongo?(): unknown;
  /**
   * Shutdown, once shutdown_timeout is spent: tears down connections still lent out and connects still under way,
   * so the pool closes at once; says how many of each there were.
   */
  abort(): TornDown;
  /** Closes the pool and MikroORM's connection on it. */
  close(): Promise<void>;
}

/**
 * One database type: everything that depends on which database a connection talks to lives behind this interface,
 * so the rest of the library never asks "which database is this?".
 */
export interface DbDriver {
  readonly type: DatabaseType;
  /** The MikroORM driver package users install for this type. */
  readonly packageName: string;
  readonly accessFamily: AccessFamily;
  /** Imports the MikroORM driver package (only when a connection of this type is configured). */
  loadOrmDriver(connectionName: string): Promise<OrmDriverClass>;
  /** MikroORM's options for this connection, before any pool exists (the pool's own come with `open`). */
  ormOptions(config: ConnectionConfig): DerivedOrmOptions;
  target(config: ConnectionConfig): ConnectionTarget;
  /** Opens the connection's pool and returns the session that owns it; on failure it leaves nothing open. */
  open(orm: MikroORM, context: SessionContext): Promise<DriverSession>;
  /** True for errors a retry cannot fix (bad password, unknown database). */
  isPermanentError(error: unknown): boolean;
  /** What to do about an error this database's setup is known to cause (a pooler refusing a setting), for its message. */
  explainError?(error: unknown, config: ConnectionConfig): string | undefined;
}

/** A MikroORM driver class, as `MikroORM.init` takes it. */
export type OrmDriverClass = NonNullable<Options['driver']>;

/**
 * `loadOrmDriver` for a type: imports its MikroORM driver package only when a connection of that type is configured,
 * and turns "not installed" into a `DriverNotInstalledError` naming the connection and the package to install.
 */
export function ormDriverLoader(type: DatabaseType, packageName: string, load: () => Promise<OrmDriverClass>): (connectionName: string) => Promise<OrmDriverClass> {
  return async (connectionName) => {
    try {
      return await load();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') throw new DriverNotInstalledError(connectionName, type, packageName, error);
      throw error;
    }
  };
}
