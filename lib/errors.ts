import { mikroOrm } from './mikro-orm-version';

/** The version every @mikro-orm/* package must share: the installed core's, else the current release. */
function installedMikroOrmVersion(): string {
  try {
    return mikroOrm().version;
  } catch {
    return '7.2.1';
  }
}

/** The query builder of the MikroORM major that runs (`kysely()` on 7, `knex()` on 6), for advice in messages. */
function runningQueryBuilder(): 'kysely()' | 'knex()' {
  return installedMikroOrmVersion().startsWith('6.') ? 'knex()' : 'kysely()';
}

/** Base class: every error of this library names the connection it concerns (when there is one). */
export abstract class DbManagerError extends Error {
  /** The connection this error concerns, if any. */
  readonly connectionName?: string;

  protected constructor(message: string, connectionName?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.connectionName = connectionName;
  }
}

/** One problem found in a configuration, with the path of the offending field. */
export interface ConfigIssue {
  /** Dotted path, e.g. `connections.primary.port`. */
  path: string;
  message: string;
}

/** The configuration is invalid; `issues` lists every problem with its path. */
export class DbManagerConfigError extends DbManagerError {
  override readonly name = 'DbManagerConfigError';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: ConfigIssue[] | string, connectionName?: string) {
    const list = typeof issues === 'string' ? [{ path: connectionName ? `connections.${connectionName}` : '', message: issues }] : issues;
    const lines = list.map((i) => `  ${i.path ? `${i.path}: ` : ''}${i.message}`);
    super(
      `Invalid dbmanager configuration (${list.length} problem${list.length === 1 ? '' : 's'}):\n${lines.join('\n')}\n` +
        'Fix these fields in your dbmanager configuration.',
      connectionName,
    );
    this.issues = list;
  }
}

/** `get(name)` (or a token) asked for a connection that is not registered. */
export class ConnectionNotFoundError extends DbManagerError {
  override readonly name = 'ConnectionNotFoundError';
  constructor(connectionName: string, known: readonly string[]) {
    super(
      `Connection "${connectionName}" is not registered (known: ${known.length ? known.join(', ') : 'none'}). ` +
        'Add it under dbmanager.connections or call DbManager.add() first.',
      connectionName,
    );
  }
}

/** A SQL-only access path (`knex()`, `withNativeClient()`) was used on a MongoDB connection. */
export class NotSqlDatabaseError extends DbManagerError {
  override readonly name = 'NotSqlDatabaseError';
  constructor(connectionName: string, type: string, what: string) {
    super(
      `Connection "${connectionName}" is ${type}, not a SQL database, so ${what} is not available. ` +
        'Use connection.mongo() or connection.em instead.',
      connectionName,
    );
  }
}

/** `mongo()` was called on a SQL connection. */
export class NotMongoDatabaseError extends DbManagerError {
  override readonly name = 'NotMongoDatabaseError';
  constructor(connectionName: string, type: string) {
    super(
      `Connection "${connectionName}" is ${type}, not MongoDB, so mongo() is not available. ` +
        `Use connection.${runningQueryBuilder()}, connection.em or connection.withNativeClient() instead.`,
      connectionName,
    );
  }
}

/** An access path of the other MikroORM major was used: `knex()` on MikroORM 7, `kysely()` on MikroORM 6. */
export class QueryBuilderUnavailableError extends DbManagerError {
  override readonly name = 'QueryBuilderUnavailableError';
  constructor(connectionName: string, asked: 'knex()' | 'kysely()', runningVersion: string) {
    const major = runningVersion.split('.')[0];
    const instead = asked === 'knex()' ? 'kysely()' : 'knex()';
    super(
      `Connection "${connectionName}": ${asked} is the query builder of MikroORM ${asked === 'knex()' ? 6 : 7}, and MikroORM ${runningVersion} runs here. ` +
        `Use connection.${instead} (MikroORM ${major}'s), connection.em, or connection.withNativeClient() instead.`,
      connectionName,
    );
  }
}

/** The MikroORM driver package for a configured connection type is not installed. */
export class DriverNotInstalledError extends DbManagerError {
  override readonly name = 'DriverNotInstalledError';
  readonly packageName: string;
  constructor(connectionName: string, type: string, packageName: string, cause?: unknown) {
    super(
      `Connection "${connectionName}" has type "${type}", but its driver package ${packageName} is not installed. ` +
        `Run: npm i -E ${packageName}@${installedMikroOrmVersion()}`,
      connectionName,
      { cause },
    );
    this.packageName = packageName;
  }
}

/** No default connection can be chosen (no connections, or the default was removed). */
export class NoDefaultConnectionError extends DbManagerError {
  override readonly name = 'NoDefaultConnectionError';
  constructor(detail = 'no connection is configured') {
    super(`There is no default connection: ${detail}. Configure a connection or call setDefault(name).`);
  }
}

