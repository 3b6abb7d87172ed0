import { createRequire } from 'node:module';
import type { MikroORM } from '@mikro-orm/core';
import type { CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, MongoClient, MongoClientOptions } from 'mongodb';
import type { ConnectionConfig } from '../config/config.types';
import { describeTarget } from '../config/dsn';
import { DriverNotInstalledError } from '../errors';
import { type DbDriver, importDriverPackage } from './driver';
import type { QueryDone, QueryListener } from '../tracing/query-listener';
import { MongoPoolTracker } from './mongodb-pool';

const DEFAULT_PORT = 27017;
/** MikroORM needs a database name; MongoDB's shell and drivers use `test` when none is given. */
const DEFAULT_DATABASE = 'test';
/** Errors a retry cannot fix: bad credentials, or settings the driver refuses. */
const PERMANENT_NAMES = new Set(['MongoParseError', 'MongoInvalidArgumentError', 'MongoMissingCredentialsError', 'MongoMissingDependencyError']);
const AUTHENTICATION_FAILED = 18;

/**
 * The `mongodb` package exactly as @mikro-orm/mongodb resolves it: MikroORM adopts a client handed over through
 * `driverOptions` only if it is an `instanceof` its own MongoClient class.
 */
function mongodbPackage(): typeof import('mongodb') {
  return createRequire(require.resolve('@mikro-orm/mongodb'))('mongodb') as typeof import('mongodb');
}

