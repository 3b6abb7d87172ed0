import {
  type DynamicModule,
  Inject,
  Injectable,
  Logger,
  type MiddlewareConsumer,
  Module,
  type ModuleMetadata,
  type NestModule,
  type OnApplicationShutdown,
  type FactoryProvider,
  type Provider,
  type Type,
} from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { AppGraph } from './app-graph';
import type { CheckedConfigInput, DbManagerConfig, DbManagerConfigInput } from './config/config.types';
import { parseDbManagerConfig } from './config/parse-config';
import { connectionProviders, defaultClassProviders } from './connection.providers';
import { type FeatureEntity, type FeatureRegistration, featureEntitiesByConnection } from './feature-entities';
import { DbManagerFeatureModule, FEATURE_REGISTRATION } from './feature.module';
import { DbHealthIndicator } from './health/db-health.indicator';
import { checkInjectedConnections, featureNamesNotConfigured } from './injection-check';
import { injectedNames } from './injected-names';
import { DbManager } from './manager/db-manager';
import { dbManagerMetricsProviders } from './metrics/db-manager-metrics';
import { DbRequestContextMiddleware } from './request-context.middleware';
import { DBMANAGER_CONFIG } from './tokens';

/** Options of `DbManagerModule.forRoot`. */
export interface DbManagerModuleOptions {
  /** Register the module globally (default true). */
  isGlobal?: boolean;
}

/** A class that builds the configuration, for `forRootAsync({ useClass | useExisting })`. */
export interface DbManagerOptionsFactory {
  createDbManagerOptions(): Promise<DbManagerConfigInput> | DbManagerConfigInput;
}

/**
 * A configuration literal of type `C`, each key it does not know a compile error naming the key. Inferred (not just
 * declared) so that the check also reaches a factory's returned literal, whose excess keys TypeScript does not check.
 */
type Checked<C> = C & CheckedConfigInput<NoInfer<C>>;

/**
 * Options of `DbManagerModule.forRootAsync`. `C` is the configuration the factory returns, inferred from it so that an
 * unknown key in the factory's object literal is a compile error (TypeScript does not check a returned literal's
 * excess keys on its own).
 */
export interface DbManagerModuleAsyncOptions<C extends DbManagerConfigInput = DbManagerConfigInput> extends Pick<ModuleMetadata, 'imports'>, DbManagerModuleOptions {
  /**
   * Names to register injection tokens for, beside those `@InjectConnection`, `@InjectEntityManager`,
   * `@InjectRepository` and `forFeature` name (registered without listing them); a listed name the config lacks is
   * a startup error.
   */
  connectionNames?: string[];
  inject?: Array<string | symbol | Type<unknown> | { token: string | symbol; optional: boolean }>;
  useFactory?: (...args: never[]) => Promise<Checked<C>> | Checked<C>;
  useClass?: Type<DbManagerOptionsFactory>;
  useExisting?: Type<DbManagerOptionsFactory>;
}

const OPTIONS_FACTORY = Symbol('nestjs-dbmanager:options-factory');
const logger = new Logger('DbManager');

interface RootParts {
  head: Provider[];
  names: string[];
  listed?: string[];
  isGlobal?: boolean;
  imports?: DynamicModule['imports'];
}

/**
 * Checks the names the app injects against the config (before any pool opens), then connects every connection with
 * the entities the app's forFeature imports registered for it.
 */
async function connectManager(config: DbManagerConfig, app: AppGraph, listed: readonly string[]): Promise<DbManager> {
  const features = app.values<FeatureRegistration>(FEATURE_REGISTRATION);
  checkInjectedConnections(config, listed, app.injections(), features);
  for (const name of featureNamesNotConfigured(config, features)) {
    logger.warn(`forFeature() registered entities for "${name}", which is not configured: add("${name}", …) will discover them`);
  }
  // As DbManager picks it: forFeature without a name means the connection that is default at startup.
  const defaultName = config.defaultConnection ?? Object.keys(config.connections)[0];
  const manager = new DbManager(config, { featureEntities: featureEntitiesByConnection(features, defaultName) });
  await manager.connectAll();
  return manager;
}

