import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { MikroORM } from '@mikro-orm/core';
import type { PoolGauges } from '../../vocabulary';
import { reportStatements, type SqliteDatabase } from '../adapters/better-sqlite3';
import { kyselyOf, nativeClientOf } from '../adapters/kysely';
import { connectWithDriverOptions } from '../adapters/mikro-orm';
import type { DriverSession, SessionContext, TornDown } from '../driver';

/**
 * The one better-sqlite3 database of a SQLite connection on MikroORM 7, shared by the EntityManager, `kysely()` and the
 * native client. There is no pool: statements run synchronously on the one connection, so "in use" counts native
 * clients lent out, and nothing ever waits.
 */
export class SqliteSession implements DriverSession {
  private lent = 0;

  private constructor(
    private readonly orm: MikroORM,
    private readonly database: SqliteDatabase,
    /** `prepare` as better-sqlite3 has it, unreported: health pings stay out of traces and logs. */
    private readonly quietPrepare: SqliteDatabase['prepare'],
  ) {}

  static async open(orm: MikroORM, context: SessionContext): Promise<SqliteSession> {
    const { config } = context;
    const user = (config.mikroOrm.driverOptions ?? {}) as Record<string, unknown>;
    // SQLite has no connect step to bound: connect_timeout becomes how long a statement waits for another process' lock.
    // MikroORM 6 created the file's folder; better-sqlite3 (MikroORM 7) does not.
    if (config.filepath && isFilePath(config.filepath)) await mkdir(dirname(resolve(config.filepath)), { recursive: true });
    await connectWithDriverOptions(orm, { ...user, timeout: config.connectTimeout });
    const database = (await nativeClientOf(orm)) as SqliteDatabase;
    const quietPrepare = database.prepare.bind(database);
    if (context.queries && !reportStatements(database, context.queries)) {
      context.warn('this better-sqlite3 version has no prepare(): statements are not traced or logged');
    }
    return new SqliteSession(orm, database, quietPrepare);
  }

  gauges(): PoolGauges {
    const open = this.database.open ? 1 : 0;
    const inUse = Math.min(open, this.lent);
    return { open, inUse, idle: open - inUse, pending: 0, max: 1 };
  }

  async ping(): Promise<void> {
    // Synchronous and in-process: it cannot hang, so the timeout has nothing to bound.
    this.quietPrepare('select 1').get!();
  }

  kysely(): unknown {
    return kyselyOf(this.orm);
  }

  /** Lends the better-sqlite3 database (inside `em.transactional` too: it is the transaction's connection). */
  async withNativeClient<T>(fn: (client: unknown) => Promise<T> | T): Promise<T> {
    this.lent++;
    try {
      return await fn(this.database);
    } finally {
      this.lent--;
    }
  }

  abort(): TornDown {
    return { inUse: this.lent, connecting: 0 };
  }

  async close(): Promise<void> {
    await this.orm.close(true);
  }
}

/** A path on disk (not `:memory:`, nor a `file:` URI, which SQLite resolves itself). */
function isFilePath(filepath: string): boolean {
  return filepath !== ':memory:' && !filepath.startsWith('file:');
}
