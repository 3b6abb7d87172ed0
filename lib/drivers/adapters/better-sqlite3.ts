import type { QueryListener } from '../../vocabulary';
import { isTransactionControl } from './kysely';

/**
 * better-sqlite3, the one database of a SQLite connection on MikroORM 7. Every statement — the EntityManager's,
 * Kysely's and a lent native client's — is prepared through `database.prepare()`; with tracing or query logging on,
 * the database's `prepare` is replaced so each run of a statement reaches the listener (better-sqlite3 is synchronous,
 * so a run starts and ends within the call).
 */

interface Statement {
  run?(...args: unknown[]): unknown;
  get?(...args: unknown[]): unknown;
  all?(...args: unknown[]): unknown;
  iterate?(...args: unknown[]): unknown;
}

/** The slice of a better-sqlite3 `Database` the session uses. */
export interface SqliteDatabase {
  readonly open: boolean;
  prepare(sql: string): Statement;
}

const RUNS = ['run', 'get', 'all'] as const;

/**
 * Makes every statement prepared on `database` report its runs to `listener`. Returns the unreported `prepare` (for
 * health pings, which stay out of traces and logs), or false when the database has no `prepare`.
 */
export function reportStatements(database: SqliteDatabase, listener: QueryListener): ((sql: string) => Statement) | false {
  if (typeof database.prepare !== 'function') return false;
  const prepare = database.prepare.bind(database);
  (database as { prepare: (sql: string) => Statement }).prepare = (sql: string) => {
    const statement = prepare(sql);
    if (isTransactionControl(sql)) return statement;
    for (const name of RUNS) {
      const run = statement[name]?.bind(statement);
      if (!run) continue;
      statement[name] = (...args: unknown[]) => {
        const done = listener(sql);
        try {
          const result = run(...args);
          done();
          return result;
        } catch (error) {
          done(error);
          throw error;
        }
      };
    }
    return statement;
  };
  return prepare;
}