/** Closes every pool when the application shuts down (`app.close()` or a signal with shutdown hooks enabled). */
@Injectable()
class DbManagerShutdown implements OnApplicationShutdown {
  constructor(@Inject(DbManager) private readonly manager: DbManager) {}

  async onApplicationShutdown(): Promise<void> {
    await this.manager.close();
  }
}

/** Many named database connections behind one config, one service and one set of injection tokens. */
@Module({})
export class DbManagerModule implements NestModule {
  /** Registers the manager and a provider for every connection in `config`. */
  static forRoot<const C extends DbManagerConfigInput>(config: Checked<C>, options: DbManagerModuleOptions = {}): DynamicModule {
    const parsed = parseDbManagerConfig(config);
    return this.assemble({ head: [{ provide: DBMANAGER_CONFIG, useValue: parsed }], names: Object.keys(parsed.connections), ...options });
  }

  /** Same, with the configuration from a factory, class or existing provider (e.g. `ConfigService`). */
  static forRootAsync<const C extends DbManagerConfigInput>(options: DbManagerModuleAsyncOptions<C>): DynamicModule {
    const names = options.connectionNames ?? [];
    const configProvider: Provider = options.useFactory
      ? {
          provide: DBMANAGER_CONFIG,
          useFactory: async (...args: never[]) => parseDbManagerConfig(await options.useFactory!(...args)),
          inject: options.inject ?? [],
        }
      : {
          provide: DBMANAGER_CONFIG,
          useFactory: async (factory: DbManagerOptionsFactory) => parseDbManagerConfig(await factory.createDbManagerOptions()),
          inject: [OPTIONS_FACTORY],
        };
    const extra: Provider[] = [];
    if (options.useClass) extra.push({ provide: OPTIONS_FACTORY, useClass: options.useClass });
    else if (options.useExisting) extra.push({ provide: OPTIONS_FACTORY, useExisting: options.useExisting });
    else if (!options.useFactory) throw new Error('DbManagerModule.forRootAsync needs useFactory, useClass or useExisting');
    return this.assemble({ head: [configProvider, ...extra], names, listed: names, isGlobal: options.isGlobal, imports: options.imports });
  }

  /**
   * Adds `entities` to the named connection's MikroORM discovery (no name = the default connection) and registers
   * their repositories: `@InjectRepository(User, name)`, `getRepositoryToken(User, name)`, as @mikro-orm/nestjs does.
   */
  static forFeature(entities: readonly FeatureEntity[], name?: string): DynamicModule {
    return DbManagerFeatureModule.register(entities, name);
  }

  /** The root module: `head` provides the config; `names` get tokens beside the recorded ones; `listed` must be configured. */
  private static assemble({ head, names, listed = [], isGlobal = true, imports = [] }: RootParts): DynamicModule {
    const fixed: Provider[] = [
      ...head,
      {
        provide: DbManager,
        useFactory: (config: DbManagerConfig, container: ModulesContainer) => connectManager(config, new AppGraph(container), listed),
        inject: [DBMANAGER_CONFIG, ModulesContainer],
      },
      DbManagerShutdown,
      DbHealthIndicator,
      ...defaultClassProviders(),
    ];
    // The default (no name) first; names the decorators recorded are read at the first scan, not at the forRoot call.
    // Built once: Nest reads these getters again and again, and a thousand tenants are two thousand providers each time.
    let built: Provider[] | undefined;
    const tokenProviders = () => (built ??= [undefined, ...new Set([...names, ...injectedNames()])].flatMap(connectionProviders));
    return {
      module: DbManagerModule,
      global: isGlobal,
      imports: [TerminusModule, ...imports],
      // Getters: Nest reads them when it scans the app, after every class (and its decorators) has been defined,
      // so a name used by a class defined after this call (further down the same file) is registered too.
      get providers(): Provider[] {
        // The metric providers stay private to this module (only the registry and /metrics see them).
        return [...fixed, ...tokenProviders(), ...dbManagerMetricsProviders()];
      },
      get exports(): NonNullable<DynamicModule['exports']> {
        return [DbManager, DbHealthIndicator, DBMANAGER_CONFIG, ...defaultClassProviders().map((p) => p.provide), ...tokenProviders().map((p) => (p as FactoryProvider).provide)];
      },
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(DbRequestContextMiddleware).forRoutes('{*path}');
  }
}
