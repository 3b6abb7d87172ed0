import type { EntityManager } from '@mikro-orm/core';
import type { DefaultOrm } from './config/config.types';
import type { KnexQueryBuilder, KyselyQueryBuilder } from './query-builders';

/** What `getDefaultDatabase()` hands out for each `default_orm`. */
export interface DefaultDatabaseHandles {
  /** The connection's EntityManager. */
  orm: EntityManager;
  /** Its Kysely query builder (MikroORM 7). */
  kysely: KyselyQueryBuilder<any>;
  /** Its Knex query builder (MikroORM 6). */
  knex: KnexQueryBuilder;
  /** Its `withNativeClient`: lends the raw driver client from the pool for the length of `fn`. */
  native: <T, C = unknown>(fn: (client: C) => Promise<T> | T) => Promise<T>;
}

/** `getDefaultDatabase()`'s result for a `default_orm`; the union of all three when the type does not say which. */
export type DefaultDatabase<O extends DefaultOrm = DefaultOrm> = DefaultDatabaseHandles[O];

type Unwrapped<C> = C extends { readonly dbmanager: infer D } ? D : C;
type ConnectionsOf<C> = Unwrapped<C> extends { readonly connections: infer R } ? R : never;
type DefaultKeyOf<C> = Unwrapped<C> extends { readonly defaultConnection: infer N extends string }
  ? N
  : Unwrapped<C> extends { readonly default_connection: infer N extends string }
    ? N
    : keyof ConnectionsOf<C>;
// The Go package's names: `gorm` is the ORM, `bun` the query builder.
type Normalized<O> = O extends 'gorm' ? 'orm' : O extends 'bun' ? 'kysely' | 'knex' : O extends DefaultOrm ? O : DefaultOrm;
type OrmField<X, K extends string> = K extends keyof X ? Normalized<Exclude<X[K], undefined>> | (undefined extends X[K] ? 'orm' : never) : never;
type OrmOf<X> = X extends unknown ? ([OrmField<X, 'defaultOrm' | 'default_orm'>] extends [never] ? 'orm' : OrmField<X, 'defaultOrm' | 'default_orm'>) : never;
type OrFallback<O> = [O] extends [never] ? DefaultOrm : O;

/**
 * The default connection's `default_orm` as written in a config literal: that of `default_connection`, else the
 * union over every connection (their order is not in the type); every `default_orm` when the type is not a literal.
 */
export type DefaultOrmOf<C> = string extends keyof ConnectionsOf<C>
  ? DefaultOrm
  : OrFallback<OrmOf<ConnectionsOf<C>[DefaultKeyOf<C> & keyof ConnectionsOf<C>]>>;
