import type { ConnectionConfig } from '../config/config.types';
import { describeTarget } from '../config/dsn';
import { tlsDemand } from '../config/ssl-mode';
import { SOCKET_UNREACHABLE, SocketTracker, socketOf } from './adapters/pg';
import { type DbDriver, ormDriverLoader } from './driver';
import type { KnexDialect } from './knex/dialect';
import { KnexSession } from './knex/knex-session';
import { PgPoolSession } from './kysely/pg-pool-session';
import { mikroOrm } from '../mikro-orm-version';
import { watchQueryMethod, withMethodsReplaced } from './native-watch';
import { serverOrmOptions } from './server-options';

/**
 * SQLSTATEs a retry cannot fix: bad credentials, no such database, not allowed to connect, and a startup the server
 * (or PgBouncer: `unsupported startup parameter`) refuses as a protocol violation or an unsupported feature.
 * 53300 (too many connections) is not one: the server can free a slot.
 */
const PERMANENT_SQLSTATES = new Set(['28P01', '28000', '3D000', '42501', '08P01', '0A000']);

function isPermanentError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && PERMANENT_SQLSTATES.has(code);
}

/** How `sslmode` maps onto node-postgres' `ssl` option (pg has no "prefer": we do not silently downgrade). */
export function postgresSsl(config: ConnectionConfig): false | { rejectUnauthorized: boolean } | undefined {
  const demand = tlsDemand(config.sslmode, config.name);
  if (demand === 'unset') return undefined;
  return demand === 'off' ? false : { rejectUnauthorized: demand.verifyCertificate };
}

/** As libpq does: no database named means the one named after the user. */
function databaseOf(config: ConnectionConfig): string {
  return config.database ?? config.user ?? 'postgres';
}

/** node-postgres' client settings for one pool; its sockets are made (and tracked) by that pool's `sockets`. */
function connectionSettings(config: ConnectionConfig, user: Record<string, unknown>, sockets: SocketTracker): Record<string, unknown> {
  const connection: Record<string, unknown> = { ...user, application_name: config.applicationName, keepAlive: true };
  // A stream of the user's own is left alone (close() then waits for its connects to time out).
  if (!user.stream) connection.stream = sockets.create;
  if (config.connectTimeout) connection.connectionTimeoutMillis = config.connectTimeout;
  // The server cancels the statement and the connection stays usable (pg's client-side query_timeout would not).
  if (config.queryTimeout) connection.statement_timeout = config.queryTimeout;
  const ssl = postgresSsl(config);
  if (ssl !== undefined) connection.ssl = ssl;
  if (config.schema) connection.options = `-c search_path=${config.schema.replace(/[^A-Za-z0-9_$]/g, '')},public`;
  return connection;
}

/** What a PostgreSQL pool adds to knex's: tracked sockets, so a hung connection or connect can be torn down at once. */
function postgresDialect(config: ConnectionConfig, warn: (message: string) => void): KnexDialect {
  const sockets = new SocketTracker();
  let warned = false;
  return {
    singleConnection: false,
    isPermanentError,
    connectionSettings: (user) => connectionSettings(config, user, sockets),
    destroySocket(connection) {
      const socket = socketOf(connection);
      if (socket) return socket.destroy();
      if (!warned) warn(SOCKET_UNREACHABLE);
      warned = true;
    },
    destroyAllSockets: () => sockets.destroyAll(),
    watchNativeClient: (client, listener) => withMethodsReplaced(client, watchQueryMethod(listener, true), ['query']),
  };
}

export const postgresDriver: DbDriver = {
  type: 'postgres',
  packageName: '@mikro-orm/postgresql',
  accessFamily: 'sql',

  loadOrmDriver: ormDriverLoader('postgres', '@mikro-orm/postgresql', async () => (await import('@mikro-orm/postgresql')).PostgreSqlDriver),

  ormOptions(config) {
    const derived = serverOrmOptions(config, { defaultPort: 5432, dbName: databaseOf(config) });
    if (config.sslmode === 'allow' || config.sslmode === 'prefer') {
      derived.notApplicable.push(`sslmode "${config.sslmode}" is treated as "disable": node-postgres cannot fall back between TLS and plain`);
    }
    return derived;
  },

  target(config) {
    return {
      dbSystem: 'postgresql',
      namespace: databaseOf(config),
      address: config.host,
      port: config.port ?? 5432,
      display: describeTarget('postgres', config, { port: 5432, database: config.user ?? 'postgres' }),
    };
  },

  open: (orm, context) =>
    mikroOrm().major === 7
      ? PgPoolSession.open(orm, context, { connectionSettings: (user, sockets) => connectionSettings(context.config, user, sockets), isPermanentError })
      : KnexSession.open(orm, context, postgresDialect(context.config, (m) => context.warn(m))),

  isPermanentError,
};

