import { EntitySchema } from '@mikro-orm/core';
import { Logger, type LoggerService } from '@nestjs/common';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DbManager, type DbManagerConfigInput } from '../../lib';
import { builderQuery, QUERY_BUILDER, sqlRunner } from '../support/mikro-orm-leg';

const postgresUrl = inject('postgresUrl');
const pgPassword = new URL(postgresUrl).password;

/** Records what the library hands Nest's Logger. */
class Capture implements LoggerService {
  readonly lines: { level: string; context: string; message: string }[] = [];
  log = (m: unknown, c?: string) => this.add('log', m, c);
  warn = (m: unknown, c?: string) => this.add('warn', m, c);
  debug = (m: unknown, c?: string) => this.add('debug', m, c);
  verbose = (m: unknown, c?: string) => this.add('verbose', m, c);
  fatal = (m: unknown, c?: string) => this.add('fatal', m, c);
  error = (m: unknown, ...rest: unknown[]) => this.add('error', m, String(rest.at(-1) ?? ''));
  private add(level: string, message: unknown, context?: string): void {
    this.lines.push({ level, context: context ?? '', message: String(message) });
  }
  text(): string {
    return this.lines.map((l) => `${l.level} [${l.context}] ${l.message}`).join('\n');
  }
}

interface Account {
  id: number;
  login: string;
  password: string;
}
const AccountSchema = new EntitySchema<Account>({
  name: 'LoggedAccount',
  tableName: 'logged_accounts',
  properties: { id: { type: 'number', primary: true, autoincrement: true }, login: { type: 'string' }, password: { type: 'string' } },
});

const capture = new Capture();
const managers: DbManager[] = [];

beforeAll(() => Logger.overrideLogger(capture));
afterAll(() => Logger.overrideLogger(new Logger()));
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
  capture.lines.length = 0;
});

async function start(fields: Record<string, unknown>): Promise<DbManager> {
  const manager = await DbManager.create({ health_check_interval: 0, connections: { logged: { type: 'postgres', dsn: postgresUrl, ...fields } } } as DbManagerConfigInput);
  managers.push(manager);
  return manager;
}

describe('enable_logging', () => {
  it(`logs every query (EM flush, EM execute, ${QUERY_BUILDER}, native) with its duration and every literal masked, and no password`, async () => {
    const manager = await start({ enable_logging: true, mikro_orm: { entities: [AccountSchema] } });
    const db = manager.get('logged');
    await builderQuery(db, 'create table if not exists logged_accounts (id serial primary key, login text, password text)');
    // MikroORM's own lines (its 'info' namespace) go through the same Nest logger.
    expect(capture.lines.some((l) => l.context === 'DbManager:logged' && /MikroORM version/.test(l.message))).toBe(true);
    capture.lines.length = 0;

    const em = db.em.fork();
    em.create(AccountSchema, { login: 'bob', password: 'flush-secret-1' });
    await em.flush();
    await db.em.fork().find(AccountSchema, { password: 'find-secret-2' });
    await db.em.fork().getConnection().execute('update logged_accounts set password = ? where login = ?', ['execute-secret-3', 'bob']);
    await sqlRunner(db).delete('logged_accounts', { password: 'knex-secret-4' });
    await db.withNativeClient((c: pg.Client) => c.query("select count(*) from logged_accounts where password = 'native-secret-5'"));
    await expect(builderQuery(db, "select * from missing_table where password = 'failed-secret-6'")).rejects.toThrow();

    const queries = capture.lines.filter((l) => l.context === 'DbManager:logged' && /^query/.test(l.message));
    expect(queries.map((l) => l.message.replace(/\d+\.\d ms/, 'N ms'))).toEqual([
      'query N ms: insert into "logged_accounts" ("login", "password") values (?, ?) returning "id"',
      'query N ms: select "l0".* from "logged_accounts" as "l0" where "l0"."password" = ?',
      'query N ms: update logged_accounts set password = ? where login = ?',
      'query N ms: delete from "logged_accounts" where "password" = $1',
      'query N ms: select count(*) from logged_accounts where password = ?',
      'query failed after N ms (42P01): select * from missing_table where password = ?',
    ]);
    const all = capture.text();
    for (const secret of ['flush-secret-1', 'find-secret-2', 'execute-secret-3', 'knex-secret-4', 'native-secret-5', 'failed-secret-6', pgPassword]) {
      expect(all).not.toContain(secret);
    }
  });

  it('logs no query without enable_logging', async () => {
    const manager = await start({});
    await builderQuery(manager.get('logged'), 'select 1');
    expect(capture.lines.filter((l) => /^query/.test(l.message))).toEqual([]);
  });
});
