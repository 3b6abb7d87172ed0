/**
 * Type tests of the configuration as code writes it: what must compile, and — each marked `@ts-expect-error` with the
 * words its compile error must contain — what must not. `npm run typecheck` checks this file;
 * test/unit/config-types.test.ts compiles it on each MikroORM leg and checks every error's reason.
 */
import { ConfigService } from '@nestjs/config';
import type { EntityManager } from '@mikro-orm/core';
import { expectTypeOf } from 'vitest';
import {
  type ConnectionConfig,
  type ConnectionOptionsInput,
  DbManager,
  type DbManagerConfig,
  type DbManagerConfigInput,
  DbManagerModule,
  type DbManagerModuleAsyncOptions,
  type DbManagerOptionsFactory,
  type DefaultDatabase,
  type DefaultOrm,
  type DurationInput,
  parseDbManagerConfig,
  readDbManagerYaml,
  type SslMode,
} from '../../lib';

class User {
  id!: number;
}

// Never called: the compiler checks the calls inside.
export async function compiles(): Promise<void> {
  // The Go package's YAML shape in code: snake_case, durations as strings or milliseconds, ${ENV} references anywhere.
  DbManagerModule.forRoot({
    default_connection: 'primary',
    max_open_conns: 25,
    conn_max_lifetime: '1h30m',
    retry_delay: 500,
    health_check_interval: '30s',
    connections: {
      primary: { type: 'postgres', host: 'localhost', port: '${DB_PORT:-5432}', password: '${DB_PASSWORD}', sslmode: 'disable', default_orm: 'bun' },
      analytics: { type: 'postgres', dsn: 'postgres://readonly@analytics/analytics', critical: false, tags: { role: 'reporting' } },
      'cache-db': { type: 'sqlite', filepath: ':memory:', max_open_conns: 1 },
      documents: { type: 'mongodb', host: 'localhost', auth_source: 'admin', read_preference: 'primaryPreferred' },
      legacy: { type: 'mssql', host: 'sql', schema: 'dbo', sslmode: '${SQLSERVER_SSLMODE:-require}' },
      orders: { type: 'mariadb', dsn: 'mysql://root@127.0.0.1:3306/test', query_timeout: '10s' },
    },
  });
  // camelCase, as TypeScript code writes it, under a dbmanager: root, with MikroORM options.
  DbManagerModule.forRoot({
    dbmanager: {
      retryAttempts: 5,
      connections: { main: { type: 'sqlite', filepath: 'app.db', connectTimeout: 0, mikroOrm: { entities: [User], debug: true } } },
    },
  });
  // YAML goes through parseDbManagerConfig, which takes anything and validates it at run time.
  DbManagerModule.forRoot(parseDbManagerConfig(readDbManagerYaml('config.yaml')));

  DbManagerModule.forRootAsync({
    inject: [ConfigService],
    useFactory: (config: ConfigService) => config.getOrThrow('dbmanager'),
  });
  DbManagerModule.forRootAsync({ useFactory: () => ({ connections: { a: { type: 'sqlite', filepath: ':memory:' } } }) });
  DbManagerModule.forRootAsync({
    useFactory: async () => ({ retry_attempts: 2, connections: { a: { type: 'mysql', host: 'db', sslmode: 'verify-full' } } }),
  });
  class Options implements DbManagerOptionsFactory {
    createDbManagerOptions(): DbManagerConfigInput {
      return { connections: { a: { type: 'sqlite', filepath: ':memory:' } } };
    }
  }
  DbManagerModule.forRootAsync({ useClass: Options });

  // A configuration declared with its type (not a literal at the call) passes everywhere, as it is.
  const declared: DbManagerConfigInput = { default_connection: 'a', connections: { a: { type: 'sqlite', filepath: ':memory:' } } };
  DbManagerModule.forRoot(declared);
  const asyncOptions: DbManagerModuleAsyncOptions = { useFactory: () => declared };
  DbManagerModule.forRootAsync(asyncOptions);
  expectTypeOf((await DbManager.create(declared)).getDefaultDatabase()).toEqualTypeOf<DefaultDatabase>();
  const written = { connections: { a: { type: 'postgres', host: 'db', sslmode: 'verify-full' } } } satisfies DbManagerConfigInput;
  await DbManager.create(written);

  const manager = await DbManager.create({
    default_connection: 'reports',
    connections: {
      app: { type: 'sqlite', filepath: ':memory:', mikro_orm: { entities: [User] } },
      reports: { type: 'postgres', host: 'db', default_orm: 'native' },
    },
  });
  expectTypeOf(manager.getDefaultDatabase()).toEqualTypeOf<DefaultDatabase<'native'>>();
  const single = await DbManager.create({ connections: { app: { type: 'sqlite', filepath: ':memory:' } } });
  expectTypeOf(single.getDefaultDatabase()).toEqualTypeOf<EntityManager>();
  await DbManager.create(parseDbManagerConfig({}));
  // `any` (JSON.parse, ConfigService.get) is checked when it is parsed at run time.
  await DbManager.create(JSON.parse('{"connections":{}}'));
  DbManagerModule.forRoot(JSON.parse('{"connections":{}}'));
  await manager.add('tenant', { type: 'mongodb', host: 'mongo', replica_set: 'rs0', connect_timeout: '3s' });

  // A connection written apart, typed by its `type`.
  const tenant: ConnectionOptionsInput = { type: 'sqlite', filepath: 'tenant.db', enable_metrics: false };
  await manager.add('tenant-2', tenant);

  // What parsing gives back: camelCase, durations in ms, values narrowed.
  expectTypeOf<ConnectionConfig['maxOpenConns']>().toEqualTypeOf<number>();
  expectTypeOf<ConnectionConfig['connectTimeout']>().toEqualTypeOf<number>();
  expectTypeOf<ConnectionConfig['sslmode']>().toEqualTypeOf<SslMode | undefined>();
  expectTypeOf<ConnectionConfig['defaultOrm']>().toEqualTypeOf<DefaultOrm>();
  expectTypeOf<ConnectionConfig['applicationName']>().toEqualTypeOf<string>();
  expectTypeOf<DbManagerConfig['retryDelay']>().toEqualTypeOf<number>();
  expectTypeOf<DbManagerConfig['defaultConnection']>().toEqualTypeOf<string | undefined>();
  expectTypeOf<'1h30m'>().toMatchTypeOf<DurationInput>();
}

