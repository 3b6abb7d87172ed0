import type { Logger } from '@nestjs/common';
import type { ConnectionEvents, QueryListener } from '../vocabulary';
import { errorType } from './query-listener';
import { sanitizeOptionsFor, sanitizeSql } from './sql-summary';

/**
 * `enable_logging`: one debug line per query with its duration and its SQL with every literal replaced by `?`
 * (MikroORM inlines parameter values into the SQL it runs, so the raw text could hold a password).
 */
export function queryLog(logger: Logger, dbSystem: string): QueryListener {
  const dialect = sanitizeOptionsFor(dbSystem);
  return (sql) => {
    const started = performance.now();
    return (error) => {
      const ms = (performance.now() - started).toFixed(1);
      const text = sanitizeSql(sql, dialect);
      if (error === undefined) logger.debug(`query ${ms} ms: ${text}`);
      else logger.warn(`query failed after ${ms} ms (${errorType(error)}): ${text}`);
    };
  };
}

/** Something that emits a connection's events (a `DbConnection`). */
interface ConnectionEventSource {
  on<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): () => void;
}

/** `enable_logging`: pool and reconnect events of a connection (status changes are always logged by the connection). */
export function logConnectionEvents(connection: ConnectionEventSource, logger: Logger): void {
  connection.on('closed', (reason) => logger.debug(`pool closed a connection (${reason})`));
  connection.on('acquireTimeout', () => logger.warn('a caller gave up waiting for a pooled connection (acquire_timeout)'));
  connection.on('reconnect', (result) => logger.log(`reconnect attempt: ${result}`));
  connection.on('connectionError', (error) => logger.debug(`a pooled connection failed (${errorType(error)})`));
}
