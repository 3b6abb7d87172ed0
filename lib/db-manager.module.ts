import {
  type DynamicModule,
  Inject,
  Injectable,
  type MiddlewareConsumer,
  Module,
  type ModuleMetadata,
  type NestModule,
  type OnApplicationShutdown,
  type Provider,
  type Type,
} from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { DbManagerConfig, DbManagerConfigInput } from './config/config.types';
import { parseDbManagerConfig } from './config/parse-config';
import { DbManagerConfigError } from './errors';
import { DbHealthIndicator } from './health/db-health.indicator';
import { DbManager } from './manager/db-manager';
import { dbManagerMetricsProviders } from './metrics/db-manager-metrics';
import { DbRequestContextMiddleware } from './request-context.middleware';
import { DBMANAGER_CONFIG, getConnectionToken, getEntityManagerToken } from './tokens';

/** Options of `DbManagerModule.forRoot`. */
export interface DbManagerModuleOptions {
  /** Register the module globally (default true). */
  isGlobal?: boolean;
}

/** A class that builds the configuration, for `forRootAsync({ useClass | useExisting })`. */
export interface DbManagerOptionsFactory {
  createDbManagerOptions(): Promise<DbManagerConfigInput> | DbManagerConfigInput;
}

/** Options of `DbManagerModule.forRootAsync`. */
export interface DbManagerModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'>, DbManagerModuleOptions {
  /** Names to register injection tokens for; a listed name the config lacks is a startup error. */
  connectionNames?: string[];
  inject?: Array<string | symbol | Type<unknown> | { token: string | symbol; optional: boolean }>;
  useFactory?: (...args: never[]) => Promise<DbManagerConfigInput> | DbManagerConfigInput;
  useClass?: Type<DbManagerOptionsFactory>;
  useExisting?: Type<DbManagerOptionsFactory>;
}

const CONNECTION_NAMES = Symbol('nestjs-dbmanager:connection-names');
const OPTIONS_FACTORY = Symbol('nestjs-dbmanager:options-factory');

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
  static forRoot(config: DbManagerConfigInput | DbManagerConfig, options: DbManagerModuleOptions = {}): DynamicModule {
    const parsed = parseDbManagerConfig(config);
    return this.assemble([{ provide: DBMANAGER_CONFIG, useValue: parsed }], Object.keys(parsed.connections), options.isGlobal, []);
  }

  /** Same, with the configuration from a factory, class or existing provider (e.g. `ConfigService`). */
  static forRootAsync(options: DbManagerModuleAsyncOptions): DynamicModule {
    const names = options.connectionNames ?? [];
    const configProvider: Provider = options.useFactory
      ? {
          provide: DBMANAGER_CONFIG,
          useFactory: async (...args: never[]) => checkNames(parseDbManagerConfig(await options.useFactory!(...args)), names),
          inject: options.inject ?? [],
        }
      : {
          provide: DBMANAGER_CONFIG,
          useFactory: async (factory: DbManagerOptionsFactory) => checkNames(parseDbManagerConfig(await factory.createDbManagerOptions()), names),
          inject: [OPTIONS_FACTORY],
        };
    const extra: Provider[] = [];
    if (options.useClass) extra.push({ provide: OPTIONS_FACTORY, useClass: options.useClass });
    else if (options.useExisting) extra.push({ provide: OPTIONS_FACTORY, useExisting: options.useExisting });
    else if (!options.useFactory) throw new Error('DbManagerModule.forRootAsync needs useFactory, useClass or useExisting');
    return this.assemble([configProvider, ...extra], names, options.isGlobal, options.imports ?? []);
  }

  private static assemble(head: Provider[], names: string[], isGlobal = true, imports: DynamicModule['imports'] = []): DynamicModule {
    const perName = (name: string | undefined): Provider[] => [
      {
        provide: getConnectionToken(name),
        useFactory: (manager: DbManager) => (name === undefined ? manager.getDefault() : manager.get(name)),
        inject: [DbManager],
      },
      {
        provide: getEntityManagerToken(name),
        useFactory: (manager: DbManager) => (name === undefined ? manager.getDefault() : manager.get(name)).em,
        inject: [DbManager],
      },
    ];
    const providers: Provider[] = [
      ...head,
      { provide: CONNECTION_NAMES, useValue: names },
      {
        provide: DbManager,
        useFactory: async (config: DbManagerConfig) => {
          const manager = new DbManager(config);
          await manager.connectAll();
          return manager;
        },
        inject: [DBMANAGER_CONFIG],
      },
      DbManagerShutdown,
      DbHealthIndicator,
      ...perName(undefined),
      ...names.flatMap(perName),
    ];
    const exported = providers.filter((p) => typeof p === 'object' && 'provide' in p && typeof p.provide === 'string').map((p) => (p as { provide: string }).provide);
    return {
      module: DbManagerModule,
      global: isGlobal,
      imports: [TerminusModule, ...imports],
      // The metric providers stay private to this module (only the registry and /metrics see them).
      providers: [...providers, ...dbManagerMetricsProviders()],
      exports: [DbManager, DbHealthIndicator, DBMANAGER_CONFIG, ...exported],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(DbRequestContextMiddleware).forRoutes('{*path}');
  }
}

function checkNames(config: DbManagerConfig, names: string[]): DbManagerConfig {
  const missing = names.filter((name) => !(name in config.connections));
  if (missing.length) {
    throw new DbManagerConfigError(
      missing.map((name) => ({ path: `connections.${name}`, message: 'is listed in connectionNames but missing from the configuration' })),
      missing[0],
    );
  }
  return config;
}
