import { DATABASE_FACTS } from '../drivers/database-facts';
import type { DatabaseType } from '../vocabulary';

/**
 * The one definition of the configuration's shape. Every field is declared here once, keyed by its camelCase name
 * (the snake_case spelling is derived), with its TSDoc, the values it takes and its default. From these tables come
 * the TypeScript input and output types (config.types.ts), the validator (parse-config.ts, check-value.ts), the JSON
 * Schema for editors (json-schema.ts → config.schema.json) and, through each type's facts (lib/drivers/*.facts.ts),
 * which fields apply to which database.
 *
 * A table of our own rather than a schema library (zod 4's toJSONSchema, valibot, TypeBox): what users rely on here is
 * not what those libraries do by default — both spellings of every key, with an error when one object uses both;
 * every problem at once with its path and a "did you mean"; duration strings and their floors; secrets that no
 * message may quote, not even a fragment; fields that apply to one database type only, read from that type's facts
 * without loading its driver. Each would be a custom refinement on top of a library, and the library a runtime
 * dependency of every app; a plain table keeps the rules in one readable place and adds nothing to install.
 */

/** A string; `oneOf` restricts it to a list (`aliases`: older names also accepted, replaced while parsing). */
export interface StringKind {
  readonly kind: 'string';
  readonly nonEmpty?: boolean;
  readonly oneOf?: readonly string[];
  readonly aliases?: readonly string[];
  /** Said after the accepted values, e.g. that they are lowercase. */
  readonly oneOfNote?: string;
  /** Never shown in a message, printed or enumerated (a password, or a URL that may hold one). */
  readonly secret?: boolean;
  /** A connection URL: `${VAR}` in its user-info is percent-encoded on substitution. */
  readonly url?: boolean;
}

/**
 * A duration in ms. Below its floor is an error, never a hot loop or an unbounded wait: a fraction of a millisecond
 * would round to 0, which disables a timeout.
 */
export interface DurationKind {
  readonly kind: 'duration';
  /** Smallest non-zero value, in ms (default 1). */
  readonly floorMs?: number;
  /** Whether 0 is accepted, meaning "off" (default true). */
  readonly zeroAllowed?: boolean;
  /** Why the floor exists, for the error message. */
  readonly floorReason?: string;
}

/** How a field's raw value is read and checked. `mikroOrm` and `connections` are objects checked further on. */
export type FieldKind =
  | StringKind
  | { readonly kind: 'int'; readonly min: number; readonly max: number }
  | DurationKind
  | { readonly kind: 'bool' }
  | { readonly kind: 'tags' }
  | { readonly kind: 'mikroOrm' }
  | { readonly kind: 'connections' };

/** One field: its kind, and where it comes from when the configuration does not set it. */
export type FieldSpec = FieldKind & {
  /** The value when the field is not set (durations in ms). */
  readonly default?: string | number | boolean;
  /** Applies only to the database types whose facts list it (host, sslmode…); the others apply to every type. */
  readonly perType?: true;
  /** The DSN query parameter that stands for this field: validated exactly as the field, and it may not contradict it. */
  readonly dsnParam?: string;
};

/** Longest duration a Node timer can hold (~24.8 days). */
export const MAX_DURATION_MS = 2_147_483_647;

export const DATABASE_TYPES = Object.keys(DATABASE_FACTS) as DatabaseType[];
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
/** `sslmode` values, as libpq spells them. */
export type SslMode = (typeof SSL_MODES)[number];
/** sslmode values that demand TLS for the whole session. */
export const TLS_REQUIRED_MODES: readonly SslMode[] = ['require', 'verify-ca', 'verify-full'];
/** `pooler` values: what sits between the library and PostgreSQL. */
export const POOLERS = ['none', 'pgbouncer'] as const;
export const READ_PREFERENCES = ['primary', 'primaryPreferred', 'secondary', 'secondaryPreferred', 'nearest'] as const;
export const CONNECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** A backoff delay: never 0, or a server that is down gets reconnect attempts in a hot loop. */
const BACKOFF_DURATION = {
  kind: 'duration',
  floorMs: 10,
  zeroAllowed: false,
  floorReason: 'a shorter backoff makes reconnect attempts a hot loop',
} as const satisfies DurationKind;

