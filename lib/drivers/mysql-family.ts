import type { Options } from '@mikro-orm/core';
import type { ConnectionConfig } from '../config/config.types';
import { describeTarget } from '../config/dsn';
import { unsupportedSslMode } from '../config/ssl-mode';
import type { DbDriver, PoolObserver } from './driver';
import { type KnexDialectHooks, knexDriverMethods, knexServerOptions, type PooledConnection } from './knex-pool';
import { watchQueryMethod, withMethodsReplaced } from './native-watch';

/** Server errors a retry cannot fix: bad credentials, no such database, no right to use it. */
const PERMANENT_ERRNOS = new Set([1044, 1045, 1049, 1698]);
const PERMANENT_CODES = new Set(['ER_DBACCESS_DENIED_ERROR', 'ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR', 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR']);
/** "Unknown system variable": the server is too old for a statement time limit. */
const ER_UNKNOWN_SYSTEM_VARIABLE = 1193;

/** MikroORM's name for a connection made without a database (it requires one; the server gets none). */
const NO_DATABASE = 'information_schema';
/** DSN query parameters handed to the client library as they are. */
const PASSED_DSN_PARAMS = ['charset'];

/** A raw connection of either client library, as far as this file uses it (both share the callback `query`). */
interface MySqlFamilyConnection extends PooledConnection {
  query(sql: string, callback: (error: (Error & { errno?: number }) | null) => void): unknown;
}

/** What differs between the two client libraries (mysql2 and the MariaDB connector). */
export interface MySqlClientLibrary {
  /** The server's version string (`10.11.19-MariaDB…`, `8.4.0`…) on an open connection. */
  serverVersion(connection: MySqlFamilyConnection): string | undefined;
  /** Tears the socket down at once (a graceful end would wait on a hung server). */
  destroySocket(connection: MySqlFamilyConnection): void;
}

/** How `sslmode` maps onto the `ssl` option both client libraries take (with it set, both refuse a server without TLS). */
function sslOption(config: ConnectionConfig): { rejectUnauthorized: boolean } | undefined {
  switch (config.sslmode) {
    case undefined:
    case 'disable':
    case 'allow':
    case 'prefer':
      return undefined;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return { rejectUnauthorized: true };
    default:
      return unsupportedSslMode(config.name);
  }
}

/**
 * A statement time limit the server enforces (the statement fails, the connection stays usable): MariaDB's
 * `max_statement_time` (seconds, every statement), MySQL's `max_execution_time` (ms, SELECT only).
 */
function statementTimeLimitSql(serverVersion: string | undefined, queryTimeoutMs: number): string {
  return /mariadb/i.test(serverVersion ?? '')
    ? `SET SESSION max_statement_time = ${(queryTimeoutMs / 1000).toFixed(3)}`
    : `SET SESSION max_execution_time = ${Math.floor(queryTimeoutMs)}`;
}

function run(connection: MySqlFamilyConnection, sql: string): Promise<void> {
  return new Promise((resolve, reject) => connection.query(sql, (error) => (error ? reject(error) : resolve())));
}

function hooksFor(library: MySqlClientLibrary): KnexDialectHooks {
  return {
    async prepareConnection(connection, config) {
      if (!config.queryTimeout) return;
      const c = connection as MySqlFamilyConnection;
      try {
        await run(c, statementTimeLimitSql(library.serverVersion(c), config.queryTimeout));
      } catch (error) {
        // MySQL < 5.7.8 and MariaDB < 10.1 have no statement time limit: query_timeout is then not enforced.
        if ((error as { errno?: number }).errno !== ER_UNKNOWN_SYSTEM_VARIABLE) throw error;
      }
    },
    destroySocket: (connection) => library.destroySocket(connection as MySqlFamilyConnection),
    isPermanentError(error) {
      const { errno, code } = (error ?? {}) as { errno?: unknown; code?: unknown };
      return (typeof errno === 'number' && PERMANENT_ERRNOS.has(errno)) || (typeof code === 'string' && PERMANENT_CODES.has(code));
    },
  };
}

/** The parts of a MySQL-family driver that only name the type, package and client library. */
export interface MySqlFamilySpec {
  type: 'mysql' | 'mariadb';
  packageName: string;
  /** OpenTelemetry `db.system.name`. */
  dbSystem: string;
  library: MySqlClientLibrary;
  loadOrmDriver(connectionName: string): Promise<NonNullable<Options['driver']>>;
}

/** A `DbDriver` for MySQL or MariaDB on the knex pool; the two differ only in their client library. */
export function mysqlFamilyDriver(spec: MySqlFamilySpec): DbDriver {
  const hooks = hooksFor(spec.library);
  return {
    type: spec.type,
    packageName: spec.packageName,
    loadOrmDriver: (connectionName) => spec.loadOrmDriver(connectionName),

    ormOptions(config: ConnectionConfig, observer: PoolObserver) {
      return knexServerOptions(config, observer, hooks, {
        defaultPort: 3306,
        dbName: config.database ?? NO_DATABASE,
        passedDsnParams: PASSED_DSN_PARAMS,
        connection(user, notApplicable) {
          const connection: Record<string, unknown> = {
            ...user,
            // 0 disables the timer in both libraries; the MariaDB connector's own default would be 1 s.
            connectTimeout: config.connectTimeout,
            // Shown in performance_schema.session_connect_attrs (when the server has performance_schema on).
            connectAttributes: { ...(user.connectAttributes as object | undefined), program_name: config.applicationName },
          };
          // No database named: connect without one (MikroORM still needs a name, which then only labels it).
          if (!config.database) connection.database = null;
          const ssl = sslOption(config);
          if (ssl) connection.ssl = ssl;
          for (const key of PASSED_DSN_PARAMS) if (config.dsnParams[key] !== undefined) connection[key] = config.dsnParams[key];
          if (config.sslmode === 'allow' || config.sslmode === 'prefer') {
            notApplicable.push(`sslmode "${config.sslmode}" is treated as "disable": the ${spec.type} client cannot fall back between TLS and plain`);
          }
          if (config.sslmode === 'verify-ca') {
            notApplicable.push('sslmode "verify-ca" is treated as "verify-full": the client checks the host name too');
          }
          return connection;
        },
      });
    },

    target(config) {
      const port = config.port ?? 3306;
      return {
        dbSystem: spec.dbSystem,
        namespace: config.database,
        address: config.host,
        port,
        display: describeTarget(spec.type, config, { port }),
      };
    },

    ...knexDriverMethods(hooks),
    // Both callback APIs report a statement's end only through the callback: calls without one run untraced.
    watchNativeClient: (client, listener) => withMethodsReplaced(client as object, watchQueryMethod(listener, false), ['query', 'execute']),
  };
}
