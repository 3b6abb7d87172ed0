import type { DatabaseType } from './config.types';

/** How a field's raw value is read and checked. */
export type FieldKind =
  | {
      kind: 'string';
      nonEmpty?: boolean;
      oneOf?: readonly string[];
      /** Said after the accepted values, e.g. that they are lowercase. */
      oneOfNote?: string;
      /** Never shown in a message, printed or enumerated (a password, or a URL that may hold one). */
      secret?: boolean;
      /** A connection URL: `${VAR}` in its user-info is percent-encoded on substitution. */
      url?: boolean;
    }
  | { kind: 'int'; min: number; max: number }
  | DurationKind
  | { kind: 'bool' }
  | { kind: 'tags' }
  | { kind: 'object' };

/**
 * A duration in ms. Below its floor is an error, never a hot loop or an unbounded wait: a fraction of a millisecond
 * would round to 0, which disables a timeout.
 */
export interface DurationKind {
  kind: 'duration';
  /** Smallest non-zero value, in ms (default 1). */
  floorMs?: number;
  /** Whether 0 is accepted, meaning "off" (default true). */
  zeroAllowed?: boolean;
  /** Why the floor exists, for the error message. */
  floorReason?: string;
}

export interface FieldSpec {
  /** camelCase key; the snake_case spelling is derived. */
  key: string;
  type: FieldKind;
  /** Connection types the field applies to; absent = all. */
  appliesTo?: readonly DatabaseType[];
  /** The DSN query parameter that stands for this field: validated exactly as the field, and it may not contradict it. */
  dsnParam?: string;
  /** Where a database names that parameter otherwise (MongoDB's `appName`). */
  dsnParamByType?: Partial<Record<DatabaseType, string>>;
}

/** Longest duration a Node timer can hold (~24.8 days). */
export const MAX_DURATION_MS = 2_147_483_647;

export const DATABASE_TYPES: readonly DatabaseType[] = ['postgres', 'sqlite', 'mssql', 'mongodb', 'mysql', 'mariadb'];
export const SERVER_TYPES: readonly DatabaseType[] = ['postgres', 'mssql', 'mongodb', 'mysql', 'mariadb'];
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
/** `sslmode` values, as libpq spells them. */
export type SslMode = (typeof SSL_MODES)[number];
/** sslmode values that demand TLS for the whole session. */
export const TLS_REQUIRED_MODES: readonly SslMode[] = ['require', 'verify-ca', 'verify-full'];
export const READ_PREFERENCES = ['primary', 'primaryPreferred', 'secondary', 'secondaryPreferred', 'nearest'] as const;
export const DEFAULT_ORMS = ['orm', 'kysely', 'knex', 'native', 'bun', 'gorm'] as const;
export const CONNECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** A backoff delay: never 0, or a server that is down gets reconnect attempts in a hot loop. */
const BACKOFF_DURATION: DurationKind = {
  kind: 'duration',
  floorMs: 10,
  zeroAllowed: false,
  floorReason: 'a shorter backoff makes reconnect attempts a hot loop',
};

/** Settings the manager holds as defaults for every connection, and each connection may override. */
export const POOL_FIELDS: readonly FieldSpec[] = [
  { key: 'maxOpenConns', type: { kind: 'int', min: 1, max: 10_000 } },
  { key: 'maxIdleConns', type: { kind: 'int', min: 0, max: 10_000 } },
  { key: 'connMaxLifetime', type: { kind: 'duration' } },
  { key: 'connMaxIdleTime', type: { kind: 'duration' } },
  { key: 'connectTimeout', type: { kind: 'duration' } },
  { key: 'queryTimeout', type: { kind: 'duration' } },
  { key: 'acquireTimeout', type: { kind: 'duration' } },
  { key: 'healthCheckTimeout', type: { kind: 'duration' } },
];

export const MANAGER_FIELDS: readonly FieldSpec[] = [
  { key: 'defaultConnection', type: { kind: 'string', nonEmpty: true } },
  { key: 'connections', type: { kind: 'object' } },
  { key: 'retryAttempts', type: { kind: 'int', min: 1, max: 1_000 } },
  { key: 'retryDelay', type: BACKOFF_DURATION },
  { key: 'retryMaxDelay', type: BACKOFF_DURATION },
  { key: 'healthCheckInterval', type: { kind: 'duration', floorMs: 100, floorReason: 'a shorter period makes the health loop ping without pause' } },
  { key: 'enableAutoReconnect', type: { kind: 'bool' } },
  { key: 'shutdownTimeout', type: { kind: 'duration' } },
  ...POOL_FIELDS,
];

