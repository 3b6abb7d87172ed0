import 'reflect-metadata';
import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { defineEntity, type EntityManager } from '@mikro-orm/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type DbConnection,
  DbManager,
  DbManagerConfigError,
  DbManagerModule,
  type DbManagerOptionsFactory,
  type DbManagerOptionsInput,
  getConnectionToken,
  getEntityManagerToken,
  InjectConnection,
  InjectEntityManager,
} from '../../lib';
import { builderQuery, schemaOf } from '../support/mikro-orm-leg';

class Item {
  id!: number;
  label!: string;
}
// defineEntity, not decorators: MikroORM 7 moved those out of @mikro-orm/core, and these tests run on both majors.
defineEntity({ class: Item, tableName: 'items', properties: (p) => ({ id: p.integer().primary(), label: p.string() }) });

const config = (): DbManagerOptionsInput => ({
  connections: {
    main: { type: 'sqlite', filepath: ':memory:', mikro_orm: { entities: [Item] } },
    other: { type: 'sqlite', filepath: ':memory:', tags: { role: 'reporting' } },
  },
});

@Injectable()
class ItemsService {
  constructor(
    @InjectEntityManager() readonly em: EntityManager,
    @InjectEntityManager('main') readonly mainEm: EntityManager,
    @InjectConnection('other') readonly other: DbConnection,
    @InjectConnection() readonly primary: DbConnection,
  ) {}
}

@Controller()
class ItemsController {
  constructor(private readonly items: ItemsService) {}

  // Uses the injected (global) EntityManager inside a request: the module's RequestContext makes it request-scoped.
  @Get('items')
  async list() {
    this.items.em.create(Item, { label: `item-${Date.now()}` });
    await this.items.em.flush();
    const forked = this.items.em.getContext() !== this.items.em;
    return { count: await this.items.em.count(Item), forked, other: (await builderQuery<{ n: number }>(this.items.other, 'select 7 as n'))[0].n };
  }
}

let closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers) await close();
  closers = [];
});

/** An application context without HTTP, for module wiring; startup errors reject instead of exiting. */
async function context(imports: unknown[]) {
  @Module({ imports: imports as never[] })
  class ContextModule {}
  const app = await NestFactory.createApplicationContext(ContextModule, { logger: false, abortOnError: false });
  closers.push(() => app.close());
  return app;
}

async function boot(imports: unknown[]) {
  @Module({ imports: imports as never[], controllers: [ItemsController], providers: [ItemsService] })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  closers.push(() => app.close());
  return { app, url: await app.getUrl() };
}

describe('DbManagerModule', () => {
  it('forRoot: injects connections and request-scoped EntityManagers by name and by default', async () => {
    const { app, url } = await boot([DbManagerModule.forRoot(config())]);
    await schemaOf(app.get(DbManager).get('main').orm).create();
    const service = app.get(ItemsService);
    expect(service.primary.name).toBe('main');
    expect(service.other.name).toBe('other');
    expect(service.mainEm).toBe(service.em);
    expect(app.get(getConnectionToken('other'))).toBe(service.other);
    expect(app.get(getEntityManagerToken())).toBe(service.em);

    const first = await (await fetch(`${url}/items`)).json();
    const second = (await (await fetch(`${url}/items`)).json()) as { count: number };
    expect(first).toEqual({ count: 1, forked: true, other: 7 });
    expect(second.count).toBe(2);
    // Outside a request, MikroORM refuses the global context: use em.fork().
    expect(() => service.em.create(Item, { label: 'x' })).toThrow(/global EntityManager/);
    expect(await service.em.fork().count(Item)).toBe(2);
  });

  it('forRootAsync with ConfigService: a listed name the config lacks is a startup error naming it', async () => {
    const ok = await context([
      ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => ({ dbmanager: config() })] }),
      DbManagerModule.forRootAsync({
        connectionNames: ['main', 'other'],
        inject: [ConfigService],
        useFactory: (cfg: ConfigService) => cfg.getOrThrow('dbmanager'),
      }),
    ]);
    expect(ok.get<DbConnection>(getConnectionToken('other')).tags).toEqual({ role: 'reporting' });
    await expect(
      context([
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => ({ dbmanager: config() })] }),
        DbManagerModule.forRootAsync({ connectionNames: ['main', 'analytics'], inject: [ConfigService], useFactory: (cfg: ConfigService) => cfg.getOrThrow('dbmanager') }),
      ]),
    ).rejects.toThrow(DbManagerConfigError);
    await expect(context([DbManagerModule.forRootAsync({ connectionNames: ['analytics'], useFactory: () => config() })])).rejects.toThrow(
      'connections.analytics: is listed in connectionNames but missing from the configuration',
    );
  });

  it('forRootAsync with useClass; unlisted connections are reachable through DbManager', async () => {
    class Options implements DbManagerOptionsFactory {
      createDbManagerOptions(): DbManagerOptionsInput {
        return { connections: { ...config().connections, spare: { type: 'sqlite', filepath: ':memory:' } } };
      }
    }
    const ref = await context([DbManagerModule.forRootAsync({ useClass: Options, connectionNames: ['other'] })]);
    expect(ref.get<DbConnection>(getConnectionToken('other')).name).toBe('other');
    expect(ref.get<DbConnection>(getConnectionToken()).name).toBe('main');
    // "main" has a token without being listed: ItemsService's decorators name it. "spare" is named nowhere.
    expect(ref.get<DbConnection>(getConnectionToken('main')).name).toBe('main');
    expect(() => ref.get(getConnectionToken('spare'))).toThrow();
    expect(ref.get(DbManager).get('spare').status).toBe('up');
  });

  it('closes every pool on shutdown, and two apps one after the other in one process do not collide', async () => {
    const first = await boot([DbManagerModule.forRoot(config())]);
    const firstManager = first.app.get(DbManager);
    const main = firstManager.get('main');
    await first.app.close();
    expect(main.status).toBe('closed');
    expect(firstManager.closed).toBe(true);

    const second = await boot([DbManagerModule.forRoot(config())]);
    await schemaOf(second.app.get(DbManager).get('main').orm).create();
    const body = await (await fetch(`${second.url}/items`)).json();
    expect(body).toEqual({ count: 1, forked: true, other: 7 });
  });

  it('fails startup with one clear error when a critical connection cannot connect, naming it', async () => {
    const failing = context([
      DbManagerModule.forRoot({
        retry_attempts: 1,
        connections: { ok: { type: 'sqlite', filepath: ':memory:' }, broken: { type: 'postgres', host: '127.0.0.1', port: 1, connect_timeout: '500ms' } },
      }),
    ]);
    await expect(failing).rejects.toThrow(/Connection "broken" .* failed after 1 attempt: .*ECONNREFUSED/);
  });

  it('rejects a bad config at forRoot with every problem listed', () => {
    expect(() => DbManagerModule.forRoot({ connections: { a: { type: 'sqlite' }, b: { type: 'postgres' } } })).toThrow(
      /2 problems\):\n {2}connections\.a\.filepath: .*\n {2}connections\.b\.host: is required/,
    );
  });
});