// Never called: each marked line must be a compile error whose message contains the words after the marker.
export async function doesNotCompile(manager: DbManager): Promise<void> {
  DbManagerModule.forRoot({
    // @ts-expect-error conections
    conections: { a: { type: 'oracle', prot: 'x' } },
  });
  // @ts-expect-error "oracle"
  DbManagerModule.forRoot({ connections: { a: { type: 'oracle', host: 'x' } } });
  // @ts-expect-error "postgress"
  await DbManager.create({ connections: { a: { type: 'postgress', host: 1 } } });
  // @ts-expect-error number
  await DbManager.create({ connections: { a: { type: 'postgres', host: 1 } } });
  // @ts-expect-error UnknownSetting<"hots">
  await DbManager.create({ connections: { a: { type: 'postgres', hots: 'db' } } });
  // @ts-expect-error UnknownSetting<"host">
  await DbManager.create({ connections: { a: { type: 'sqlite', filepath: 'x.db', host: 'db' } } });
  // @ts-expect-error UnknownSetting<"retry_atempts">
  await DbManager.create({ dbmanager: { retry_atempts: 3, connections: {} } });
  // @ts-expect-error UnknownConnection<"primry">
  await DbManager.create({ default_connection: 'primry', connections: { primary: { type: 'sqlite', filepath: 'x.db' } } });
  DbManagerModule.forRoot({
    connections: {
      // @ts-expect-error UnknownSetting<"host">
      cache: { type: 'sqlite', filepath: 'x.db', host: 'db' },
      // @ts-expect-error UnknownSetting<"filepath">
      pg: { type: 'postgres', host: 'db', filepath: 'x.db' },
      // @ts-expect-error UnknownSetting<"sslmode">
      docs: { type: 'mongodb', host: 'db', sslmode: 'require' },
      // @ts-expect-error UnknownSetting<"schema">
      orders: { type: 'mysql', host: 'db', schema: 'app' },
    },
  });
  // @ts-expect-error "30 seconds"
  DbManagerModule.forRoot({ connect_timeout: '30 seconds', connections: {} });
  // @ts-expect-error "typeorm"
  DbManagerModule.forRoot({ connections: { a: { type: 'sqlite', filepath: 'x.db', default_orm: 'typeorm' } } });
  // @ts-expect-error "sometimes"
  DbManagerModule.forRoot({ connections: { a: { type: 'postgres', host: 'db', sslmode: 'sometimes' } } });
  // @ts-expect-error UnknownSetting<"retry_atempts">
  DbManagerModule.forRootAsync({ useFactory: () => ({ retry_atempts: 3, connections: {} }) });
  // @ts-expect-error UnknownSetting<"host">
  DbManagerModule.forRootAsync({ useFactory: async () => ({ connections: { a: { type: 'sqlite', filepath: 'x.db', host: 'db' } } }) });
  // @ts-expect-error 'host' does not exist
  await manager.add('cache', { type: 'sqlite', filepath: 'x.db', host: 'db' });
  // @ts-expect-error 'Record<string, unknown>'
  await DbManager.create(readDbManagerYaml('config.yaml'));
}
