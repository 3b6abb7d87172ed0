import type { ConnectionConfig } from '../config/config.types';
import { describeTarget } from '../config/dsn';
import { tlsDemand } from '../config/ssl-mode';
import { cancelKeyOf, SOCKET_UNREACHABLE, SocketTracker, socketOf } from './adapters/pg';
import { type DbDriver, type DriverSession, ormDriverLoader, type SessionContext } from './driver';
import type { KnexDialect } from './knex/dialect';
import { KnexSession } from './knex/knex-session';
import { PgPoolSession } from './kysely/pg-pool-session';
import { mikroOrm } from '../mikro-orm-version';
import { watchQueryMethod, withMethodsReplaced } from './native-watch';
import { serverOrmOptions } from './server-options';
import { PoolerRefusedError } from '../errors';
import { checkServerSearchPath } from './pgbouncer/server-search-path';
import { refuseSessionStatements } from './pgbouncer/session-statements';
import { explainStartupRefusal } from './pgbouncer/startup-refusal';
import { statementTimeout } from './pgbouncer/statement-timeout';

type Method = (this: unknown, ...args: unknown[]) => unknown;

/**
 * SQLSTATEs a retry cannot fix: bad credentials, no such database, not allowed to connect, and a startup the server
 * (or PgBouncer: `unsupported startup parameter`) refuses as a protocol violation or an unsupported feature.
 * 53300 (too many connections) is not one: the server can free a slot.
 */
const PERMANENT_SQLSTATES = new Set(['28P01', '28000', '3D000', '42501', '08P01', '0A000']);

function isPermanentError(error: unknown): boolean {
  if (error instanceof PoolerRefusedError) return true;
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
  const ssl = postgresSsl(config);
  if (ssl !== undefined) connection.ssl = ssl;
  // PgBouncer refuses both startup parameters: behind it, query_timeout is a cancel request per statement
  // (statementTimeoutOf) and the schema is the server's search_path (checked when the pool opens).
  if (behindPgBouncer(config)) return connection;
  // The server cancels the statement and the connection stays usable (pg's client-side query_timeout would not).
  if (config.queryTimeout) connection.statement_timeout = config.queryTimeout;
  if (config.schema) connection.options = `-c search_path=${config.schema.replace(/[^A-Za-z0-9_$]/g, '')},public`;
  return connection;
}

function behindPgBouncer(config: ConnectionConfig): boolean {
  return config.pooler === 'pgbouncer';
}

/** query_timeout as a cancel request per statement, for a connection behind PgBouncer; undefined when none is due. */
function statementTimeoutOf(config: ConnectionConfig): ((client: object) => (original: Method) => Method) | undefined {
  if (!behindPgBouncer(config) || !config.queryTimeout) return undefined;
  return (client) => statementTimeout(client, config.queryTimeout, config.name);
}

/** The view of a lent native client: behind PgBouncer, one that refuses what transaction pooling breaks. */
function nativeClientView<T extends object>(config: ConnectionConfig, client: T): T {
  return behindPgBouncer(config) ? withMethodsReplaced(client, refuseSessionStatements(config.name), ['query']) : client;
}

const NO_CANCEL_KEY =
  'this pg version keeps no cancel key (processID, secretKey) on its clients: behind PgBouncer a statement that runs past query_timeout has its connection torn down instead of being cancelled';

/** Behind PgBouncer, a pool just opened is checked for what only the server side can provide (the schema), or closed. */
async function checkedBehindPooler(session: DriverSession, context: SessionContext): Promise<DriverSession> {
  if (!behindPgBouncer(context.config)) return session;
  try {
    if (context.config.queryTimeout) {
      await session.withNativeClient((client) => {
        if (!cancelKeyOf(client as object)) context.warn(NO_CANCEL_KEY);
      });
    }
    await checkServerSearchPath(context.config, (sql) =>
      session.withNativeClient(async (client) => (await (client as { query(sql: string): Promise<{ rows: Array<Record<string, unknown>> }> }).query(sql)).rows),
    );
    return session;
  } catch (error) {
    session.abort();
    await session.close().catch(() => undefined);
    throw error;
  }
}

/** What a PostgreSQL pool adds to knex's: tracked sockets, so a hung connection or connect can be torn down at once. */
function postgresDialect(config: ConnectionConfig, warn: (message: string) => void): KnexDialect {
  const sockets = new SocketTracker();
  const timed = statementTimeoutOf(config);
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
    prepareConnection: timed
      ? async (connection) => {
          // knex, the EntityManager and the native client all send through this client's query.
          const client = connection as { query: Method };
          client.query = timed(client)(client.query.bind(client));
        }
      : undefined,
    nativeClientView: (client) => nativeClientView(config, client),
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

  open: async (orm, context) => {
    const { config } = context;
    const session =
      mikroOrm().major === 7
        ? await PgPoolSession.open(orm, context, {
            connectionSettings: (user, sockets) => connectionSettings(config, user, sockets),
            isPermanentError,
            statementTimeout: statementTimeoutOf(config),
            nativeClientView: (client) => nativeClientView(config, client),
          })
        : await KnexSession.open(orm, context, postgresDialect(config, (m) => context.warn(m)));
    return checkedBehindPooler(session, context);
  },

  isPermanentError,

  explainError: (error, config) => explainStartupRefusal(error, config),
};

