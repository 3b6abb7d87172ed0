import 'reflect-metadata';
import { Body, Controller, Get, Injectable, type LoggerService, Module, Post } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { defineEntity, EntityRepository, EntitySchema } from '@mikro-orm/core';
import { getRepositoryToken as mikroOrmNestjsRepositoryToken } from '@mikro-orm/nestjs';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { type ConnectionOptionsInput, type DbConnection, DbManager, DbManagerConfigError, DbManagerModule, getRepositoryToken, InjectRepository } from '../../lib';
import { schemaOf } from '../support/mikro-orm-leg';

// Entities as both MikroORM majors define them (6.6 and 7 have defineEntity and EntitySchema; 7 has no decorators in
// core): a class given its schema by defineEntity, with a custom repository, and a bare EntitySchema.
// The tables carry the pid: the PostgreSQL database is shared with the other test files.
const RUN = process.pid;

class Todo {
  id!: number;
  title!: string;
}

class TodoRepository extends EntityRepository<Todo> {
  titles(): Promise<string[]> {
    return this.findAll({ orderBy: { id: 'asc' } }).then((todos) => todos.map((t) => t.title));
  }
}

const TodoSchema = defineEntity({
  class: Todo,
  tableName: `feature_todos_${RUN}`,
  repository: () => TodoRepository,
  properties: (p) => ({ id: p.integer().primary(), title: p.string() }),
});

interface AuditRow {
  id: number;
  action: string;
}

const Audit = new EntitySchema<AuditRow>({
  name: 'Audit',
  tableName: `feature_audits_${RUN}`,
  properties: { id: { type: 'number', primary: true }, action: { type: 'string' } },
});

const url = inject('postgresUrl');

@Injectable()
class TodosService {
  constructor(
    @InjectRepository(Todo) readonly todos: EntityRepository<Todo>,
    readonly custom: TodoRepository,
    @InjectRepository(Audit, 'local') readonly audits: EntityRepository<AuditRow>,
  ) {}
}

@Controller('todos')
class TodosController {
  constructor(private readonly service: TodosService) {}

  // Repositories used as @mikro-orm/nestjs users do: inside a request they work on the request's EntityManager fork.
  @Post()
  async add(@Body() body: { title: string }) {
    const todo = this.service.todos.create({ title: body.title });
    this.service.audits.create({ action: `added ${body.title}` });
    await Promise.all([this.service.todos.getEntityManager().flush(), this.service.audits.getEntityManager().flush()]);
    return { id: todo.id, audits: await this.service.audits.count() };
  }

  @Get()
  list() {
    return this.service.custom.titles();
  }
}

/** One feature module per connection, as an app splits them. */
@Module({
  imports: [DbManagerModule.forFeature([Todo]), DbManagerModule.forFeature([Audit], 'local')],
  controllers: [TodosController],
  providers: [TodosService],
})
class TodosModule {}

let closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
});

afterAll(async () => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`drop table if exists feature_todos_${RUN}, feature_audits_${RUN}`);
  await client.end();
});

async function boot(root: unknown, logger: LoggerService | false = false) {
  @Module({ imports: [root as never, TodosModule] })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  closers.push(() => app.close());
  const manager = app.get(DbManager);
  // Table creation needs the entities discovered: forFeature put them there, nothing under mikro_orm.
  for (const name of ['pg', 'local']) {
    await schemaOf(manager.get(name).orm).drop();
    await schemaOf(manager.get(name).orm).create();
  }
  return { app, manager, url: await app.getUrl() };
}

