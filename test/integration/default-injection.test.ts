import 'reflect-metadata';
import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EntityManager, MikroORM } from '@mikro-orm/core';
import { sql } from 'kysely';
import { afterEach, describe, expect, expectTypeOf, inject, it } from 'vitest';
import { DbManager, type DbManagerConfig, DbManagerModule, type DefaultDatabaseHandles } from '../../lib';
import { MIKRO_ORM_MAJOR, nativeClientQuery, QUERY_BUILDER } from '../support/mikro-orm-leg';

// The handles' types as the library declares them (on a leg without knex, or without kysely, that one is `any`).
type Knex = DefaultDatabaseHandles['knex'];
type Kysely = DefaultDatabaseHandles['kysely'];
type QueryBuilder = Knex | Kysely;

const url = inject('postgresUrl');

// As in a single-context @mikro-orm/nestjs app: injected by class (emitDecoratorMetadata), no decorator at all.
@Injectable()
class PlainService {
  constructor(
    readonly em: EntityManager,
    readonly orm: MikroORM,
  ) {}
}

@Controller()
class PlainController {
  constructor(private readonly service: PlainService) {}

  @Get('who')
  async who() {
    const [row] = await this.service.em.getConnection().execute<{ n: number }[]>('select 1 as n');
    return { n: Number(row.n), forked: this.service.em.getContext() !== this.service.em, context: this.service.em.getContext().name };
  }
}

let closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers) await close();
  closers = [];
});

describe("the default connection's EntityManager and MikroORM by class", () => {
  it.each([
    ['the first configured (PostgreSQL)', undefined, 'pg'],
    ['default_connection (SQLite)', 'local', 'local'],
  ])('resolve to %s, request-scoped inside a request', async (_, defaultConnection, expected) => {
    @Module({
      imports: [
        DbManagerModule.forRootAsync({
          useFactory: () => ({
            default_connection: defaultConnection,
            connections: { pg: { type: 'postgres', dsn: url, max_open_conns: 2 }, local: { type: 'sqlite', filepath: ':memory:' } },
          }),
        }),
      ],
      controllers: [PlainController],
      providers: [PlainService],
    })
    class AppModule {}
    const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
    await app.listen(0, '127.0.0.1');
    closers.push(() => app.close());

    const service = app.get(PlainService);
    const connection = app.get(DbManager).get(expected);
    expect(service.em).toBe(connection.em);
    expect(service.orm).toBe(connection.orm);
    expect(app.get(EntityManager)).toBe(connection.em);
    expect(await (await fetch(`${await app.getUrl()}/who`)).json()).toEqual({ n: 1, forked: true, context: expected });
  });
});

describe('getDefaultDatabase() typed by default_orm', () => {
  const managers: DbManager[] = [];
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((m) => m.close()));
  });
  const track = <M extends DbManager>(m: M) => (managers.push(m), m);

  it(`${QUERY_BUILDER} → its query builder, orm (the default) → EntityManager, native → the client lender: each usable as typed`, async () => {
    // The running major's query builder: kysely on MikroORM 7, knex on 6 (the other is a config error there).
    if (MIKRO_ORM_MAJOR === 7) {
      const kysely = track(await DbManager.create({ connections: { a: { type: 'sqlite', filepath: ':memory:', default_orm: 'kysely' } } })).getDefaultDatabase();
      expectTypeOf(kysely).toEqualTypeOf<Kysely>();
      expect((await sql.raw('select 7 as n').execute(kysely)).rows).toEqual([{ n: 7 }]);
    } else {
      const knex = track(await DbManager.create({ connections: { a: { type: 'sqlite', filepath: ':memory:', default_orm: 'knex' } } })).getDefaultDatabase();
      expectTypeOf(knex).toEqualTypeOf<Knex>();
      expect(await knex.raw('select 7 as n')).toEqual([{ n: 7 }]);
    }

    const em = track(await DbManager.create({ connections: { a: { type: 'sqlite', filepath: ':memory:' } } })).getDefaultDatabase();
    expectTypeOf(em).toEqualTypeOf<EntityManager>();
    // @ts-expect-error an EntityManager is not a query builder
    expect(em.raw).toBeUndefined();
    expect(await em.fork().getConnection().execute('select 8 as n')).toEqual([{ n: 8 }]);

    const lend = track(await DbManager.create({ connections: { a: { type: 'sqlite', filepath: ':memory:', defaultOrm: 'native' } } })).getDefaultDatabase();
    expectTypeOf(lend).toEqualTypeOf<DefaultDatabaseHandles['native']>();
    const rows = await lend((db) => nativeClientQuery('sqlite', db, 'select 9 as n'));
    expect(rows).toEqual([{ n: 9 }]);
  });

  it("follows default_connection, the Go package's names, and falls back to the union when the type cannot tell", async () => {
    const chosen = track(
      await DbManager.create({
        default_connection: 'b',
        connections: { a: { type: 'sqlite', filepath: ':memory:' }, b: { type: 'sqlite', filepath: ':memory:', default_orm: 'bun' } },
      }),
    );
    // `bun` is the running major's query builder; the type cannot know the major, so it is either.
    expectTypeOf(chosen.getDefaultDatabase()).toEqualTypeOf<QueryBuilder>();
    expect(chosen.getDefaultDatabase()).toBe(chosen.get('b')[QUERY_BUILDER]());

    const gorm = track(await DbManager.create({ dbmanager: { connections: { a: { type: 'sqlite', filepath: ':memory:', default_orm: 'gorm' } } } }));
    expectTypeOf(gorm.getDefaultDatabase()).toEqualTypeOf<EntityManager>();
    expect(gorm.getDefaultDatabase()).toBe(gorm.get('a').em);

    // No default_connection: the first configured one, which the type cannot know, so it is either connection's.
    const either = track(
      await DbManager.create({ connections: { a: { type: 'sqlite', filepath: ':memory:' }, b: { type: 'sqlite', filepath: ':memory:', default_orm: QUERY_BUILDER } } }),
    );
    expectTypeOf(either.getDefaultDatabase()).toEqualTypeOf<EntityManager | QueryBuilder>();
    expect(either.getDefaultDatabase()).toBe(either.get('a').em);

    // A config that is not a literal, and the injected service: every handle; an app may declare DbManager<'orm'>.
    expectTypeOf<ReturnType<DbManager['getDefaultDatabase']>>().toEqualTypeOf<EntityManager | QueryBuilder | DefaultDatabaseHandles['native']>();
    expectTypeOf<Awaited<ReturnType<typeof DbManager.create<DbManagerConfig>>>>().toEqualTypeOf<DbManager>();
    expectTypeOf<ReturnType<DbManager<'orm'>['getDefaultDatabase']>>().toEqualTypeOf<EntityManager>();
  });
});
