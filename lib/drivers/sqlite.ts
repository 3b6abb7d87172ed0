import type { ConnectionConfig } from '../config/config.types';
import { describeTarget } from '../config/dsn';
import { type DbDriver, ormDriverLoader } from './driver';
import type { KnexDialect } from './knex/dialect';
import { KnexSession } from './knex/knex-session';
import { SqliteSession } from './kysely/sqlite-session';
import { mikroOrm } from '../mikro-orm-version';
import { knexNotApplicable } from './knex/pool-options';
import { watchQueryMethod, withMethodsReplaced } from './native-watch';

interface Sqlite3Database {
  run(sql: string, callback: (error: Error | null) => void): void;
  interrupt(): void;
}

const isMemory = (config: ConnectionConfig) => config.filepath === ':memory:' || config.filepath?.startsWith('file::memory:') === true;

/** Errors a retry cannot fix: the file is not a database, or cannot be opened at all. */
const PERMANENT_CODES = new Set(['SQLITE_NOTADB', 'SQLITE_CANTOPEN', 'SQLITE_PERM', 'SQLITE_READONLY']);

function isPermanentError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && PERMANENT_CODES.has(code);
}

/** What a SQLite pool adds to knex's: session pragmas, and a `:memory:` database kept in its one connection. */
function sqliteDialect(config: ConnectionConfig): KnexDialect {
  return {
    singleConnection: isMemory(config),
    isPermanentError,
    // SQLite has no connect step to bound: connect_timeout becomes how long a statement waits for another connection's lock.
    async prepareConnection(connection) {
      const db = connection as Sqlite3Database;
      const run = (sql: string) => new Promise<void>((resolve, reject) => db.run(sql, (error) => (error ? reject(error) : resolve())));
      await run(`PRAGMA busy_timeout = ${Math.floor(config.connectTimeout)}`);
      await run('PRAGMA foreign_keys = ON');
    },
    destroySocket: (connection) => (connection as Sqlite3Database).interrupt(),
    // sqlite3 reports the end of a statement only through its callback: calls without one run untraced.
    watchNativeClient: (client, listener) => withMethodsReplaced(client, watchQueryMethod(listener, false), ['run', 'get', 'all', 'exec']),
  };
}

/** MikroORM 7 runs SQLite on one better-sqlite3 database: the pool settings have nothing to act on. */
function oneDatabaseNotApplicable(config: ConnectionConfig): string[] {
  return (['maxOpenConns', 'maxIdleConns', 'connMaxLifetime', 'connMaxIdleTime', 'acquireTimeout'] as const)
    .filter((field) => config.explicit.includes(field))
    .map((field) => `${field} does not apply: on MikroORM 7 a SQLite connection is one better-sqlite3 database, not a pool`);
}

export const sqliteDriver: DbDriver = {
  type: 'sqlite',
  packageName: '@mikro-orm/sqlite',
  accessFamily: 'sql',

  loadOrmDriver: ormDriverLoader('sqlite', '@mikro-orm/sqlite', async () => (await import('@mikro-orm/sqlite')).SqliteDriver),

  ormOptions(config) {
    const single = isMemory(config);
    const notApplicable = mikroOrm().major === 7 ? oneDatabaseNotApplicable(config) : knexNotApplicable(config, single);
    if (config.explicit.includes('queryTimeout')) {
      notApplicable.push('queryTimeout does not apply: SQLite runs in-process and has no server-side statement timeout');
    }
    return { options: { dbName: config.filepath, pool: { min: single ? 1 : 0, max: single ? 1 : config.maxOpenConns } }, notApplicable };
  },

  target(config) {
    return { dbSystem: 'sqlite', namespace: config.filepath, display: describeTarget('sqlite', config) };
  },

  open: (orm, context) => (mikroOrm().major === 7 ? SqliteSession.open(orm, context) : KnexSession.open(orm, context, sqliteDialect(context.config))),

  isPermanentError,
};
