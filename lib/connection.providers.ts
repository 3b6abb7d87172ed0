import type { FactoryProvider } from '@nestjs/common';
import { EntityManager, MikroORM } from '@mikro-orm/core';
import type { DbConnection } from './connection/db-connection';
import { deferredObject } from './connection/deferred-object';
import { DbManager } from './manager/db-manager';
import { connectionTokenTarget, getConnectionToken, getEntityManagerToken } from './tokens';

/**
 * The default connection's EntityManager and MikroORM by class (`constructor(private readonly em: EntityManager)`),
 * as a single-context @mikro-orm/nestjs app has them: the classes from @mikro-orm/core.
 */
const DEFAULT_CLASS_TOKENS = [
  { token: EntityManager, of: (connection: DbConnection) => entityManagerOf(connection) },
  { token: MikroORM, of: (connection: DbConnection) => (connection.ormBuilt ? connection.orm : deferredObject(() => connection.orm, MikroORM)) },
];

/** A connection's EntityManager for injection: a lazy one not used yet gets a stand-in, so its ORM is built on first use. */
function entityManagerOf(connection: DbConnection): EntityManager {
  return connection.ormBuilt ? connection.em : deferredObject(() => connection.em, EntityManager);
}

/**
 * Providers of a connection's tokens (no name = the connection that is default at startup). A name the configuration
 * lacks resolves to undefined, which only an `@Optional()` injection receives: the startup check fails required ones.
 */
export function connectionProviders(name: string | undefined): FactoryProvider[] {
  return [
    { provide: getConnectionToken(name), useFactory: (manager: DbManager) => connectionOrNone(manager, name), inject: [DbManager] },
    {
      provide: getEntityManagerToken(name),
      useFactory: (manager: DbManager) => {
        const connection = connectionOrNone(manager, name);
        return connection && entityManagerOf(connection);
      },
      inject: [DbManager],
    },
  ];
}

/** The default connection's EntityManager and MikroORM, by class. */
export function defaultClassProviders(): FactoryProvider[] {
  return DEFAULT_CLASS_TOKENS.map(({ token, of }) => ({
    provide: token,
    useFactory: (manager: DbManager) => {
      const connection = connectionOrNone(manager, undefined);
      return connection && of(connection);
    },
    inject: [DbManager],
  }));
}

/** Which connection one of the tokens above stands for (`name` undefined = the default); undefined for other tokens. */
export const tokenConnection = (token: unknown): { name: string | undefined } | undefined =>
  connectionTokenTarget(token) ?? (DEFAULT_CLASS_TOKENS.some((c) => c.token === token) ? { name: undefined } : undefined);

/** The connection by name (no name = the default), or undefined when there is none. */
export function connectionOrNone(manager: DbManager, name: string | undefined): DbConnection | undefined {
  if (name !== undefined) return manager.has(name) ? manager.get(name) : undefined;
  const fallback = manager.defaultConnectionName;
  return fallback !== undefined && manager.has(fallback) ? manager.getDefault() : undefined;
}
