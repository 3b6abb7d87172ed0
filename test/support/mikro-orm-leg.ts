import { sql } from 'kysely';
import type { MikroORM } from '@mikro-orm/core';
import type { DbConnection } from '../../lib';
import { type MikroOrmMajor, mikroOrm } from '../../lib/mikro-orm-version';

/**
 * What lets one test codebase run on both MikroORM legs: the running major, SQL through the running major's query
 * builder (Kysely on 7, Knex on 6), the schema generator's two spellings, and skip reasons for one-major tests.
 */

/** The MikroORM major this test run uses. */
export const MIKRO_ORM_MAJOR: MikroOrmMajor = mikroOrm().major;

/** The running major's query-builder access path: `kysely` on MikroORM 7, `knex` on 6. */
export const QUERY_BUILDER: 'kysely' | 'knex' = MIKRO_ORM_MAJOR === 7 ? 'kysely' : 'knex';

/** Why a test of `major` alone is skipped on this leg (printed once per file), or undefined when it runs. */
export function onlyOnMikroOrm(major: MikroOrmMajor, what: string): string | undefined {
  if (major === MIKRO_ORM_MAJOR) return undefined;
  const reason = `${what} is MikroORM ${major}'s, and this leg runs MikroORM ${mikroOrm().version}`;
  console.log(`[mikro-orm leg] skipped: ${reason}`);
  return reason;
}

/** Raw SQL through the connection's query builder (Kysely on 7, Knex on 6): the rows it returns. */
export async function builderQuery<R = Record<string, unknown>>(connection: DbConnection, statement: string): Promise<R[]> {
  if (MIKRO_ORM_MAJOR === 7) return (await sql.raw<R>(statement).execute(connection.kysely())).rows;
  const result = (await connection.knex().raw(statement)) as unknown;
  // pg answers { rows }; mysql2 and the MariaDB connector [rows, fields]; sqlite3 and tedious the rows.
  if (connection.type === 'mysql' || connection.type === 'mariadb') return (result as [R[]])[0];
  return Array.isArray(result) ? (result as R[]) : (result as { rows: R[] }).rows;
}

/** The schema generator on either major (7: `create()` / `update()`; 6.6: `createSchema()` / `updateSchema()`). */
export function schemaOf(orm: MikroORM): { create(): Promise<void>; update(): Promise<void> } {
  const schema = orm.schema as unknown as Record<string, (options?: object) => Promise<void>>;
  return MIKRO_ORM_MAJOR === 7
    ? { create: () => schema.create(), update: () => schema.update({ safe: true }) }
    : { create: () => schema.createSchema(), update: () => schema.updateSchema({ safe: true }) };
}
