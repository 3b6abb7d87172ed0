import { Logger } from '@nestjs/common';
import type { ConnectionConfig } from '../../config/config.types';
import type { RawConnection } from '../adapters/knex';
import { FOREVER } from '../pool-timing';
import type { KnexDialect } from './dialect';


/** The pool options a user may give under `mikro_orm.driverOptions.pool` that we wrap rather than replace. */
interface UserPoolHooks {
  afterCreate?: (connection: unknown, done: (error: unknown, connection: unknown) => void) => void;
  validate?: (connection: unknown) => boolean | Promise<boolean>;
}

/** What the pool tells the session about its connections, through the options it was built with (a `PoolWatch`). */
export interface PoolHooks {
  /** A connection was just created (before the dialect prepares it). */
  created(connection: RawConnection): void;
  /** False for a connection the session has written off (a timed-out ping's, an aborted one): tarn then destroys it. */
  usable(connection: RawConnection): boolean;
}

/** Idle and lifetime limits as the pool applies them (a SQLite `:memory:` database never closes its one connection). */
export function poolLimits(config: ConnectionConfig, dialect: KnexDialect): { max: number; maxIdle: number; idleMs: number; lifetimeMs: number } {
  const single = dialect.singleConnection;
  return {
    max: single ? 1 : config.maxOpenConns,
    maxIdle: single ? Infinity : config.maxIdleConns,
    idleMs: single || config.connMaxIdleTime === 0 ? FOREVER : config.connMaxIdleTime,
    lifetimeMs: single ? 0 : config.connMaxLifetime,
  };
}

/**
 * knex's options for one pool (MikroORM's `driverOptions`): the user's, with size, idle and lifetime closing, the
 * acquire timeout and the hooks that tell the session about each connection. Knex's pool has no "max idle": the
 * session trims on release.
 */
export function knexDriverOptions(config: ConnectionConfig, dialect: KnexDialect, hooks: PoolHooks): Record<string, unknown> {
  const user = (config.mikroOrm.driverOptions ?? {}) as Record<string, unknown>;
  const userPool = (user.pool ?? {}) as UserPoolHooks & Record<string, unknown>;
  const limits = poolLimits(config, dialect);
  const pool = {
    ...userPool,
    min: dialect.singleConnection ? 1 : 0,
    max: limits.max,
    idleTimeoutMillis: limits.idleMs,
    // Idle connections close between idle time and idle time + reap interval.
    reapIntervalMillis: Math.max(50, Math.min(1_000, Math.floor(limits.idleMs / 4))),
    acquireTimeoutMillis: config.acquireTimeout || FOREVER,
    createTimeoutMillis: config.connectTimeout ? config.connectTimeout + 1_000 : FOREVER,
    // A failed connect does not fail a waiting caller: the pool retries with backoff (CreateRetries) while callers wait
    // up to acquire_timeout, and a permanent error fails them all at once.
    propagateCreateError: false,
    // knex (≥ 3.2) replaces a connection older than this when it is next acquired.
    maxConnectionLifetimeMillis: limits.lifetimeMs > 0 ? limits.lifetimeMs : undefined,
    afterCreate: (connection: RawConnection, done: (error: unknown, connection: unknown) => void) => {
      hooks.created(connection);
      Promise.resolve(dialect.prepareConnection?.(connection)).then(
        () => (userPool.afterCreate ? userPool.afterCreate(connection, done) : done(null, connection)),
        (error: unknown) => done(error, connection),
      );
    },
    // Runs on every acquire: not async, so a usable connection costs knex's own await of a boolean, not of a promise.
    validate: (connection: RawConnection) => hooks.usable(connection) && (userPool.validate ? userPool.validate(connection) : true),
  };
  // Knex's own warnings ("Connection Error: …") go to the Nest logger at debug level: our status changes already say it at warn.
  const logger = new Logger(`DbManager:${config.name}`);
  const log = { warn: (m: unknown) => logger.debug(String(m)), error: (m: unknown) => logger.debug(String(m)), deprecate: () => undefined, debug: () => undefined };
  const connection = dialect.connectionSettings?.((user.connection ?? {}) as Record<string, unknown>);
  return { log, ...user, pool, ...(connection ? { connection } : {}) };
}

/** Configured fields a knex pool cannot honour for this connection (logged once). */
export function knexNotApplicable(config: ConnectionConfig, singleConnection: boolean): string[] {
  if (!singleConnection) return [];
  return (['maxOpenConns', 'maxIdleConns', 'connMaxLifetime', 'connMaxIdleTime'] as const)
    .filter((field) => config.explicit.includes(field))
    .map((field) => `${field} does not apply: a SQLite :memory: database lives in its one connection, which is never closed or replaced`);
}
