import type { ConnectionConfig } from '../config/config.types';
import { describeTarget } from '../config/dsn';
import { DriverNotInstalledError } from '../errors';
import { type DbDriver, importDriverPackage } from './driver';
import { type KnexDialectHooks, knexDriverMethods, knexPoolOptions } from './knex-pool';
import { watchQueryMethod, withMethodsReplaced } from './native-watch';

interface Sqlite3Database {
  run(sql: string, callback: (error: Error | null) => void): void;
  interrupt(): void;
}

const isMemory = (config: ConnectionConfig) => config.filepath === ':memory:' || config.filepath?.startsWith('file::memory:') === true;

/** Errors a retry cannot fix: the file is not a database, or cannot be opened at all. */
const PERMANENT_CODES = new Set(['SQLITE_NOTADB', 'SQLITE_CANTOPEN', 'SQLITE_PERM', 'SQLITE_READONLY']);

const hooks: KnexDialectHooks = {
  singleConnection: isMemory,
  // SQLite has no connect step to bound: connect_timeout becomes how long a statement waits for another connection's lock.
  async prepareConnection(connection, config) {
    const db = connection as unknown as Sqlite3Database;
    const run = (sql: string) => new Promise<void>((resolve, reject) => db.run(sql, (error) => (error ? reject(error) : resolve())));
    await run(`PRAGMA busy_timeout = ${Math.floor(config.connectTimeout)}`);
    await run('PRAGMA foreign_keys = ON');
  },
  destroySocket(connection) {
    (connection as unknown as Sqlite3Database).interrupt();
  },
  isPermanentError(error) {
    const code = (error as { code?: unknown })?.code;
    return typeof code === 'string' && PERMANENT_CODES.has(code);
  },
};

export const sqliteDriver: DbDriver = {
  type: 'sqlite',
  packageName: '@mikro-orm/sqlite',

  async loadOrmDriver(connectionName) {
    const pkg = await importDriverPackage(() => import('@mikro-orm/sqlite'));
    if (!pkg) throw new DriverNotInstalledError(connectionName, 'sqlite', this.packageName);
    return pkg.SqliteDriver;
  },

  ormOptions(config, observer) {
    const derived = knexPoolOptions(config, observer, hooks);
    derived.options = { ...derived.options, dbName: config.filepath };
    if (config.explicit.includes('queryTimeout')) {
      derived.notApplicable.push('queryTimeout does not apply: SQLite runs in-process and has no server-side statement timeout');
    }
    return derived;
  },

  target(config) {
    return { dbSystem: 'sqlite', namespace: config.filepath, display: describeTarget('sqlite', config) };
  },

  ...knexDriverMethods(hooks),
  // sqlite3 reports the end of a statement only through its callback: calls without one run untraced.
  watchNativeClient: (client, listener) => withMethodsReplaced(client as object, watchQueryMethod(listener, false), ['run', 'get', 'all', 'exec']),
};