/**
 * Behind a connection pooler (`pooler: pgbouncer`), something cannot hold: a setting only the server side can provide
 * (refused at startup, so it is never silently dropped), or a statement that transaction pooling breaks (refused on a
 * lent native client). The message names the setting or statement and the fix.
 */
export class PoolerRefusedError extends DbManagerError {
  override readonly name = 'PoolerRefusedError';
  constructor(connectionName: string, pooler: string, what: string, fix: string) {
    super(`Connection "${connectionName}" (pooler: ${pooler}): ${what}. ${fix}`, connectionName);
  }
}

/** A connection could not be opened (after its retries, or at once for errors a retry cannot fix). */
export class ConnectionFailedError extends DbManagerError {
  override readonly name = 'ConnectionFailedError';
  readonly attempts: number;
  /** False when the cause is one a retry cannot fix (bad password, unknown database, a refused protocol), so it was tried once. */
  readonly retryable: boolean;
  constructor(connectionName: string, target: string, attempts: number, cause: unknown, reason: string, retryable = true) {
    const kind = retryable
      ? `This error can pass (the server may come back or free a connection); all ${attempts} attempt${attempts === 1 ? '' : 's'} (retry_attempts) failed.`
      : 'A retry cannot fix this error, so it was tried once.';
    super(
      `Connection "${connectionName}" (${target}) failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${reason.replace(/\.$/, '')}. ${kind} ` +
        'Check that the server is reachable and the credentials are right, or mark the connection critical: false to start without it.',
      connectionName,
      { cause },
    );
    this.attempts = attempts;
    this.retryable = retryable;
  }
}

/** Why connecting stopped before it succeeded or ran out of attempts. */
export type ConnectAbortReason = 'signal' | 'removed' | 'closed';

const ABORTED_BY: Record<ConnectAbortReason, (name: string) => string> = {
  signal: () => 'startup was aborted (the signal given to DbManager.create() fired)',
  removed: (name) => `add() was aborted by remove("${name}")`,
  closed: () => 'connecting was aborted because the DbManager is closing',
};

/**
 * Connecting was stopped while it was still retrying: `DbManager.create()`'s signal fired, `remove(name)` was called
 * during `add(name)`, or the manager was closed. `cause` is the last real connect error (if an attempt had failed).
 */
export class ConnectionAbortedError extends DbManagerError {
  override readonly name = 'ConnectionAbortedError';
  readonly attempts: number;
  readonly reason: ConnectAbortReason;
  constructor(connectionName: string, target: string, reason: ConnectAbortReason, attempts: number, cause: unknown, lastError: string | undefined) {
    const last = lastError ? `; the last attempt failed with: ${lastError}` : '';
    super(
      `Connection "${connectionName}" (${target}): ${ABORTED_BY[reason](connectionName)} after ${attempts} attempt${attempts === 1 ? '' : 's'}${last}. ` +
        'Nothing was left open; connect again (DbManager.create() or add()) once the cause is fixed.',
      connectionName,
      cause === undefined ? undefined : { cause },
    );
    this.attempts = attempts;
    this.reason = reason;
  }
}

/** An operation was refused because the connection or manager is closed. */
export class ConnectionClosedError extends DbManagerError {
  override readonly name = 'ConnectionClosedError';
  /** What is closed: this connection, or the whole manager. */
  readonly closed: 'connection' | 'manager';
  constructor(connectionName: string, closed: 'connection' | 'manager' = 'connection', options?: { cause?: unknown }) {
    super(
      closed === 'manager'
        ? `Cannot add connection "${connectionName}": the DbManager is closed. Create a new manager (DbManager.create() or a new app) to connect again.`
        : `Connection "${connectionName}" is closed. Get a live connection from DbManager.get() (or add() it again).`,
      connectionName,
      options,
    );
    this.closed = closed;
  }
}

/**
 * No pooled connection became available within `acquire_timeout`. When the pool could not open new connections
 * meanwhile (server at its connection limit, refused, timed out), `cause` is the last of those errors.
 */
export class AcquireTimeoutError extends DbManagerError {
  override readonly name = 'AcquireTimeoutError';
  readonly timeoutMs: number;
  constructor(connectionName: string, timeoutMs: number, max: number, cause?: { error: unknown; message: string }) {
    super(
      cause
        ? `Connection "${connectionName}": timed out after ${timeoutMs} ms (acquire_timeout) waiting for a pooled connection; ` +
            `the pool could not open new ones meanwhile: ${cause.message}. Check the server's connection limit and what else holds ` +
            'connections to it, or raise acquire_timeout.'
        : `Connection "${connectionName}": timed out after ${timeoutMs} ms (acquire_timeout) waiting for a pooled connection, ` +
            `all ${max} being in use. Raise max_open_conns or acquire_timeout, or find what holds connections (long transactions, ` +
            'a query run outside the transaction it waits for).',
      connectionName,
      cause ? { cause: cause.error } : undefined,
    );
    this.timeoutMs = timeoutMs;
  }
}
