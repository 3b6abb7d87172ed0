import type { Options as MikroOrmOptions } from '@mikro-orm/core';
import type { DatabaseType } from '../vocabulary';
import type { SslMode } from './config-schema';

export type { SslMode };

export type { DatabaseType };

/** What `getDefaultDatabase()` returns for a connection: its EntityManager, its query builder (Kysely on MikroORM 7, Knex on 6), or its native client. */
export type DefaultOrm = 'orm' | 'kysely' | 'knex' | 'native';

/** A duration: milliseconds, or a string such as `500ms`, `30s`, `5m`, `1h30m`. */
export type DurationInput = number | string;

/** Pool and timeout settings shared by the manager (as defaults) and each connection. */
export interface PoolOptionsInput {
  /** Most connections the pool opens (default 25). */
  maxOpenConns?: number;
  /** Most idle connections kept after a release (default 5). */
  maxIdleConns?: number;
  /** A connection older than this is closed instead of reused (default 30m; 0 = never). */
  connMaxLifetime?: DurationInput;
  /** An idle connection is closed after this long (default 5m; 0 = never). */
  connMaxIdleTime?: DurationInput;
  /** Bound on opening one server connection (default 10s). */
  connectTimeout?: DurationInput;
  /** Bound on one statement, enforced by the server where it can (default 30s; 0 = none). */
  queryTimeout?: DurationInput;
  /** How long a caller waits for a pooled connection (default 30s). */
  acquireTimeout?: DurationInput;
  /** Bound on one health ping (default 5s). */
  healthCheckTimeout?: DurationInput;
}

/** One connection as written in code (camelCase; snake_case keys are accepted too). */
export interface ConnectionOptionsInput extends PoolOptionsInput {
  /** Must equal the connection's key when given. */
  name?: string;
  type: DatabaseType;
  /**
   * A complete connection URL; overrides host, port, user, password and database. Percent-encode the user and
   * password, or leave the password out and set `password`.
   */
  dsn?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** TLS (PostgreSQL, SQL Server, MySQL/MariaDB): `disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`. */
  sslmode?: string;
  /** Default schema (PostgreSQL/SQL Server). */
  schema?: string;
  /** SQLite file path, or `:memory:`. */
  filepath?: string;
  /** MongoDB authentication database. */
  authSource?: string;
  /** MongoDB replica set name. */
  replicaSet?: string;
  /** MongoDB read preference. */
  readPreference?: string;
  enableTracing?: boolean;
  enableMetrics?: boolean;
  enableLogging?: boolean;
  /** `orm` (default), `kysely` (MikroORM 7), `knex` (MikroORM 6) or `native`; the Go names `bun` (the running major's query builder) and `gorm` (`orm`) are accepted. */
  defaultOrm?: DefaultOrm | 'bun' | 'gorm';
  tags?: Record<string, string>;
  /** Must be up for the app to start and for /health to be 200 (default true). */
  critical?: boolean;
  /** Name shown to the server (pg_stat_activity, SQL Server program name, MongoDB appName); default the connection name. */
  applicationName?: string;
  /** MikroORM options merged into what the library derives (entities, migrations, debug, driverOptions…). */
  mikroOrm?: Partial<MikroOrmOptions>;
}

/** The manager's configuration as written in code (camelCase; snake_case keys are accepted too). */
export interface DbManagerOptionsInput extends PoolOptionsInput {
  /** Default: the first configured connection. */
  defaultConnection?: string;
  /** Total connect attempts per connection at startup (default 3, at least 1). */
  retryAttempts?: number;
  /** First backoff delay (default 1s). */
  retryDelay?: DurationInput;
  /** Backoff cap (default 10s). */
  retryMaxDelay?: DurationInput;
  /** Background health check period (default 30s; 0 disables the loop). */
  healthCheckInterval?: DurationInput;
  /** Bring down connections back in the background (default true). */
  enableAutoReconnect?: boolean;
  /** Bound on waiting for in-flight work at shutdown (default 10s). */
  shutdownTimeout?: DurationInput;
  connections: Record<string, ConnectionOptionsInput>;
}

/** Anything `parseDbManagerConfig` accepts: camelCase or snake_case, optionally wrapped in `{ dbmanager: … }`. */
export type DbManagerConfigInput = DbManagerOptionsInput | { dbmanager: unknown } | Record<string, unknown>;

/**
 * A connection after validation: camelCase, defaults applied, durations in ms. `password` and `dsn` are
 * non-enumerable (printing, JSON and `Object.entries` do not see them; a spread drops them): read them by name.
 */
export interface ConnectionConfig {
  name: string;
  type: DatabaseType;
  /** Non-enumerable: it may hold the password. */
  dsn?: string;
  host?: string;
  port?: number;
  user?: string;
  /** Non-enumerable, as node-postgres keeps its own. */
  password?: string;
  database?: string;
  /** From the field, else the DSN's `sslmode` (SQL Server: also its `encrypt` / `trustServerCertificate`). */
  sslmode?: SslMode;
  schema?: string;
  filepath?: string;
  authSource?: string;
  replicaSet?: string;
  readPreference?: string;
  /** Query parameters of the DSN that are not one of the fields above (passed to the driver where it knows them). */
  dsnParams: Record<string, string>;
  maxOpenConns: number;
  maxIdleConns: number;
  connMaxLifetime: number;
  connMaxIdleTime: number;
  connectTimeout: number;
  queryTimeout: number;
  acquireTimeout: number;
  healthCheckTimeout: number;
  enableTracing: boolean;
  enableMetrics: boolean;
  enableLogging: boolean;
  defaultOrm: DefaultOrm;
  tags: Record<string, string>;
  critical: boolean;
  applicationName: string;
  mikroOrm: Partial<MikroOrmOptions>;
  /** The fields set on this connection itself (camelCase), not inherited from the manager or defaulted. */
  explicit: readonly string[];
}

/** The manager's configuration after validation. */
export interface DbManagerConfig {
  defaultConnection?: string;
  retryAttempts: number;
  retryDelay: number;
  retryMaxDelay: number;
  healthCheckInterval: number;
  enableAutoReconnect: boolean;
  shutdownTimeout: number;
  /** Pool settings given at manager level, inherited by every connection (also those added at runtime). */
  poolDefaults: Partial<Pick<ConnectionConfig, 'maxOpenConns' | 'maxIdleConns' | 'connMaxLifetime' | 'connMaxIdleTime' | 'connectTimeout' | 'queryTimeout' | 'acquireTimeout' | 'healthCheckTimeout'>>;
  /** In configuration order. */
  connections: Record<string, ConnectionConfig>;
}
