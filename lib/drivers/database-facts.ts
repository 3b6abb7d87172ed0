import type { PerTypeField, SslMode } from '../config/config-schema';
import type { SanitizeOptions } from '../tracing/sql-summary';
import type { DatabaseType } from '../vocabulary';
import { mariadbFacts } from './mariadb.facts';
import { mongodbFacts } from './mongodb.facts';
import { mssqlFacts } from './mssql.facts';
import { mysqlFacts } from './mysql.facts';
import { postgresFacts } from './postgres.facts';
import { sqliteFacts } from './sqlite.facts';

/**
 * What the configuration, tracing and messages need to know about one database type, declared beside its driver as
 * plain data: reading it loads no driver package. Everything else about a database stays in its driver.
 */
export interface DatabaseFacts {
  /** OpenTelemetry `db.system.name`. */
  readonly dbSystem: string;
  /** URL schemes its `dsn` may use; the first is how a target is described. */
  readonly dsnSchemes: readonly string[];
  /** The field that says where it is (required unless a `dsn` says it): a server's `host`, or a SQLite `filepath`. */
  readonly address: 'host' | 'filepath';
  /** The per-type connection fields that apply to it (the others are an error on this type). */
  readonly fields: readonly PerTypeField[];
  /** How it reads a DSN's query parameters, where that differs from libpq's exact names. */
  readonly dsnParams?: DsnParamRules;
  /** True for a database that lives only in its open pool (SQLite `:memory:`): closing the pool would lose it. */
  readonly livesInPool?: (filepath: string) => boolean;
  /** Where a string literal or a comment is in its SQL, for the query summaries of spans and logs. */
  readonly sqlDialect?: SanitizeOptions;
}

/** A database's own rules for DSN query parameters. */
export interface DsnParamRules {
  /** Parameter names match whatever their case (MongoDB URI options). */
  readonly caseInsensitive?: boolean;
  /** A field's parameter under another name than the field table's (MongoDB's `appName` for application_name). */
  readonly renamed?: Readonly<Record<string, string>>;
  /** Its client reads TLS parameters (`tls`, `ssl`) of its own: they are passed on, not refused. */
  readonly readsTlsParams?: boolean;
  /** Parameters that say what `sslmode` says, in the database's own words (SQL Server's `encrypt`). */
  readonly tlsSwitches?: TlsSwitches;
}

/** DSN parameters that stand for TLS settings: their accepted values, and how they combine with `sslmode`. */
export interface TlsSwitches {
  /** Parameter → accepted values (exactly, lowercase). */
  readonly values: Readonly<Record<string, readonly string[]>>;
  /** How an error names the TLS settings: `sslmode (or encrypt and trustServerCertificate)`. */
  readonly named: string;
  /**
   * The sslmode they give when none is set, or the contradictions with the one that is (`tlsRequired`: it demands
   * TLS for the whole session). Messages quote only the parameters' own accepted values.
   */
  resolve(sslmode: { mode?: SslMode; tlsRequired: boolean }, params: Readonly<Record<string, string>>): { sslmode?: SslMode; contradictions: string[] };
}

/** Every database type's facts, in the order types are listed to users. */
export const DATABASE_FACTS = {
  postgres: postgresFacts,
  sqlite: sqliteFacts,
  mssql: mssqlFacts,
  mongodb: mongodbFacts,
  mysql: mysqlFacts,
  mariadb: mariadbFacts,
} as const satisfies Record<DatabaseType, DatabaseFacts>;

/** The facts of one type. */
export function factsOf(type: DatabaseType): DatabaseFacts {
  return DATABASE_FACTS[type];
}

/** The SQL dialect options of a database, by its OpenTelemetry `db.system.name` (none for an unknown one). */
export function sqlDialectOf(dbSystem: string): SanitizeOptions {
  return Object.values<DatabaseFacts>(DATABASE_FACTS).find((facts) => facts.dbSystem === dbSystem)?.sqlDialect ?? {};
}
