import type { Options as MikroOrmOptions } from '@mikro-orm/core';
import type { DATABASE_FACTS } from '../drivers/database-facts';
import type { DatabaseType } from '../vocabulary';
import type { CONNECTION_FIELDS, FieldSpec, MANAGER_FIELDS, PerTypeField, POOL_FIELDS, SslMode } from './config-schema';

// Every type here is derived from the field tables in config-schema.ts (hover a camelCase key for its TSDoc there).

export type { DatabaseType, SslMode };

/** A duration unit: `ms`, `s`, `m`, `h`. */
type DurationUnit = 'ms' | 's' | 'm' | 'h';
type DurationPart = `${number}${DurationUnit}`;

/** A duration: milliseconds, or a string such as `500ms`, `30s`, `5m`, `1h30m` (`0` disables a timeout). */
export type DurationInput = number | `${number}` | DurationPart | `${DurationPart}${DurationPart}` | `${DurationPart}${DurationPart}${DurationPart}`;

/** What `getDefaultDatabase()` returns for a connection: its EntityManager, its query builder (Kysely on MikroORM 7, Knex on 6), or its native client. */
export type DefaultOrm = (typeof CONNECTION_FIELDS)['defaultOrm']['oneOf'][number];

/** A camelCase key in snake_case, as the Go package's YAML writes it (`maxOpenConns` → `max_open_conns`). */
type SnakeCase<S extends string> = S extends `${infer Head}${infer Rest}`
  ? `${Head extends Lowercase<Head> ? Head : `_${Lowercase<Head>}`}${SnakeCase<Rest>}`
  : S;

/** A string with a `${VAR}` or `${VAR:-fallback}` in it: replaced from the environment before the value is checked. */
export type EnvReference = `${string}\${${string}}${string}`;

/** The values a field takes in code; any field but `type` may also be an `${ENV}` reference. */
type InputValue<F extends FieldSpec> = F extends { kind: 'string'; oneOf: readonly (infer V)[] }
  ? V | (F extends { aliases: readonly (infer A)[] } ? A : never) | EnvReference
  : F extends { kind: 'string' }
    ? string
    : F extends { kind: 'int' }
      ? number | EnvReference
      : F extends { kind: 'duration' }
        ? DurationInput | EnvReference
        : F extends { kind: 'bool' }
          ? boolean | EnvReference
          : F extends { kind: 'tags' }
            ? Record<string, string>
            : F extends { kind: 'mikroOrm' }
              ? Partial<MikroOrmOptions>
              : Record<string, ConnectionOptionsInput>;

/** The value of a field after parsing: durations in ms, aliases replaced, references resolved. */
type ParsedValue<F extends FieldSpec> = F extends { kind: 'string'; oneOf: readonly (infer V)[] }
  ? V
  : F extends { kind: 'string' }
    ? string
    : F extends { kind: 'int' | 'duration' }
      ? number
      : F extends { kind: 'bool' }
        ? boolean
        : F extends { kind: 'tags' }
          ? Record<string, string>
          : F extends { kind: 'mikroOrm' }
            ? Partial<MikroOrmOptions>
            : Record<string, ConnectionConfig>;

/** Each field of `T` under its camelCase key and its snake_case key, both optional (one object may not use both). */
type BothSpellings<T extends Record<string, FieldSpec>> = { -readonly [K in keyof T]?: InputValue<T[K]> } & {
  -readonly [K in keyof T & string as SnakeCase<K>]?: InputValue<T[K]>;
};

type Connection = typeof CONNECTION_FIELDS;
type CommonConnectionFields = Omit<Connection, 'type' | PerTypeField>;
type FieldsOf<T extends DatabaseType> = Pick<Connection, (typeof DATABASE_FACTS)[T]['fields'][number]>;

/** One connection of type `T` as written in code: only the fields that apply to `T`, camelCase or snake_case. */
export type ConnectionOptionsInputFor<T extends DatabaseType> = { type: T } & BothSpellings<CommonConnectionFields & FieldsOf<T>>;

/** One connection as written in code: `type` says which fields apply (a SQLite connection takes no `host`). */
export type ConnectionOptionsInput = { [T in DatabaseType]: ConnectionOptionsInputFor<T> }[DatabaseType];

/** Pool and timeout settings shared by the manager (as defaults) and each connection. */
export type PoolOptionsInput = BothSpellings<typeof POOL_FIELDS>;

