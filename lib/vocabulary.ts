/**
 * The words every layer shares: what a connection is, how its pool reports itself, where it points. Types only, and
 * it imports nothing, so config, drivers, connections, the manager, health, metrics and tracing may all use it.
 */

/** Database types a connection can have. */
export type DatabaseType = 'postgres' | 'sqlite' | 'mssql' | 'mongodb' | 'mysql' | 'mariadb';

/**
 * `connecting` until the first attempt ends; `up`/`down` after; `idle` while no pool is open on purpose (a `lazy`
 * connection not used yet, or one whose pool `idle_pool_timeout` closed: the next use opens it); `closed` after
 * close() or remove().
 */
export type ConnectionStatus = 'connecting' | 'up' | 'down' | 'idle' | 'closed';

/** The result of one health check of one connection. Never thrown: a down database is reported. */
export interface ConnectionHealth {
  status: 'up' | 'down';
  responseTimeMs: number;
  /** Why it is down (never contains credentials). */
  error?: string;
  /** Set when no pool is open on purpose (status `idle`): reported up without a ping, which would open one. */
  idle?: true;
}

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

/** A connection's pool figures and health, as `stats()` returns them. */
export interface ConnectionStats extends PoolGauges {
  name: string;
  type: string;
  status: ConnectionStatus;
  /** ISO time of the last health check, or null. */
  lastHealthCheck: string | null;
  /** The last failure (never contains credentials), or null. */
  lastError: string | null;
  /** Acquires that had to wait because every connection was busy. */
  waitCount: number;
  /** Total time those acquires waited. */
  waitDurationMs: number;
  /** Acquires that gave up after acquire_timeout. */
  timeouts: number;
  /** Connections closed for reaching conn_max_lifetime. */
  lifetimeClosed: number;
  /** Connections closed for being idle longer than conn_max_idle_time. */
  idleClosed: number;
  /** Connections closed because more than max_idle_conns were idle. */
  maxIdleClosed: number;
  /** Successful reconnects after being down. */
  reconnects: number;
}

/** Why the pool closed one of its connections. */
export type CloseReason = 'idle' | 'lifetime' | 'max_idle' | 'broken' | 'shutdown';

/** What a driver session reports about its pool as it happens; the connection counts it and passes it on. */
export interface PoolObserver {
  /** A caller got a connection after `waitMs`; `waited` is true when the pool was saturated when it asked. */
  acquired(waitMs: number, waited: boolean): void;
  /** A caller gave up waiting after `acquire_timeout`. */
  acquireTimedOut(waitMs: number): void;
  /** The pool closed a connection. */
  closed(reason: CloseReason): void;
  /** A pooled connection failed on its own (the server closed it, the network dropped). */
  connectionError(error: unknown): void;
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

/** Events a connection emits (metrics, tracing and logging listen to them). */
export interface ConnectionEvents {
  acquire: [waitMs: number, waited: boolean];
  acquireTimeout: [waitMs: number];
  closed: [reason: CloseReason];
  status: [status: ConnectionStatus, previous: ConnectionStatus, error: string | undefined];
  healthCheck: [result: ConnectionHealth];
  reconnect: [result: 'success' | 'failure'];
  connectionError: [error: unknown];
}

/** Ends one query: called once, with the error when it failed. */
export type QueryDone = (error?: unknown) => void;

/**
 * Told when a query starts (tracing, query logging); returns the function that ends it. The SQL may carry literal
 * values (MikroORM inlines parameters): listeners must sanitize it before it leaves the process.
 */
export type QueryListener = (sql: string) => QueryDone;
