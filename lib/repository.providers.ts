import type { FactoryProvider, Type } from '@nestjs/common';
import { type EntityName, EntitySchema, MetadataStorage } from '@mikro-orm/core';
import { connectionOrNone } from './connection.providers';
import type { FeatureEntity } from './feature-entities';
import { DbManager } from './manager/db-manager';
import { getRepositoryToken } from './tokens';

/**
 * A repository provider per entity on the named connection (no name = the default), as @mikro-orm/nestjs builds them:
 * under `getRepositoryToken(entity, name)`, and under the entity's own repository class when it declares one.
 * The repository sits on the connection's EntityManager, so inside a request it works on the request's fork.
 * A connection missing at startup (one `add()` brings later) gives undefined: the startup check fails required ones.
 */
export function repositoryProviders(entities: readonly FeatureEntity[], name: string | undefined): FactoryProvider[] {
  return entities.flatMap((entity) => {
    const useFactory = (manager: DbManager) => connectionOrNone(manager, name)?.em.getRepository(entity as EntityName<object>);
    const own: FactoryProvider = { provide: getRepositoryToken(entity, name), useFactory, inject: [DbManager] };
    const custom = customRepositoryOf(entity);
    return custom ? [{ provide: custom, useFactory, inject: [DbManager] }, own] : [own];
  });
}

/** The repository class an entity declares (`repository: () => NoteRepository`), if any. */
function customRepositoryOf(entity: FeatureEntity): Type | undefined {
  const meta =
    entity instanceof EntitySchema
      ? entity.meta
      : (EntitySchema.REGISTRY.get(entity as never)?.meta ?? Object.values(MetadataStorage.getMetadata()).find((m) => m.class === entity));
  return meta?.repository?.() as Type | undefined;
}