/** The manager's configuration as written in code (camelCase or snake_case keys). */
export type DbManagerOptionsInput = BothSpellings<Omit<typeof MANAGER_FIELDS, 'connections'>> & {
  /** Connection name → its settings. */
  connections: Record<string, ConnectionOptionsInput>;
};

/** What code hands `forRoot`, `forRootAsync`'s factory and `DbManager.create`: the options, or them under `dbmanager`. */
export type DbManagerConfigInput = DbManagerOptionsInput | { dbmanager: DbManagerOptionsInput };

type Parsed<T extends Record<string, FieldSpec>> = { -readonly [K in keyof T]: ParsedValue<T[K]> };
type ParsedConnection = Parsed<Connection>;
/** Fields that always have a value once parsed: a default, or one derived from the connection (its name, `{}`). */
type AlwaysSet = { [K in keyof Connection]: Connection[K] extends { default: unknown } ? K : never }[keyof Connection] | 'name' | 'applicationName' | 'tags' | 'mikroOrm';

/**
 * A connection after validation: camelCase, defaults applied, durations in ms. `password` and `dsn` are
 * non-enumerable (printing, JSON and `Object.entries` do not see them; a spread drops them): read them by name.
 */
export type ConnectionConfig = Pick<ParsedConnection, AlwaysSet> &
  Partial<Omit<ParsedConnection, AlwaysSet | 'type'>> & {
    type: DatabaseType;
    /** Query parameters of the DSN that are not one of the fields (passed to the driver where it knows them). */
    dsnParams: Record<string, string>;
    /** The fields set on this connection itself (camelCase), not inherited from the manager or defaulted. */
    explicit: readonly string[];
  };

type ParsedManager = Parsed<typeof MANAGER_FIELDS>;
/** Manager fields that always have a value once parsed. */
type ManagerDefaulted = { [K in keyof typeof MANAGER_FIELDS]: (typeof MANAGER_FIELDS)[K] extends { default: unknown } ? K : never }[keyof typeof MANAGER_FIELDS];

/** The manager's configuration after validation. */
export type DbManagerConfig = Pick<ParsedManager, Exclude<ManagerDefaulted, keyof typeof POOL_FIELDS> | 'connections'> &
  Partial<Pick<ParsedManager, 'defaultConnection'>> & {
    /** Pool settings given at manager level, inherited by every connection (also those added at runtime). */
    poolDefaults: Partial<Pick<ConnectionConfig, keyof typeof POOL_FIELDS>>;
  };

/**
 * What the value of a key the configuration does not know would have to be: no value is, so the compile error names
 * the key. (An object type, not a message string: a string intersected with the value's own literal type would reduce
 * the whole configuration to `never`, and the error would name nothing.)
 */
type UnknownSetting<K> = { [P in `"${K & string}" is not a known setting here`]: never };
/** The same for a `default_connection` that names no configured connection: the error names it. */
type UnknownConnection<V> = { [P in `"${V & string}" is not a configured connection`]: never };
type KnownKeys<C, Shape> = { [K in keyof C]: K extends keyof Shape ? C[K] : UnknownSetting<K> };
type CheckedConnection<X> = X extends { type: infer T extends DatabaseType } ? KnownKeys<X, ConnectionOptionsInputFor<T>> : X;
/** A literal name must be one of `Names`; a name known only as `string` is checked when the config is parsed. */
type CheckedName<N, Names, V> = string extends N ? V : N extends Names ? V : UnknownConnection<N>;
type ConnectionNames<M> = M extends { connections: infer R } ? keyof R & string : string;
type CheckedManager<M> = {
  [K in keyof M]: K extends 'connections'
    ? { [N in keyof M[K]]: CheckedConnection<M[K][N]> }
    : K extends 'defaultConnection' | 'default_connection'
      ? CheckedName<Exclude<M[K], undefined>, ConnectionNames<M>, M[K]>
      : K extends keyof DbManagerOptionsInput
        ? M[K]
        : UnknownSetting<K>;
};

/**
 * `C` with every key the configuration does not know turned into a compile error, for generic calls (where
 * TypeScript does not check excess properties of an object literal), and `default_connection` held to the configured
 * names. A parsed `DbManagerConfig` passes as it is.
 */
export type CheckedConfigInput<C> = C extends DbManagerConfig ? unknown : C extends { dbmanager: infer M } ? { dbmanager: CheckedManager<M> } : CheckedManager<C>;
