import { Socket } from 'node:net';
import type { ConnectionConfig } from '../config/config.types';
import { describeTarget } from '../config/dsn';
import { unsupportedSslMode } from '../config/ssl-mode';
import { DriverNotInstalledError } from '../errors';
import { type DbDriver, importDriverPackage, type PoolObserver } from './driver';
import { type KnexDialectHooks, knexDriverMethods, knexServerOptions } from './knex-pool';
import { watchQueryMethod, withMethodsReplaced } from './native-watch';

/**
 * SQLSTATEs a retry cannot fix: bad credentials, no such database, not allowed to connect, and a startup the server
 * (or PgBouncer: `unsupported startup parameter`) refuses as a protocol violation or an unsupported feature.
 * 53300 (too many connections) is not one: the server can free a slot.
 */
const PERMANENT_SQLSTATES = new Set(['28P01', '28000', '3D000', '42501', '08P01', '0A000']);

/** How `sslmode` maps onto node-postgres' `ssl` option (pg has no "prefer": we do not silently downgrade). */
function sslOption(config: ConnectionConfig): false | { rejectUnauthorized: boolean } | undefined {
  switch (config.sslmode) {
    case undefined:
      return undefined;
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return { rejectUnauthorized: true };
    default:
      return unsupportedSslMode(config.name);
  }
}

/** The sockets each connection's pg clients have open: the only handle on a connect still under way. */
const openSockets = new WeakMap<ConnectionConfig, Set<Socket>>();

/** pg's `stream` option: the plain socket pg would make itself (TLS wraps it later), remembered until it closes. */
function trackedStream(config: ConnectionConfig): () => Socket {
  const sockets = new Set<Socket>();
  openSockets.set(config, sockets);
  return () => {
    const socket = new Socket();
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    return socket;
  };
}

const hooks: KnexDialectHooks = {
  destroySocket(connection) {
    (connection as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  },
  destroyAllSockets(config) {
    for (const socket of openSockets.get(config) ?? []) socket.destroy();
  },
  isPermanentError(error) {
    const code = (error as { code?: unknown })?.code;
    return typeof code === 'string' && PERMANENT_SQLSTATES.has(code);
  },
};

export const postgresDriver: DbDriver = {
  type: 'postgres',
  packageName: '@mikro-orm/postgresql',

  async loadOrmDriver(connectionName) {
    const pkg = await importDriverPackage(() => import('@mikro-orm/postgresql'));
    if (!pkg) throw new DriverNotInstalledError(connectionName, 'postgres', this.packageName);
    return pkg.PostgreSqlDriver;
  },

  ormOptions(config: ConnectionConfig, observer: PoolObserver) {
    return knexServerOptions(config, observer, hooks, {
      defaultPort: 5432,
      // As libpq does: no database named means the one named after the user.
      dbName: config.database ?? config.user ?? 'postgres',
      connection(user, notApplicable) {
        const connection: Record<string, unknown> = { ...user, application_name: config.applicationName, keepAlive: true };
        // A stream of the user's own is left alone (close() then waits for its connects to time out).
        if (!user.stream) connection.stream = trackedStream(config);
        if (config.connectTimeout) connection.connectionTimeoutMillis = config.connectTimeout;
        // The server cancels the statement and the connection stays usable (pg's client-side query_timeout would not).
        if (config.queryTimeout) connection.statement_timeout = config.queryTimeout;
        const ssl = sslOption(config);
        if (ssl !== undefined) connection.ssl = ssl;
        if (config.schema) connection.options = `-c search_path=${config.schema.replace(/[^A-Za-z0-9_$]/g, '')},public`;
        if (config.sslmode === 'allow' || config.sslmode === 'prefer') {
          notApplicable.push(`sslmode "${config.sslmode}" is treated as "disable": node-postgres cannot fall back between TLS and plain`);
        }
        return connection;
      },
    });
  },

  target(config) {
    return {
      dbSystem: 'postgresql',
      namespace: config.database ?? config.user ?? 'postgres',
      address: config.host,
      port: config.port ?? 5432,
      display: describeTarget('postgres', config, { port: 5432, database: config.user ?? 'postgres' }),
    };
  },

  ...knexDriverMethods(hooks),
  watchNativeClient: (client, listener) => withMethodsReplaced(client as object, watchQueryMethod(listener, true), ['query']),
};

