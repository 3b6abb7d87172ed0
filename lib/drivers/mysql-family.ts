import type { ConnectionConfig } from '../config/config.types';
import { describeTarget } from '../config/dsn';
import { tlsDemand } from '../config/ssl-mode';
import { destroyMysql2Socket, type Mysql2Connection } from './adapters/mysql2';
import { type DbDriver, type OrmDriverClass } from './driver';
import { mikroOrm } from '../mikro-orm-version';
import type { KnexDialect } from './knex/dialect';
import { KnexSession } from './knex/knex-session';
import { Mysql2PoolSession } from './kysely/mysql2-pool-session';
import { watchQueryMethod, withMethodsReplaced } from './native-watch';
import { serverOrmOptions } from './server-options';

/** Server errors a retry cannot fix: bad credentials, no such database, no right to use it. */
const PERMANENT_ERRNOS = new Set([1044, 1045, 1049, 1698]);
const PERMANENT_CODES = new Set(['ER_DBACCESS_DENIED_ERROR', 'ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR', 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR']);
function isPermanentError(error: unknown): boolean {
  const { errno, code } = (error ?? {}) as { errno?: unknown; code?: unknown };
  return (typeof errno === 'number' && PERMANENT_ERRNOS.has(errno)) || (typeof code === 'string' && PERMANENT_CODES.has(code));
}

/** "Unknown system variable": the server is too old for a statement time limit. */
const ER_UNKNOWN_SYSTEM_VARIABLE = 1193;

/** MikroORM's name for a connection made without a database (it requires one; the server gets none). */
const NO_DATABASE = 'information_schema';
/** DSN query parameters handed to the client library as they are. */
const PASSED_DSN_PARAMS = ['charset'];

/** A raw connection of either client library, as far as this file uses it (both share the callback `query`). */
export interface MySqlFamilyConnection {
  query(sql: string, callback: (error: (Error & { errno?: number }) | null, rows?: unknown) => void): unknown;
}

/** What differs between the two client libraries (mysql2 and the MariaDB connector). */
export interface MySqlClientLibrary {
  /** The server's version string (`10.11.19-MariaDB…`, `8.4.0`…) of an open connection. */
  serverVersion(connection: MySqlFamilyConnection): Promise<string | undefined>;
  /** Tears the socket down at once (a graceful end would wait on a hung server); false when it could not. */
  destroySocket(connection: MySqlFamilyConnection): boolean;
}

/** How `sslmode` maps onto the `ssl` option both client libraries take (with it set, both refuse a server without TLS). */
export function mysqlFamilySsl(config: ConnectionConfig): { rejectUnauthorized: boolean } | undefined {
  const demand = tlsDemand(config.sslmode, config.name);
  return typeof demand === 'object' ? { rejectUnauthorized: demand.verifyCertificate } : undefined;
}

/**
 * A statement time limit the server enforces (the statement fails, the connection stays usable): MariaDB's
 * `max_statement_time` (seconds, every statement), MySQL's `max_execution_time` (ms, SELECT only).
 */
export function statementTimeLimitSql(serverVersion: string | undefined, queryTimeoutMs: number): string {
  return /mariadb/i.test(serverVersion ?? '')
    ? `SET SESSION max_statement_time = ${(queryTimeoutMs / 1000).toFixed(3)}`
    : `SET SESSION max_execution_time = ${Math.floor(queryTimeoutMs)}`;
}

export function runStatement(connection: MySqlFamilyConnection, sql: string): Promise<unknown> {
  return new Promise((resolve, reject) => connection.query(sql, (error, rows) => (error ? reject(error) : resolve(rows))));
}

/**
 * mysql2, the client library of @mikro-orm/mysql on both majors and of @mikro-orm/mariadb on MikroORM 7: the server's
 * version is asked for (its handshake is private).
 */
export const MYSQL2: MySqlClientLibrary = {
  serverVersion: async (connection) => {
    const rows = (await runStatement(connection, 'SELECT VERSION() AS version')) as Array<{ version?: string }>;
    return rows[0]?.version;
  },
  destroySocket: (connection) => destroyMysql2Socket(connection),
};

/** What a MySQL-family pool adds to knex's: the server-enforced statement limit (its syntax learned once per pool). */
function mysqlFamilyDialect(config: ConnectionConfig, library: MySqlClientLibrary, warn: (message: string) => void): KnexDialect {
  let version: Promise<string | undefined> | undefined;
  let warned = false;
  return {
    singleConnection: false,
    isPermanentError,
    connectionSettings(user) {
      const connection: Record<string, unknown> = {
        ...user,
        // 0 disables the timer in both libraries; the MariaDB connector's own default would be 1 s.
        connectTimeout: config.connectTimeout,
        // Shown in performance_schema.session_connect_attrs (when the server has performance_schema on).
        connectAttributes: { ...(user.connectAttributes as object | undefined), program_name: config.applicationName },
      };
      // No database named: connect without one (MikroORM still needs a name, which then only labels it).
      if (!config.database) connection.database = null;
      const ssl = mysqlFamilySsl(config);
      if (ssl) connection.ssl = ssl;
      for (const key of PASSED_DSN_PARAMS) if (config.dsnParams[key] !== undefined) connection[key] = config.dsnParams[key];
      return connection;
    },
    async prepareConnection(connection) {
      if (!config.queryTimeout) return;
      const c = connection as MySqlFamilyConnection;
      version ??= library.serverVersion(c).catch(() => undefined);
      try {
        await runStatement(c, statementTimeLimitSql(await version, config.queryTimeout));
      } catch (error) {
        // MySQL < 5.7.8 and MariaDB < 10.1 have no statement time limit: query_timeout is then not enforced.
        if ((error as { errno?: number }).errno !== ER_UNKNOWN_SYSTEM_VARIABLE) throw error;
      }
    },
    destroySocket(connection) {
      if (library.destroySocket(connection as MySqlFamilyConnection) || warned) return;
      warned = true;
      warn('this client library version does not expose its socket: a hung connection is closed gracefully, which waits on the server');
    },
    // Both callback APIs report a statement's end only through the callback: calls without one run untraced.
    watchNativeClient: (client, listener) => withMethodsReplaced(client, watchQueryMethod(listener, false), ['query', 'execute']),
  };
}

/** The parts of a MySQL-family driver that only name the type, package and client library. */
export interface MySqlFamilySpec {
  type: 'mysql' | 'mariadb';
  packageName: string;
  /** OpenTelemetry `db.system.name`. */
  dbSystem: string;
  /** The client library on MikroORM 6 (on 7 both types use mysql2). */
  library: MySqlClientLibrary;
  loadOrmDriver(connectionName: string): Promise<OrmDriverClass>;
}

/** A `DbDriver` for MySQL or MariaDB (a knex pool on MikroORM 6, a mysql2 pool on 7); the two differ only in their client library. */
export function mysqlFamilyDriver(spec: MySqlFamilySpec): DbDriver {
  return {
    type: spec.type,
    packageName: spec.packageName,
    accessFamily: 'sql',
    loadOrmDriver: spec.loadOrmDriver,

    ormOptions(config) {
      const derived = serverOrmOptions(config, { defaultPort: 3306, dbName: config.database ?? NO_DATABASE, passedDsnParams: PASSED_DSN_PARAMS });
      if (config.sslmode === 'allow' || config.sslmode === 'prefer') {
        derived.notApplicable.push(`sslmode "${config.sslmode}" is treated as "disable": the ${spec.type} client cannot fall back between TLS and plain`);
      }
      if (config.sslmode === 'verify-ca') derived.notApplicable.push('sslmode "verify-ca" is treated as "verify-full": the client checks the host name too');
      return derived;
    },

    target(config) {
      const port = config.port ?? 3306;
      return { dbSystem: spec.dbSystem, namespace: config.database, address: config.host, port, display: describeTarget(spec.type, config, { port }) };
    },

    open(orm, context) {
      const warn = (m: string) => context.warn(m);
      if (mikroOrm().major === 6) return KnexSession.open(orm, context, mysqlFamilyDialect(context.config, spec.library, warn));
      // One dialect per pool: the server's kind it learns is that pool's.
      const dialect = mysqlFamilyDialect(context.config, MYSQL2, warn);
      return Mysql2PoolSession.open(
        orm,
        context,
        {
          connectionSettings: (user) => dialect.connectionSettings!(user),
          prepareConnection: (connection) => dialect.prepareConnection!(connection),
          isPermanentError,
          destroySocket: (connection: Mysql2Connection) => dialect.destroySocket(connection),
        },
        spec.packageName,
      );
    },

    isPermanentError,
  };
}
