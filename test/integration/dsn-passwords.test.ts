import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DbManager, DbManagerConfigError, type DbManagerConfigInput, dbManagerYamlConfig, parseDbManagerConfig } from '../../lib';
import { builderQuery } from '../support/mikro-orm-leg';

// A password with every character a URL reserves, a space and non-ASCII, on a real role of the suite's PostgreSQL.
const PASSWORD = 'p@ss:w/r?d#5%&x y-ünï€';
// One with "${" in it, written with the $${ escape in the configuration.
const DOLLAR_PASSWORD = 'a${b}c$$d';
const server = new URL(inject('postgresUrl'));
const ROLE = `dbm_dsn_${process.pid}`;
const DOLLAR_ROLE = `dbm_dsn_dollar_${process.pid}`;
const at = `${server.hostname}:${server.port}/test`;

let admin: pg.Client;
let managers: DbManager[] = [];

beforeAll(async () => {
  admin = new pg.Client({ connectionString: server.toString() });
  await admin.connect();
  for (const [role, password] of [[ROLE, PASSWORD], [DOLLAR_ROLE, DOLLAR_PASSWORD]]) {
    await admin.query(`drop role if exists ${role}`);
    await admin.query(`create role ${role} login password ${admin.escapeLiteral(password)}`);
  }
});

afterEach(async () => {
  await Promise.all(managers.map((m) => m.close()));
  managers = [];
  delete process.env.DBM_DSN_USER;
  delete process.env.DBM_DSN_PASSWORD;
  delete process.env.DBM_DSN_URL;
});

afterAll(async () => {
  for (const role of [ROLE, DOLLAR_ROLE]) await admin?.query(`drop role if exists ${role}`);
  await admin?.end();
});

/** Connects one connection and asks the server who it is logged in as. */
async function whoAmI(connection: Record<string, unknown>): Promise<string> {
  const manager = await DbManager.create({ retry_attempts: 1, health_check_interval: 0, connections: { db: { type: 'postgres', ...connection } } } as DbManagerConfigInput);
  managers.push(manager);
  const rows = await builderQuery<{ who: string }>(manager.get('db'), 'select current_user as who');
  return rows[0].who;
}

describe('passwords in DSNs, on a real PostgreSQL role whose password has @ : / ? # % &, a space and unicode', () => {
  it('percent-encoded in the DSN', async () => {
    expect(await whoAmI({ dsn: `postgres://${ROLE}:${encodeURIComponent(PASSWORD)}@${at}` })).toBe(ROLE);
  });

  it('left out of the DSN and given in the password field, which fills it in', async () => {
    expect(await whoAmI({ dsn: `postgres://${ROLE}@${at}`, password: PASSWORD })).toBe(ROLE);
  });

  it('from ${VAR} inside the DSN user-info, percent-encoded on substitution (the environment holds it raw)', async () => {
    process.env.DBM_DSN_USER = ROLE;
    process.env.DBM_DSN_PASSWORD = PASSWORD;
    expect(await whoAmI({ dsn: `postgres://\${DBM_DSN_USER}:\${DBM_DSN_PASSWORD}@${at}` })).toBe(ROLE);
  });

  it('the same for a connection added at runtime with add()', async () => {
    process.env.DBM_DSN_PASSWORD = PASSWORD;
    const manager = await DbManager.create({ health_check_interval: 0, connections: {} });
    managers.push(manager);
    const added = await manager.add('late', { type: 'postgres', dsn: `postgres://${ROLE}:\${DBM_DSN_PASSWORD}@${at}` });
    expect((await builderQuery<{ who: string }>(added, 'select current_user as who'))[0].who).toBe(ROLE);
  });

  it('the same through a YAML file and dbManagerYamlConfig', async () => {
    process.env.DBM_DSN_PASSWORD = PASSWORD;
    const dir = mkdtempSync(join(tmpdir(), 'dbm-dsn-'));
    try {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, `dbmanager:\n  connections:\n    db:\n      type: postgres\n      dsn: postgres://${ROLE}:\${DBM_DSN_PASSWORD}@${at}\n`);
      const { dbmanager } = dbManagerYamlConfig(relative(process.cwd(), file))();
      const manager = await DbManager.create(parseDbManagerConfig({ ...dbmanager, retry_attempts: 1, health_check_interval: 0 }));
      managers.push(manager);
      expect((await builderQuery<{ who: string }>(manager.get('db'), 'select current_user as who'))[0].who).toBe(ROLE);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a whole-DSN ${VAR} is taken as it is: a valid, encoded URL connects', async () => {
    process.env.DBM_DSN_URL = `postgres://${ROLE}:${encodeURIComponent(PASSWORD)}@${at}`;
    expect(await whoAmI({ dsn: '${DBM_DSN_URL}' })).toBe(ROLE);
  });

  it('$${ in the password field is a literal ${', async () => {
    expect(await whoAmI({ host: server.hostname, port: Number(server.port), user: DOLLAR_ROLE, database: 'test', password: DOLLAR_PASSWORD.replace('${', () => '$${') })).toBe(DOLLAR_ROLE);
  });

  it('pasted unencoded, it is a config error that says what to do and quotes no part of it', async () => {
    const attempts = [`postgres://${ROLE}:${PASSWORD}@${at}`, '${DBM_DSN_URL}'];
    process.env.DBM_DSN_URL = attempts[0];
    for (const dsn of attempts) {
      const error = (await DbManager.create({ connections: { db: { type: 'postgres', dsn } } }).catch((e: unknown) => e)) as DbManagerConfigError;
      expect(error).toBeInstanceOf(DbManagerConfigError);
      expect(error.message).toMatch(/connections\.db\.dsn: cannot be split into user, password and host: .* or leave the password out of the dsn and set it in the password field/);
      for (const fragment of ['p@ss', 'w/r', 'r?d', '#5', '5%&', 'x y', 'ünï', '€']) expect(error.message).not.toContain(fragment);
    }
  });
});