/** Settings the manager holds as defaults for every connection, and each connection may override. */
export const POOL_FIELDS = {
  /** Most connections the pool opens (MongoDB: `maxPoolSize`). */
  maxOpenConns: { kind: 'int', min: 1, max: 10_000, default: 25 },
  /** Most idle connections kept after a release (capped at max_open_conns, as in Go's database/sql). */
  maxIdleConns: { kind: 'int', min: 0, max: 10_000, default: 5 },
  /** A connection older than this is closed instead of reused (0 = never). */
  connMaxLifetime: { kind: 'duration', default: 30 * 60_000 },
  /** An idle connection is closed after this long (0 = never). */
  connMaxIdleTime: { kind: 'duration', default: 5 * 60_000 },
  /** Bound on opening one server connection, and on startup's first ping (SQLite: how long a statement waits for a lock). */
  connectTimeout: { kind: 'duration', default: 10_000 },
  /** Bound on one statement, enforced by the server where it can (0 = none). */
  queryTimeout: { kind: 'duration', default: 30_000 },
  /** How long a caller waits for a pooled connection before an AcquireTimeoutError. */
  acquireTimeout: { kind: 'duration', default: 30_000 },
  /** Bound on one health ping. */
  healthCheckTimeout: { kind: 'duration', default: 5_000 },
} as const satisfies Record<string, FieldSpec>;

/** The manager's own settings, then the pool defaults it gives every connection. */
export const MANAGER_FIELDS = {
  /** The connection getDefault(), getDefaultDatabase() and the no-name tokens resolve to (default: the first one). */
  defaultConnection: { kind: 'string', nonEmpty: true },
  /** Connection name → its settings; a name is 1-63 letters, digits, `_`, `.` or `-`, starting with a letter or digit. */
  connections: { kind: 'connections' },
  /** Total connect attempts per connection at startup and in add(), at least 1. */
  retryAttempts: { kind: 'int', min: 1, max: 1_000, default: 3 },
  /** First backoff delay (full jitter, doubling per attempt), at least 10ms. */
  retryDelay: { ...BACKOFF_DURATION, default: 1_000 },
  /** Backoff cap, also of the background reconnect loop; at least retry_delay. */
  retryMaxDelay: { ...BACKOFF_DURATION, default: 10_000 },
  /** Period of the background health loop: 0 (no loop) or at least 100ms. */
  healthCheckInterval: {
    kind: 'duration',
    floorMs: 100,
    floorReason: 'a shorter period makes the health loop ping without pause',
    default: 30_000,
  },
  /** Bring a connection that went down back in the background, with backoff, without limit. */
  enableAutoReconnect: { kind: 'bool', default: true },
  /** How long close() waits for in-flight work before closing the pools (0 = as long as it takes). */
  shutdownTimeout: { kind: 'duration', default: 10_000 },
  ...POOL_FIELDS,
} as const satisfies Record<string, FieldSpec>;

