import type { FeatureEntity } from './feature-entities';

/** Injection token of the validated options (a Symbol, so it never collides). */
export const DBMANAGER_CONFIG = Symbol('nestjs-dbmanager:config');

// A name cannot contain "<", so the default token can never equal a named one.
const DEFAULT = '<default>';
const CONNECTION_PREFIX = 'nestjs-dbmanager:connection:';
const ENTITY_MANAGER_PREFIX = 'nestjs-dbmanager:entity-manager:';

/** Token of a connection (`DbConnection`); no name = the connection that is default at startup. */
export function getConnectionToken(name?: string): string {
  return `${CONNECTION_PREFIX}${name ?? DEFAULT}`;
}

/** Token of a connection's EntityManager; no name = the default connection's. */
export function getEntityManagerToken(name?: string): string {
  return `${ENTITY_MANAGER_PREFIX}${name ?? DEFAULT}`;
}

/** What a repository token can be built from: an entity class, an `EntitySchema` (its `name`), or an entity name. */
export type RepositoryTokenSource = string | FeatureEntity;

/**
 * Token of an entity's repository, named as @mikro-orm/nestjs names it (`UserRepository`, `UserRepository_primary`),
 * so code written against its `getRepositoryToken` keeps working; no name = the default connection's.
 */
export function getRepositoryToken(entity: RepositoryTokenSource, name?: string): string {
  return `${typeof entity === 'string' ? entity : String(entity.name)}Repository${name ? `_${name}` : ''}`;
}

/** Which of our tokens this is: a connection's or an EntityManager's, and for which name (undefined = the default). */
export interface ConnectionTokenTarget {
  kind: 'connection' | 'entity-manager';
  name: string | undefined;
}

/** Reads one of our connection or EntityManager tokens back; undefined for any other token. */
export function connectionTokenTarget(token: unknown): ConnectionTokenTarget | undefined {
  if (typeof token !== 'string') return undefined;
  for (const [prefix, kind] of [[CONNECTION_PREFIX, 'connection'], [ENTITY_MANAGER_PREFIX, 'entity-manager']] as const) {
    if (token.startsWith(prefix)) {
      const name = token.slice(prefix.length);
      return { kind, name: name === DEFAULT ? undefined : name };
    }
  }
  return undefined;
}
