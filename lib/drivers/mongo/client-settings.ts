import type { MongoClientOptions } from 'mongodb';
import type { ConnectionConfig } from '../../config/config.types';

export const DEFAULT_PORT = 27017;
/** MikroORM needs a database name; MongoDB's shell and drivers use `test` when none is given. */
export const DEFAULT_DATABASE = 'test';

export function databaseOf(config: ConnectionConfig): string {
  return config.database ?? DEFAULT_DATABASE;
}

/** The URL (credentials removed: they go in `auth`) and MongoClient options a connection's config becomes. */
export function mongoClientSettings(config: ConnectionConfig): { url: string; options: MongoClientOptions; notApplicable: string[] } {
  const notApplicable: string[] = [];
  // The database goes in the path, so `mongo().db()` is the configured one.
  const path = `/${encodeURIComponent(databaseOf(config))}`;
  let url: string;
  let authDatabaseInUrl = false;
  if (config.dsn) {
    // The user's URL keeps its scheme (mongodb+srv), path and options; only the credentials move to `auth`.
    const parsed = new URL(config.dsn);
    parsed.username = '';
    parsed.password = '';
    authDatabaseInUrl = parsed.pathname.length > 1;
    if (!authDatabaseInUrl) parsed.pathname = path;
    url = parsed.toString();
  } else {
    const host = config.host?.includes(':') ? `[${config.host}]` : config.host;
    url = `mongodb://${host}:${config.port ?? DEFAULT_PORT}${path}`;
  }
  const user = (config.mikroOrm.driverOptions ?? {}) as MongoClientOptions;
  const options: MongoClientOptions = {
    ...user,
    appName: config.applicationName,
    maxPoolSize: config.maxOpenConns,
    // Connections open on demand, as the SQL pools do.
    minPoolSize: 0,
    maxIdleTimeMS: config.connMaxIdleTime,
    // Server selection is what a connect waits on; connectTimeoutMS bounds each socket's connect + handshake.
    serverSelectionTimeoutMS: config.connectTimeout,
    connectTimeoutMS: config.connectTimeout,
    waitQueueTimeoutMS: config.acquireTimeout,
  };
  // Client-side operation timeout (CSOT): bounds selection, checkout and the round trip; the driver then drops the socket.
  if (config.queryTimeout) options.timeoutMS = config.queryTimeout;
  else delete options.timeoutMS;
  // Command events feed tracing and query logging; off otherwise, as they cost an event per command.
  options.monitorCommands = user.monitorCommands === true || config.enableTracing || config.enableLogging;
  if (config.user) options.auth = { username: config.user, password: config.password };
  // Credentials belong to `admin` unless auth_source (or, as MongoDB URLs have it, the DSN's own path) says otherwise.
  if (config.authSource) options.authSource = config.authSource;
  else if (config.user && !authDatabaseInUrl) options.authSource = 'admin';
  if (config.replicaSet) options.replicaSet = config.replicaSet;
  if (config.readPreference) options.readPreference = config.readPreference as MongoClientOptions['readPreference'];

  const derived = ['monitorCommands', 'appName', 'maxPoolSize', 'minPoolSize', 'maxIdleTimeMS', 'serverSelectionTimeoutMS', 'connectTimeoutMS', 'waitQueueTimeoutMS', 'timeoutMS'];
  const derivedLower = new Set(derived.map((k) => k.toLowerCase()));
  for (const key of Object.keys(config.dsnParams)) {
    // URI option names are case-insensitive.
    if (derivedLower.has(key.toLowerCase())) notApplicable.push(`dsn parameter "${key}" is replaced by the connection's own setting`);
  }
  if (config.explicit.includes('connMaxLifetime')) {
    notApplicable.push('conn_max_lifetime does not apply: the MongoDB driver has no connection lifetime (idle connections close after conn_max_idle_time)');
  }
  if (config.explicit.includes('maxIdleConns')) {
    notApplicable.push('max_idle_conns does not apply: the MongoDB pool keeps idle connections until conn_max_idle_time (minPoolSize is 0)');
  }
  if (config.explicit.includes('acquireTimeout') && config.queryTimeout) {
    notApplicable.push('acquire_timeout does not apply while query_timeout is set: the driver then bounds a checkout by connect_timeout and query_timeout');
  }
  return { url, options, notApplicable };
}
