import { type DynamicModule, Module } from '@nestjs/common';
import type { FeatureEntity, FeatureRegistration } from './feature-entities';
import { repositoryProviders } from './repository.providers';

/** Token of one `forFeature` call's entities; the root module collects them from the app's modules at startup. */
export const FEATURE_REGISTRATION = Symbol('nestjs-dbmanager:feature');

/** What `DbManagerModule.forFeature()` imports: the entities' repository providers, and the entities for discovery. */
@Module({})
export class DbManagerFeatureModule {
  /** @internal Use `DbManagerModule.forFeature()`. */
  static register(entities: readonly FeatureEntity[], name: string | undefined): DynamicModule {
    const repositories = repositoryProviders(entities, name);
    const registration: FeatureRegistration = { name, entities: [...entities] };
    return {
      module: DbManagerFeatureModule,
      providers: [{ provide: FEATURE_REGISTRATION, useValue: registration }, ...repositories],
      exports: repositories.map((provider) => provider.provide),
    };
  }
}
