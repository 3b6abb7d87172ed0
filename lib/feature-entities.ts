import { type EntityClass, EntitySchema, type Options } from '@mikro-orm/core';

/**
 * An entity for `forFeature`: a class (its schema from `defineEntity({ class })` or MikroORM's decorators) or an
 * `EntitySchema` (what `defineEntity` and `new EntitySchema()` return on either MikroORM major).
 */
export type FeatureEntity = EntityClass<object> | { readonly name: unknown; readonly meta: object };

/** One `forFeature(entities, name)` call; no name = the connection that is default at startup. */
export interface FeatureRegistration {
  readonly name: string | undefined;
  readonly entities: readonly FeatureEntity[];
}

/** The forFeature entities of each connection: those registered for its name, and the unnamed ones for the default. */
export function featureEntitiesByConnection(
  registrations: readonly FeatureRegistration[],
  defaultName: string | undefined,
): (connectionName: string) => FeatureEntity[] {
  return (connectionName) => registrations.filter((r) => (r.name ?? defaultName) === connectionName).flatMap((r) => r.entities);
}

/** MikroORM options with the feature entities added to its discovery (what @mikro-orm/nestjs calls autoLoadEntities). */
export function withFeatureEntities(options: Partial<Options>, extra: readonly FeatureEntity[]): Partial<Options> {
  if (!extra.length) return options;
  const merged: Partial<Options> = { ...options, entities: distinct([...(options.entities ?? []), ...extra]) as Options['entities'] };
  // Under ts-node or Vitest MikroORM reads entitiesTs instead of entities when it is not empty: fill it only if the user did.
  if (options.entitiesTs?.length) merged.entitiesTs = distinct([...options.entitiesTs, ...extra]) as Options['entitiesTs'];
  return merged;
}

/** Keeps the first entry for each entity: a class and the schema `defineEntity({ class })` gave it are one entity. */
function distinct(items: readonly unknown[]): unknown[] {
  const seen = new Set<unknown>();
  return items.filter((item) => {
    const key = typeof item === 'function' ? (EntitySchema.REGISTRY.get(item as never) ?? item) : item;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