async function addTodo(base: string, title: string) {
  const response = await fetch(`${base}/todos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title }) });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: number; audits: number };
}

/** Raw SQL through the connection's EntityManager: the same call on both MikroORM majors. */
const sql = (connection: DbConnection, query: string) => connection.em.fork().getConnection().execute(query);

const connections = () => ({
  pg: { type: 'postgres', dsn: url, max_open_conns: 3 } satisfies ConnectionOptionsInput,
  local: { type: 'sqlite', filepath: ':memory:' } satisfies ConnectionOptionsInput,
});

describe('DbManagerModule.forFeature', () => {
  it('forRoot: adds entities to their connection (a class on the default PostgreSQL, an EntitySchema on SQLite) and injects their repositories', async () => {
    const { app, manager, url: base } = await boot(DbManagerModule.forRoot({ connections: connections() }));
    const service = app.get(TodosService);

    expect(await addTodo(base, 'write tests')).toEqual({ id: 1, audits: 1 });
    expect(await addTodo(base, 'ship')).toEqual({ id: 2, audits: 2 });
    expect(await (await fetch(`${base}/todos`)).json()).toEqual(['write tests', 'ship']);

    // The rows are in the real servers, where each entity's connection points.
    const rows = await manager.get('pg').withNativeClient((client: pg.Client) => client.query(`select title from feature_todos_${RUN} order by id`));
    expect(rows.rows).toEqual([{ title: 'write tests' }, { title: 'ship' }]);
    expect(await sql(manager.get('local'), `select action from feature_audits_${RUN} order by id`)).toEqual([{ action: 'added write tests' }, { action: 'added ship' }]);
    expect(await sql(manager.get('local'), `select name from sqlite_master where name like 'feature_%'`)).toEqual([{ name: `feature_audits_${RUN}` }]);

    // Tokens as @mikro-orm/nestjs names them; the entity's repository class is a token too.
    expect(getRepositoryToken(Todo)).toBe(mikroOrmNestjsRepositoryToken(Todo));
    expect(getRepositoryToken(Audit, 'local')).toBe(mikroOrmNestjsRepositoryToken(Audit, 'local'));
    expect(getRepositoryToken(Audit, 'local')).toBe('AuditRepository_local');
    expect(app.get(getRepositoryToken(Todo))).toBe(service.todos);
    expect(service.custom).toBeInstanceOf(TodoRepository);
    expect(service.todos).toBeInstanceOf(TodoRepository);
    // Outside a request the repository refuses the global context, as MikroORM does: fork its EntityManager.
    await expect(service.todos.findAll()).rejects.toThrow(/global EntityManager/);
    expect(await service.todos.getEntityManager().fork().count(Todo)).toBe(2);
  });

  it('forRootAsync: YAML-like config with no mikro_orm, entities also listed under mikro_orm once, and runtime add() discovering them', async () => {
    const logs: string[] = [];
    const logger: LoggerService = { log: () => undefined, error: (m) => logs.push(String(m)), warn: (m) => logs.push(String(m)) };
    const yaml = { dbmanager: { default_connection: 'pg', connections: connections() } };
    // Also listed under mikro_orm by hand, as apps did before forFeature (Todo by the schema defineEntity gave its
    // class): discovery gets each once.
    const withAudit = (raw: { connections: Record<string, ConnectionOptionsInput> }) => ({
      ...raw,
      connections: {
        pg: { ...raw.connections.pg, mikro_orm: { entities: [TodoSchema] } },
        local: { ...raw.connections.local, mikro_orm: { entities: [Audit] } },
      },
    });
    const root = [
      ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => yaml] }),
      DbManagerModule.forRootAsync({ inject: [ConfigService], useFactory: (cfg: ConfigService) => withAudit(cfg.getOrThrow('dbmanager')) }),
    ];
    @Module({ imports: [DbManagerModule.forFeature([Audit], 'tenant')] })
    class TenantsModule {}
    @Module({ imports: [...root, TenantsModule] })
    class RootModule {}
    const { manager, url: base } = await boot(RootModule, logger);

    // Listed twice, discovered once (a duplicate would be a MikroORM error at startup).
    expect(await addTodo(base, 'async')).toEqual({ id: 1, audits: 1 });
    expect(await (await fetch(`${base}/todos`)).json()).toEqual(['async']);

    // "tenant" is not configured: its entities wait for add(), with one warning at startup.
    expect(logs.filter((l) => l.includes('"tenant"'))).toEqual([expect.stringContaining('forFeature() registered entities for "tenant", which is not configured')]);
    const tenant = await manager.add('tenant', { type: 'sqlite', filepath: ':memory:' });
    await schemaOf(tenant.orm).create();
    const em = tenant.em.fork();
    em.create(Audit, { action: 'tenant signed up' });
    await em.flush();
    expect(await sql(tenant, `select action from feature_audits_${RUN}`)).toEqual([{ action: 'tenant signed up' }]);
  });

  it('injecting the repository of a connection the config lacks is a startup error naming it', async () => {
    const failing = boot(DbManagerModule.forRoot({ connections: { pg: connections().pg } }));
    await expect(failing).rejects.toThrow(DbManagerConfigError);
    await expect(failing).rejects.toThrow('connections.local: is injected by TodosService but missing from the configuration (configured: pg)');
  });
});
