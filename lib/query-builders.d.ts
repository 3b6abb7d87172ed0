// Hand-written (and copied into dist/ by the build) because these imports must stay optional in the published types:
// knex comes with MikroORM 6 only, kysely with MikroORM 7 only. Where one is missing its type is `any`, so a
// TypeScript app compiles against either major with skipLibCheck: false.

// @ts-ignore -- installed with MikroORM 6 (@mikro-orm/knex) only
import type { Knex } from 'knex';
// @ts-ignore -- installed with MikroORM 7 (@mikro-orm/sql) only
import type { Kysely } from 'kysely';

/** Knex, the query builder of a SQL connection on MikroORM 6. */
export type KnexQueryBuilder = Knex;

/** Kysely, the query builder of a SQL connection on MikroORM 7; `DB` describes your tables for typed queries. */
export type KyselyQueryBuilder<DB> = Kysely<DB>;
