import { sql } from 'kysely';
import type { MikroORM } from '@mikro-orm/core';
import type { DatabaseType, DbConnection } from '../../lib';
import { type MikroOrmMajor, mikroOrm } from '../../lib/mikro-orm-version';

/**
 * What lets one test codebase run on both MikroORM legs: the running major, SQL through the running major's query
 * builder (Kysely on 7, Knex on 6) and through each driver's native client, the schema generator's two spellings, and
 * skip reasons for tests that only make sense on one major.
 */

/** The MikroORM major this test run uses. */
export const MIKRO_ORM_MAJOR: MikroOrmMajor = mikroOrm().major;

/** The running major's query-builder access path: `kysely` on MikroORM 7, `knex` on 6. */
export const QUERY_BUILDER: 'kysely' | 'knex' = MIKRO_ORM_MAJOR === 7 ? 'kysely' : 'knex';

/** The other major's query-builder access path, which fails with QueryBuilderUnavailableError on this leg. */
export const OTHER_QUERY_BUILDER: 'kysely' | 'knex' = MIKRO_ORM_MAJOR === 7 ? 'knex' : 'kysely';

/** Why a test of `major` alone is skipped on this leg (printed once per file), or undefined when it runs. */
export function onlyOnMikroOrm(major: MikroOrmMajor, what: string): string | undefined {
  if (major === MIKRO_ORM_MAJOR) return undefined;
  const reason = `${what} is MikroORM ${major}'s, and this leg runs MikroORM ${mikroOrm().version}`;
  console.log(`[mikro-orm leg] skipped: ${reason}`);
  return reason;
}

/** Raw SQL through one query-builder instance, and transactions on it: the same calls on Kysely (7) and Knex (6). */
export interface SqlRunner {
  /** The query-builder instance itself (a `Kysely` on 7, a `Knex` on 6). */
  readonly builder: unknown;
  /** Runs `statement`; resolves to the rows it returns. */
  query<R = Record<string, unknown>>(statement: string): Promise<R[]>;
  /** Runs `work` in one transaction of the builder, its statements through `trx`. */
  transaction<T>(work: (trx: Pick<SqlRunner, 'query'>) => Promise<T>): Promise<T>;
  /** Inserts one row into `table` (a built statement, its values bound). */
  insert(table: string, row: Record<string, unknown>): Promise<void>;
  /** Reads `column` of the rows of `table` matching `where` (built, values bound). */
  select<R = Record<string, unknown>>(table: string, column: string, where: Record<string, unknown>): Promise<R[]>;
  /** Deletes the rows of `table` matching `where` (built, values bound). */
  delete(table: string, where: Record<string, unknown>): Promise<void>;
}

/** A Kysely query being built, as far as these helpers build one. */
interface KyselyBuilding {
  where(column: string, operator: '=', value: unknown): KyselyBuilding;
  select(column: string): KyselyBuilding;
  values(row: Record<string, unknown>): KyselyBuilding;
  execute(): Promise<unknown[]>;
}

interface KyselyLike {
  transaction(): { execute<T>(work: (trx: KyselyLike) => Promise<T>): Promise<T> };
  insertInto(table: string): KyselyBuilding;
  selectFrom(table: string): KyselyBuilding;
  deleteFrom(table: string): KyselyBuilding;
}

interface KnexLike {
  raw(statement: string): Promise<unknown>;
  transaction<T>(work: (trx: KnexLike) => Promise<T>): Promise<T>;
  (table: string): {
    insert(row: Record<string, unknown>): Promise<unknown>;
    where(where: Record<string, unknown>): { select(column: string): Promise<unknown[]>; del(): Promise<unknown> };
  };
}

/**
 * The connection's query builder as taken now (`kysely()` on 7, `knex()` on 6), wrapped so a test runs the same SQL
 * through it on either major. Taken before a connection closes, it keeps using that instance.
 */
export function sqlRunner(connection: DbConnection): SqlRunner {
  if (MIKRO_ORM_MAJOR === 7) return kyselyRunner(connection.kysely() as unknown as KyselyLike);
  return knexRunner(connection.knex<KnexLike>(), connection.type);
}

