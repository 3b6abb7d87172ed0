import type { CloseReason } from '../drivers/driver';

/** `connecting` until the first attempt ends; `up`/`down` after; `closed` after close() or remove(). */
export type ConnectionStatus = 'connecting' | 'up' | 'down' | 'closed';

/** The result of one health check of one connection. Never thrown: a down database is reported. */
export interface ConnectionHealth {
  status: 'up' | 'down';
  responseTimeMs: number;
  /** Why it is down (never contains credentials). */
  error?: string;
}

/** A connection's pool figures and health, as `stats()` returns them. */
export interface ConnectionStats {
  name: string;
  type: string;
  status: ConnectionStatus;
  /** ISO time of the last health check, or null. */
  lastHealthCheck: string | null;
  /** The last failure (never contains credentials), or null. */
  lastError: string | null;
  open: number;
  inUse: number;
  idle: number;
  /** Callers waiting for a connection now. */
  pending: number;
  max: number;
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

/** Events a connection emits (metrics and tracing listen to them). */
export interface ConnectionEvents {
  acquire: [waitMs: number, waited: boolean];
  acquireTimeout: [waitMs: number];
  closed: [reason: CloseReason];
  status: [status: ConnectionStatus, previous: ConnectionStatus, error: string | undefined];
  healthCheck: [result: ConnectionHealth];
  reconnect: [result: 'success' | 'failure'];
  connectionError: [error: unknown];
}