/** One connection's settings. `perType` fields apply to the types whose facts list them. */
export const CONNECTION_FIELDS = {
  /** Must equal the connection's key when given. */
  name: { kind: 'string', nonEmpty: true },
  /** The database: postgres, sqlite, mssql, mongodb, mysql or mariadb. */
  type: { kind: 'string', oneOf: DATABASE_TYPES },
  /**
   * A connection URL; overrides host, port, user, password and database (SQLite: the file). Percent-encode the user
   * and password, or leave the password out and set `password`.
   */
  dsn: { kind: 'string', nonEmpty: true, secret: true, url: true },
  /** The server's host name or address. */
  host: { kind: 'string', nonEmpty: true, perType: true },
  /** The server's port (default: the database's own). */
  port: { kind: 'int', min: 1, max: 65_535, perType: true },
  /** The user to log in as. */
  user: { kind: 'string', perType: true },
  /** The user's password (better from the environment: `${DB_PASSWORD}`). */
  password: { kind: 'string', secret: true, perType: true },
  /** The database to use (PostgreSQL: default the user name, as libpq does). */
  database: { kind: 'string', nonEmpty: true, perType: true },
  /** TLS: `require` and `verify-*` refuse a server without TLS; `allow`/`prefer` are treated as `disable` where the client cannot fall back. */
  sslmode: { kind: 'string', oneOf: SSL_MODES, oneOfNote: 'lowercase, as libpq takes them', perType: true, dsnParam: 'sslmode' },
  /** Default schema (PostgreSQL also puts it first on search_path). */
  schema: { kind: 'string', nonEmpty: true, perType: true, dsnParam: 'schema' },
  /**
   * A connection pooler between us and PostgreSQL: `none` (default) or `pgbouncer` (transaction or session mode). With
   * `pgbouncer` no startup parameter it refuses is sent and no setting is silently dropped: query_timeout is enforced by
   * a cancel request, schema must be the server's search_path (checked at startup), and a lent native client refuses
   * what transaction pooling breaks.
   */
  pooler: { kind: 'string', oneOf: POOLERS, perType: true },
  /** The SQLite database file, or `:memory:`. */
  filepath: { kind: 'string', nonEmpty: true, perType: true },
  /** MongoDB authentication database (default `admin` when a user is set). */
  authSource: { kind: 'string', nonEmpty: true, perType: true, dsnParam: 'authSource' },
  /** MongoDB replica set name. */
  replicaSet: { kind: 'string', nonEmpty: true, perType: true, dsnParam: 'replicaSet' },
  /** MongoDB read preference. */
  readPreference: { kind: 'string', oneOf: READ_PREFERENCES, perType: true, dsnParam: 'readPreference' },
  /** OpenTelemetry spans for connect, health checks, reconnects and every query. */
  enableTracing: { kind: 'bool', default: false },
  /** Export this connection's Prometheus series. */
  enableMetrics: { kind: 'bool', default: true },
  /** Queries (their SQL with every literal replaced by `?`) and pool events through the Nest Logger. */
  enableLogging: { kind: 'bool', default: false },
  /**
   * What getDefaultDatabase() returns: `orm` (the EntityManager), `kysely` (MikroORM 7), `knex` (MikroORM 6) or
   * `native`. The Go package's `bun` (the running major's query builder) and `gorm` (`orm`) are accepted with a warning.
   */
  defaultOrm: { kind: 'string', oneOf: ['orm', 'kysely', 'knex', 'native'], aliases: ['bun', 'gorm'], default: 'orm' },
  /** Labels for findByTags(). */
  tags: { kind: 'tags' },
  /** Must be up for the app to start and for /health to be 200; a non-critical one starts down and heals in the background. */
  critical: { kind: 'bool', default: true },
  /** The name the server shows (pg_stat_activity, SQL Server's program name, MongoDB's appName); default: the connection's name. */
  applicationName: { kind: 'string', nonEmpty: true, dsnParam: 'application_name' },
  /** MikroORM options merged into what the library derives: entities, migrations, naming strategy, debug, driverOptions… */
  mikroOrm: { kind: 'mikroOrm' },
  ...POOL_FIELDS,
} as const satisfies Record<string, FieldSpec>;

/** Names of manager, pool and connection fields (camelCase). */
export type ManagerField = keyof typeof MANAGER_FIELDS;
export type PoolField = keyof typeof POOL_FIELDS;
export type ConnectionField = keyof typeof CONNECTION_FIELDS;
/** The connection fields that apply only to the database types whose facts list them. */
export type PerTypeField = { [K in ConnectionField]: (typeof CONNECTION_FIELDS)[K] extends { perType: true } ? K : never }[ConnectionField];

/** MikroORM options that the library derives itself and a user may not override through `mikro_orm`. */
export const RESERVED_MIKRO_ORM_KEYS = ['driver', 'clientUrl', 'host', 'port', 'user', 'password', 'dbName', 'pool', 'contextName'] as const;

/**
 * Query parameters that look like a TLS setting but that this library does not read (compared lowercase, without
 * `-` and `_`): ignoring one would connect in plain text, so they are refused with a pointer to `sslmode`.
 */
export const UNREAD_TLS_PARAMS = ['ssl', 'tls', 'usessl', 'requiressl', 'sslrequired'] as const;

/** The snake_case spelling of a camelCase key, as the Go package's YAML writes it. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A table's field names (its own keys, which `Object.keys` types as plain strings). */
export function fieldNames<T extends Readonly<Record<string, FieldSpec>>>(table: T): Array<keyof T & string> {
  return Object.keys(table) as Array<keyof T & string>;
}

/** Whether a connection field applies to a database type (per its facts). */
export function appliesTo(key: string, spec: FieldSpec, type: DatabaseType): boolean {
  return !spec.perType || (DATABASE_FACTS[type].fields as readonly string[]).includes(key);
}

/** The types a per-type field applies to, in the order types are listed. */
export function typesWith(key: string): DatabaseType[] {
  return DATABASE_TYPES.filter((type) => (DATABASE_FACTS[type].fields as readonly string[]).includes(key));
}