export const CONNECTION_FIELDS: readonly FieldSpec[] = [
  { key: 'name', type: { kind: 'string', nonEmpty: true } },
  { key: 'type', type: { kind: 'string', oneOf: DATABASE_TYPES } },
  { key: 'dsn', type: { kind: 'string', nonEmpty: true, secret: true, url: true } },
  { key: 'host', type: { kind: 'string', nonEmpty: true }, appliesTo: SERVER_TYPES },
  { key: 'port', type: { kind: 'int', min: 1, max: 65_535 }, appliesTo: SERVER_TYPES },
  { key: 'user', type: { kind: 'string' }, appliesTo: SERVER_TYPES },
  { key: 'password', type: { kind: 'string', secret: true }, appliesTo: SERVER_TYPES },
  { key: 'database', type: { kind: 'string', nonEmpty: true }, appliesTo: SERVER_TYPES },
  {
    key: 'sslmode',
    type: { kind: 'string', oneOf: SSL_MODES, oneOfNote: 'lowercase, as libpq takes them' },
    appliesTo: ['postgres', 'mssql', 'mysql', 'mariadb'],
    dsnParam: 'sslmode',
  },
  { key: 'schema', type: { kind: 'string', nonEmpty: true }, appliesTo: ['postgres', 'mssql'], dsnParam: 'schema' },
  { key: 'filepath', type: { kind: 'string', nonEmpty: true }, appliesTo: ['sqlite'] },
  { key: 'authSource', type: { kind: 'string', nonEmpty: true }, appliesTo: ['mongodb'], dsnParam: 'authSource' },
  { key: 'replicaSet', type: { kind: 'string', nonEmpty: true }, appliesTo: ['mongodb'], dsnParam: 'replicaSet' },
  { key: 'readPreference', type: { kind: 'string', oneOf: READ_PREFERENCES }, appliesTo: ['mongodb'], dsnParam: 'readPreference' },
  { key: 'enableTracing', type: { kind: 'bool' } },
  { key: 'enableMetrics', type: { kind: 'bool' } },
  { key: 'enableLogging', type: { kind: 'bool' } },
  { key: 'defaultOrm', type: { kind: 'string', oneOf: DEFAULT_ORMS } },
  { key: 'tags', type: { kind: 'tags' } },
  { key: 'critical', type: { kind: 'bool' } },
  { key: 'applicationName', type: { kind: 'string', nonEmpty: true }, dsnParam: 'application_name', dsnParamByType: { mongodb: 'appName' } },
  { key: 'mikroOrm', type: { kind: 'object' } },
  ...POOL_FIELDS,
];

/**
 * DSN query parameters that stand for no field of their own: SQL Server's TLS switches (what `sslmode` says for the
 * other types). Values are lowercase, as tedious' connection strings write them.
 */
export const TDS_TLS_PARAMS = {
  encrypt: { kind: 'string', oneOf: ['true', 'false', 'strict'] },
  trustServerCertificate: { kind: 'string', oneOf: ['true', 'false'] },
} as const satisfies Record<string, FieldKind>;

/**
 * Query parameters that look like a TLS setting but that this library does not read (compared lowercase, without
 * `-` and `_`): ignoring one would connect in plain text, so they are refused with a pointer to `sslmode`.
 */
export const UNREAD_TLS_PARAMS = ['ssl', 'tls', 'usessl', 'requiressl', 'sslrequired'] as const;

/** Seed defaults (the Go package's), plus ours for the fields it lacks. */
export const POOL_DEFAULTS = {
  maxOpenConns: 25,
  maxIdleConns: 5,
  connMaxLifetime: 30 * 60_000,
  connMaxIdleTime: 5 * 60_000,
  connectTimeout: 10_000,
  queryTimeout: 30_000,
  acquireTimeout: 30_000,
  healthCheckTimeout: 5_000,
} as const;

export const MANAGER_DEFAULTS = {
  retryAttempts: 3,
  retryDelay: 1_000,
  retryMaxDelay: 10_000,
  healthCheckInterval: 30_000,
  enableAutoReconnect: true,
  shutdownTimeout: 10_000,
} as const;

export const CONNECTION_DEFAULTS = {
  enableTracing: false,
  enableMetrics: true,
  enableLogging: false,
  defaultOrm: 'orm',
  critical: true,
} as const;

/** MikroORM options that the library derives itself and a user may not override through `mikro_orm`. */
export const RESERVED_MIKRO_ORM_KEYS = ['driver', 'clientUrl', 'host', 'port', 'user', 'password', 'dbName', 'pool', 'contextName'] as const;

export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