function kyselyRunner(kysely: KyselyLike): SqlRunner {
  const query = async <R>(on: KyselyLike, statement: string) => (await sql.raw<R>(statement).execute(on as never)).rows;
  return {
    builder: kysely,
    query: (statement) => query(kysely, statement),
    transaction: (work) => kysely.transaction().execute((trx) => work({ query: (statement) => query(trx, statement) })),
    insert: async (table, row) => void (await kysely.insertInto(table).values(row).execute()),
    select: async <R>(table: string, column: string, where: Record<string, unknown>) => (await matching(kysely.selectFrom(table).select(column), where).execute()) as R[],
    delete: async (table, where) => void (await matching(kysely.deleteFrom(table), where).execute()),
  };
}

/** `building` with one `where column = value` per entry of `where`. */
function matching(building: KyselyBuilding, where: Record<string, unknown>): KyselyBuilding {
  return Object.entries(where).reduce((query, [column, value]) => query.where(column, '=', value), building);
}

function knexRunner(knex: KnexLike, type: DatabaseType): SqlRunner {
  const query = async <R>(on: KnexLike, statement: string): Promise<R[]> => {
    const result = await on.raw(statement);
    // pg answers { rows }; mysql2 and the MariaDB connector [rows, fields]; sqlite3 and tedious the rows.
    if (type === 'mysql' || type === 'mariadb') return (result as [R[]])[0];
    return Array.isArray(result) ? (result as R[]) : (result as { rows: R[] }).rows;
  };
  return {
    builder: knex,
    query: (statement) => query(knex, statement),
    transaction: (work) => knex.transaction((trx) => work({ query: (statement) => query(trx, statement) })),
    insert: async (table, row) => void (await knex(table).insert(row)),
    select: async <R>(table: string, column: string, where: Record<string, unknown>) => (await knex(table).where(where).select(column)) as R[],
    delete: async (table, where) => void (await knex(table).where(where).del()),
  };
}

/** Raw SQL through the connection's query builder (Kysely on 7, Knex on 6): the rows it returns. */
export function builderQuery<R = Record<string, unknown>>(connection: DbConnection, statement: string): Promise<R[]> {
  return sqlRunner(connection).query<R>(statement);
}

/**
 * Raw SQL on a native client the connection lends (`withNativeClient`): node-postgres' `query` for PostgreSQL; for
 * SQLite, the better-sqlite3 database (MikroORM 7, synchronous) or a sqlite3 database (6, callbacks). The rows.
 */
export function nativeQuery<R = Record<string, unknown>>(connection: DbConnection, statement: string): Promise<R[]> {
  return connection.withNativeClient((client) => nativeClientQuery<R>(connection.type, client, statement));
}

/** `nativeQuery` on a client already lent (inside `withNativeClient`); `params` bind the statement's placeholders. */
export async function nativeClientQuery<R = Record<string, unknown>>(type: DatabaseType, client: unknown, statement: string, params: unknown[] = []): Promise<R[]> {
  if (type === 'postgres') return (await (client as { query(s: string, p: unknown[]): Promise<{ rows: R[] }> }).query(statement, params)).rows;
  if (type !== 'sqlite') throw new Error(`nativeQuery: no ${type} client here`);
  const database = client as BetterSqlite3Like & Sqlite3Like;
  // sqlite3 (MikroORM 6) has a callback `all` on the database; better-sqlite3 (7) only statements.
  if (typeof database.all === 'function') {
    return new Promise((resolve, reject) => database.all(statement, params, (error, rows) => (error ? reject(error) : resolve(rows as R[]))));
  }
  const prepared = database.prepare(statement);
  if (prepared.reader) return prepared.all(...params) as R[];
  prepared.run(...params);
  return [];
}

interface BetterSqlite3Like {
  prepare(statement: string): { reader: boolean; all(...params: unknown[]): unknown[]; run(...params: unknown[]): unknown };
}

interface Sqlite3Like {
  all(statement: string, params: unknown[], callback: (error: Error | null, rows: unknown[]) => void): void;
}

/** The schema generator on either major (7: `create()` / `update()` / `drop()`; 6.6: `createSchema()` / …). */
export function schemaOf(orm: MikroORM): { create(): Promise<void>; update(): Promise<void>; drop(): Promise<void> } {
  const schema = orm.schema as unknown as Record<string, (options?: object) => Promise<void>>;
  return MIKRO_ORM_MAJOR === 7
    ? { create: () => schema.create(), update: () => schema.update({ safe: true }), drop: () => schema.drop() }
    : { create: () => schema.createSchema(), update: () => schema.updateSchema({ safe: true }), drop: () => schema.dropSchema() };
}
