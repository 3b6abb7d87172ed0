import 'reflect-metadata';
import { Controller, Get, Injectable, Module, Optional } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import type { EntityManager } from '@mikro-orm/core';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { type DbConnection, DbManager, DbManagerConfigError, DbManagerModule, InjectConnection, InjectEntityManager } from '../../lib';

// Names reach the module through the decorators alone: no connectionNames anywhere unless a test says so.
const url = inject('postgresUrl');
const config = () =>
  ({
    connections: {
      main: { type: 'sqlite', filepath: ':memory:' },
      reports: { type: 'postgres', dsn: url, max_open_conns: 2 },
    },
  }) as const;

@Injectable()
class ReportsService {
  @InjectConnection('main') readonly main!: DbConnection;

  constructor(
    @InjectConnection('reports') readonly reports: DbConnection,
    @InjectEntityManager('reports') readonly em: EntityManager,
  ) {}
}

@Controller()
class ReportsController {
  constructor(private readonly service: ReportsService) {}

  @Get('database')
  async database() {
    const [row] = await this.service.em.getConnection().execute<{ name: string }[]>('select current_database() as name');
    return { reports: row.name, main: this.service.main.name };
  }
}

/** A class no test app includes: the name it records must not trouble the apps that do not use it. */
@Injectable()
export class ElsewhereService {
  constructor(@InjectConnection('elsewhere') readonly elsewhere: DbConnection) {}
}

let closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers) await close();
  closers = [];
});

const asyncRoot = (extra: { connectionNames?: string[] } = {}) =>
  [
    ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => ({ dbmanager: config() })] }),
    DbManagerModule.forRootAsync({ ...extra, inject: [ConfigService], useFactory: (cfg: ConfigService) => cfg.getOrThrow('dbmanager') }),
  ] as const;

/** An application context: startup errors reject instead of exiting. */
async function context(imports: unknown[], providers: unknown[] = []) {
  @Module({ imports: imports as never[], providers: providers as never[] })
  class ContextModule {}
  const app = await NestFactory.createApplicationContext(ContextModule, { logger: false, abortOnError: false });
  closers.push(() => app.close());
  return app;
}

describe('names without repeating them', () => {
  it('forRootAsync registers every name @InjectConnection and @InjectEntityManager use, without connectionNames', async () => {
    @Module({ imports: [...asyncRoot()], controllers: [ReportsController], providers: [ReportsService] })
    class AppModule {}
    const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
    await app.listen(0, '127.0.0.1');
    closers.push(() => app.close());

    const service = app.get(ReportsService);
    expect(service.reports).toBe(app.get(DbManager).get('reports'));
    expect(service.em).toBe(service.reports.em);
    const body = await (await fetch(`${await app.getUrl()}/database`)).json();
    expect(body).toEqual({ reports: new URL(url).pathname.slice(1), main: 'main' });
  });

  it('a class defined after forRootAsync() was evaluated (further down the same file) gets its name too', async () => {
    const root = asyncRoot();
    @Injectable()
    class DefinedLater {
      constructor(@InjectConnection('reports') readonly reports: DbConnection) {}
    }
    const app = await context([...root], [DefinedLater]);
    expect(app.get(DefinedLater).reports.name).toBe('reports');
    expect((await app.get(DefinedLater).reports.healthCheck()).status).toBe('up');
  });

  it('a name the config lacks is a startup error naming it, who injects it and the configured names', async () => {
    @Injectable()
    class TypoService {
      constructor(@InjectConnection('reports.v2') readonly reports: DbConnection) {}
    }
    @Injectable()
    class TypoEmService {
      @InjectEntityManager('reports.v2') readonly em!: EntityManager;
    }
    for (const root of [[...asyncRoot()], [DbManagerModule.forRoot(config())]]) {
      const error = await context(root, [TypoService, TypoEmService]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DbManagerConfigError);
      expect(error).toMatchObject({ name: 'DbManagerConfigError', connectionName: 'reports.v2' });
      expect((error as Error).message).toContain(
        'connections.reports.v2: is injected by TypoService, TypoEmService but missing from the configuration (configured: main, reports); add it or fix the name',
      );
      expect((error as Error).message).not.toMatch(/can't resolve dependencies/i);
    }
  });

  it('an @Optional() injection of a missing name gets undefined; a name only a class outside the app uses changes nothing', async () => {
    @Injectable()
    class MaybeService {
      constructor(@Optional() @InjectConnection('archive') readonly archive?: DbConnection) {}
    }
    const app = await context([...asyncRoot()], [MaybeService]);
    expect(app.get(MaybeService).archive).toBeUndefined();
    expect(app.get(DbManager).names()).toEqual(['main', 'reports']);
    expect(ElsewhereService).toBeDefined();
  });

  it('connectionNames stays an explicit check, even for a name nothing injects', async () => {
    await expect(context([...asyncRoot({ connectionNames: ['main', 'analytics'] })])).rejects.toThrow(
      'connections.analytics: is listed in connectionNames but missing from the configuration (configured: main, reports)',
    );
  });

  it('an app with no connection at startup starts (add() brings them); injecting the default one then is a startup error', async () => {
    const empty = await context([DbManagerModule.forRoot({ connections: {} })]);
    const tenant = await empty.get(DbManager).add('tenant', { type: 'sqlite', filepath: ':memory:' });
    expect(tenant.status).toBe('up');

    @Injectable()
    class NeedsDefault {
      constructor(@InjectConnection() readonly db: DbConnection) {}
    }
    await expect(context([DbManagerModule.forRoot({ connections: {} })], [NeedsDefault])).rejects.toThrow(
      'connections: has no connection, but NeedsDefault injects the default one; configure a connection',
    );
  });
});