/** The URL (credentials removed: they go in `auth`) and MongoClient options a connection's config becomes. */
function mongoClientSettings(config: ConnectionConfig): { url: string; options: MongoClientOptions; notApplicable: string[] } {
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

/**
 * `MongoClient.close()` ends the pooled server sessions with one fire-and-forget `endSessions`, opening a connection
 * for it when none is idle; to a hung server that handshake is not cancelled, so close() waited up to acquire_timeout
 * and the socket outlived it by up to connect_timeout. With no idle connection we skip it: the server expires
 * sessions on its own (logicalSessionTimeoutMinutes, 30 min).
 */
function closeWithoutNewConnections(client: MongoClient, tracker: MongoPoolTracker): void {
  const close = client.close.bind(client);
  client.close = async (force?: boolean) => {
    const pool = (client as unknown as { s?: { sessionPool?: SessionPool } }).s?.sessionPool;
    if (tracker.gauges().idle === 0 && typeof pool?.sessions?.clear === 'function' && typeof pool.release === 'function') {
      // Sessions that close() ends (those of interrupted operations) must not refill the pool either.
      pool.release = () => undefined;
      pool.sessions.clear();
    }
    return close(force);
  };
}

/** The driver's internal server-session pool (mongodb 6), as far as closeWithoutNewConnections touches it. */
interface SessionPool {
  sessions?: { clear?(): void };
  release?(session: unknown): void;
}

/** The MongoClient MikroORM holds, once a connect succeeded. */
function clientIfOpen(orm: MikroORM): MongoClient | undefined {
  return (orm.em.getConnection() as unknown as { getClient(): MongoClient | undefined }).getClient();
}

function clientOf(orm: MikroORM): MongoClient {
  const client = clientIfOpen(orm);
  if (!client) {
    throw new Error(
      `Connection "${orm.config.get('contextName')}": the MongoDB client is not open, as the server has not been reachable yet. ` +
        'Wait until the connection is up (its status, or healthCheck()).',
    );
  }
  return client;
}

function databaseOf(config: ConnectionConfig): string {
  return config.database ?? DEFAULT_DATABASE;
}

export const mongodbDriver: DbDriver = {
  type: 'mongodb',
  packageName: '@mikro-orm/mongodb',
  family: 'mongo',

  async loadOrmDriver(connectionName) {
    const pkg = await importDriverPackage(() => import('@mikro-orm/mongodb'));
    if (!pkg) throw new DriverNotInstalledError(connectionName, 'mongodb', this.packageName);
    return pkg.MongoDriver;
  },

  ormOptions(config) {
    const { notApplicable } = mongoClientSettings(config);
    // MikroORM only shows this URL (no credentials); open() hands it the client it connects through.
    const clientUrl = describeTarget('mongodb', { host: config.host, port: config.port ?? DEFAULT_PORT, database: databaseOf(config) });
    return { options: { clientUrl, dbName: databaseOf(config) }, notApplicable };
  },

  target(config) {
    return {
      dbSystem: 'mongodb',
      namespace: databaseOf(config),
      address: config.host,
      port: config.port ?? DEFAULT_PORT,
      display: describeTarget('mongodb', config, { port: DEFAULT_PORT, database: DEFAULT_DATABASE }),
    };
  },

  /**
   * A fresh MongoClient per open, its pool listeners on before its first connection, connected here (bounded by
   * connect_timeout) and then handed to MikroORM. A failed connect closes it, so nothing stays open.
   */
  async open(orm, config, observer) {
    const { MongoClient } = mongodbPackage();
    const { url, options } = mongoClientSettings(config);
    const client = new MongoClient(url, options);
    const tracker = MongoPoolTracker.track(client, config.maxOpenConns, observer);
    closeWithoutNewConnections(client, tracker);
    try {
      await client.connect();
      orm.config.set('driverOptions', client as never);
      await orm.em.getDriver().connect();
    } catch (error) {
      await client.close(true).catch(() => undefined);
      throw error;
    }
  },

  // The pool listeners went on in open(), before the first connection.
  attach: () => undefined,

  gauges(orm, config) {
    const tracker = MongoPoolTracker.of(clientOf(orm));
    return tracker ? tracker.gauges() : { open: 0, inUse: 0, idle: 0, pending: 0, max: config.maxOpenConns };
  },

  /**
   * `ping` with `timeoutMS`: the driver bounds server selection, checkout and the round trip, and closes a socket
   * whose answer did not come, so a timed-out ping leaves nothing queued.
   */
  async ping(orm, timeoutMs) {
    const client = clientOf(orm);
    const readPreference = client.options.readPreference;
    await client.db('admin').command({ ping: 1 }, { readPreference, ...(timeoutMs > 0 ? { timeoutMS: timeoutMs } : {}) });
  },

  // MongoClient.close() interrupts the operations still holding a connection; this only reports how many there are.
  abortInUse(orm) {
    const client = clientIfOpen(orm);
    return { inUse: (client && MongoPoolTracker.of(client)?.gauges().inUse) || 0, connecting: 0 };
  },

  /**
   * Every command the EntityManager or mongo() runs, as `<command> <collection>` (never its filter or documents).
   * Health pings stay out, as they do for SQL.
   */
  observeQueries(orm, listener: QueryListener) {
    const client = clientOf(orm);
    const running = new Map<number, QueryDone>();
    client.on('commandStarted', (e: CommandStartedEvent) => {
      if (e.commandName === 'ping') return;
      const target = e.command[e.commandName] as unknown;
      running.set(e.requestId, listener(typeof target === 'string' ? `${e.commandName} ${target}` : e.commandName));
    });
    const end = (requestId: number, error?: unknown) => {
      running.get(requestId)?.(error);
      running.delete(requestId);
    };
    client.on('commandSucceeded', (e: CommandSucceededEvent) => end(e.requestId));
    client.on('commandFailed', (e: CommandFailedEvent) => end(e.requestId, e.failure));
  },

  // DbConnection refuses withNativeClient for MongoDB (use mongo()); the client is what it would lend.
  withNativeClient: async (orm, _em, fn) => fn(clientOf(orm)),
  mongo: (orm) => clientOf(orm),

  isPermanentError(error) {
    let current: unknown = error;
    for (let depth = 0; current && depth < 5; depth++) {
      const { name, code, codeName, cause } = current as { name?: unknown; code?: unknown; codeName?: unknown; cause?: unknown };
      if (code === AUTHENTICATION_FAILED || codeName === 'AuthenticationFailed') return true;
      if (typeof name === 'string' && PERMANENT_NAMES.has(name)) return true;
      current = cause;
    }
    return false;
  },
};
