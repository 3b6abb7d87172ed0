import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import {
  ConnectionClosedError,
  ConnectionNotFoundError,
  DbManager,
  DbManagerConfigError,
  NoDefaultConnectionError,
  NotMongoDatabaseError,
} from '../../lib';
import { LogCapture } from '../support/health-app';
import { MIKRO_ORM_MAJOR, nativeQuery, QUERY_BUILDER, sqlRunner } from '../support/mikro-orm-leg';

const dir = mkdtempSync(join(tmpdir(), 'dbm-manager-'));
let managers: DbManager[] = [];
const track = (m: DbManager) => (managers.push(m), m);

afterEach(async () => {
  await Promise.all(managers.map((m) => m.close()));
  managers = [];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SQLite', () => {
  it(':memory: keeps its data for the life of the connection, through every access path and idle time', async () => {
    const m = track(await DbManager.create({ connections: { mem: { type: 'sqlite', filepath: ':memory:', conn_max_idle_time: '100ms' } } }));
    const mem = m.get('mem');
    await sqlRunner(mem).query('create table kv (k text primary key, v text)');
    await sqlRunner(mem).insert('kv', { k: 'a', v: QUERY_BUILDER });
    await mem.em.fork().getConnection().execute("insert into kv values ('b', 'em')");
    await nativeQuery(mem, "insert into kv values ('c', 'native')");
    // Well past conn_max_idle_time (and the idle reaper's pass): the one connection must not have been closed.
    await new Promise((r) => setTimeout(r, 400));
    expect(await nativeQuery(mem, 'select k, v from kv order by k')).toEqual([
      { k: 'a', v: QUERY_BUILDER },
      { k: 'b', v: 'em' },
      { k: 'c', v: 'native' },
    ]);
    expect(mem.stats()).toMatchObject({ max: 1, open: 1, idleClosed: 0, lifetimeClosed: 0 });
  });

  it('a file database is shared by all pooled connections', async () => {
    const file = join(dir, 'shared.db');
    const m = track(await DbManager.create({ connections: { file: { type: 'sqlite', filepath: file, max_open_conns: 3 } } }));
    const db = m.get('file');
    await sqlRunner(db).query('create table t (x integer)');
    await Promise.all(Array.from({ length: 9 }, (_, i) => sqlRunner(db).insert('t', { x: i })));
    const [{ n }] = await sqlRunner(db).query<{ n: number }>('select count(*) as n from t');
    expect(n).toBe(9);
    expect(db.stats().open).toBeLessThanOrEqual(3);
  });
});

describe('SQLite: settings with nothing to act on', () => {
  it('are each named once in a warning on the connection\'s logger, and the connection works', async () => {
    const logs = new LogCapture();
    Logger.overrideLogger(logs);
    try {
      const m = track(
        await DbManager.create({
          connections: { mem: { type: 'sqlite', filepath: ':memory:', max_open_conns: 5, conn_max_lifetime: '1m', query_timeout: '1s' } },
        }),
      );
      expect(await nativeQuery(m.get('mem'), 'select 1 as one')).toEqual([{ one: 1 }]);
    } finally {
      Logger.overrideLogger(new Logger());
    }
    const warned = logs.matching('DbManager:mem', /does not apply/).map((l) => l.message);
    // MikroORM 7: one better-sqlite3 database; 6: knex's pool, of one connection for :memory:.
    const why = MIKRO_ORM_MAJOR === 7 ? 'on MikroORM 7 a SQLite connection is one better-sqlite3 database, not a pool' : 'a SQLite :memory: database lives in its one connection';
    expect(warned).toEqual([
      expect.stringMatching(new RegExp(`^maxOpenConns does not apply: ${why}`)),
      expect.stringMatching(new RegExp(`^connMaxLifetime does not apply: ${why}`)),
      'queryTimeout does not apply: SQLite runs in-process and has no server-side statement timeout',
    ]);
  });
});

describe('SQLite: connect_timeout', () => {
  it("bounds how long a statement waits for another connection's lock, from the first open", async () => {
    const file = join(dir, 'locked.db');
    const m = track(
      await DbManager.create({
        connections: { writer: { type: 'sqlite', filepath: file, connect_timeout: '300ms' }, locker: { type: 'sqlite', filepath: file, max_open_conns: 1 } },
      }),
    );
    await sqlRunner(m.get('writer')).query('create table t (x integer)');
    // The locker's one connection holds the database's write lock (its transaction outlives the lend).
    await nativeQuery(m.get('locker'), 'begin exclusive');
    const started = performance.now();
    const error = await sqlRunner(m.get('writer'))
      .query('insert into t values (1)')
      .then(() => undefined, (e: unknown) => e as Error);
    const waitedMs = performance.now() - started;
    await nativeQuery(m.get('locker'), 'commit');
    expect(error?.message).toMatch(/SQLITE_BUSY|database is locked/);
    // Its busy timeout, not the driver's own default (5 s for better-sqlite3).
    expect(waitedMs).toBeGreaterThanOrEqual(250);
    expect(waitedMs).toBeLessThan(2_000);
  });
});

describe('DbManager', () => {
  const two = () => ({
    default_connection: 'b',
    connections: {
      a: { type: 'sqlite', filepath: ':memory:', tags: { tier: 'hot', region: 'eu' } },
      b: { type: 'sqlite', filepath: ':memory:', default_orm: QUERY_BUILDER, tags: { tier: 'cold' } },
    },
  }) as const;

  it('hands connections out by name, in config order, and finds them by tags', async () => {
    const m = track(await DbManager.create(two()));
    expect(m.names()).toEqual(['a', 'b']);
    // Configuration order, whichever connects first: a slow-to-create first connection still comes first.
    const ordered = track(
      await DbManager.create({
        connections: {
          z: { type: 'postgres', host: '127.0.0.1', port: 1, critical: false, connect_timeout: '200ms' },
          y: { type: 'sqlite', filepath: ':memory:' },
          x: { type: 'sqlite', filepath: ':memory:' },
        },
      }),
    );
    expect(ordered.names()).toEqual(['z', 'y', 'x']);
    expect(() => ordered.get('w')).toThrow('(known: z, y, x)');
    expect(m.get('a').name).toBe('a');
    expect(m.getDefault().name).toBe('b');
    expect(m.findByTags({ tier: 'hot' }).map((c) => c.name)).toEqual(['a']);
    expect(m.findByTags({ tier: 'hot', region: 'us' })).toEqual([]);
    expect(() => m.get('nope')).toThrow(ConnectionNotFoundError);
    expect(() => m.get('nope')).toThrow('Connection "nope" is not registered (known: a, b)');
    expect(() => m.get('a').mongo()).toThrow(NotMongoDatabaseError);
    // The advice names the running major's query builder.
    expect(() => m.get('a').mongo()).toThrow(`Use connection.${QUERY_BUILDER}(), connection.em or connection.withNativeClient() instead.`);
  });

  it('getDefaultDatabase follows default_orm, and setDefault moves it', async () => {
    const m = track(await DbManager.create(two()));
    expect(m.getDefaultDatabase()).toBe(sqlRunner(m.get('b')).builder);
    m.setDefault('a');
    expect(m.getDefault().name).toBe('a');
    expect(m.getDefaultDatabase()).toBe(m.get('a').em);
    expect(() => m.setDefault('zzz')).toThrow(ConnectionNotFoundError);
  });

  it('defaults to the first connection when default_connection is not set', async () => {
    const m = track(await DbManager.create({ connections: { first: { type: 'sqlite', filepath: ':memory:' }, second: { type: 'sqlite', filepath: ':memory:' } } }));
    expect(m.getDefault().name).toBe('first');
  });

  it('adds and removes connections at runtime', async () => {
    const m = track(await DbManager.create(two()));
    const c = await m.add('extra', { type: 'sqlite', filepath: ':memory:', tags: { tier: 'hot' } });
    expect(c.status).toBe('up');
    expect(m.names()).toEqual(['a', 'b', 'extra']);
    expect(m.findByTags({ tier: 'hot' }).map((x) => x.name)).toEqual(['a', 'extra']);
    await expect(m.add('extra', { type: 'sqlite', filepath: ':memory:' })).rejects.toThrow(DbManagerConfigError);
    await expect(m.add('bad', { type: 'sqlite' } as never)).rejects.toThrow(/connections\.bad\.filepath: is required/);
    await m.remove('extra');
    expect(c.status).toBe('closed');
    expect(() => c[QUERY_BUILDER]()).toThrow(ConnectionClosedError);
    expect(m.names()).toEqual(['a', 'b']);
    await expect(m.remove('extra')).rejects.toThrow(ConnectionNotFoundError);
    await expect(m.remove('b')).rejects.toThrow(/is the default connection; call setDefault\(\) with another name/);
    m.setDefault('a');
    await m.remove('b');
    expect(m.names()).toEqual(['a']);
  });

  it('inherits the manager pool defaults in add()', async () => {
    const m = track(await DbManager.create({ max_open_conns: 3, connections: {} }));
    expect(() => m.getDefault()).toThrow(NoDefaultConnectionError);
    // PostgreSQL: a pool on both majors (on MikroORM 7 a SQLite connection is one database, its max always 1).
    const c = await m.add('late', { type: 'postgres', dsn: inject('postgresUrl') });
    expect(c.stats().max).toBe(3);
    expect(m.getDefault().name).toBe('late');
  });

  it('reports stats and health for every connection', async () => {
    const m = track(await DbManager.create(two()));
    expect(await m.healthCheck()).toEqual({
      a: { status: 'up', responseTimeMs: expect.any(Number) },
      b: { status: 'up', responseTimeMs: expect.any(Number) },
    });
    const stats = m.stats();
    expect(stats).toMatchObject({ totalConnections: 2, healthyCount: 2, unhealthyCount: 0 });
    expect(Object.keys(stats.connections.a).sort()).toEqual(
      [
        'name', 'type', 'status', 'lastHealthCheck', 'lastError', 'open', 'inUse', 'idle', 'pending', 'max', 'waitCount', 'waitDurationMs',
        'timeouts', 'lifetimeClosed', 'idleClosed', 'maxIdleClosed', 'reconnects',
      ].sort(),
    );
    expect(stats.connections.a.lastHealthCheck).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('close() is idempotent and closes every connection', async () => {
    const m = await DbManager.create(two());
    const a = m.get('a');
    await Promise.all([m.close(), m.close()]);
    await m.close();
    expect(a.status).toBe('closed');
    expect(m.names()).toEqual([]);
    expect(await a.healthCheck()).toMatchObject({ status: 'down', error: 'connection is closed' });
  });

  it('refuses MikroORM options that would bypass the managed pool', async () => {
    await expect(DbManager.create({ connections: { x: { type: 'sqlite', filepath: ':memory:', mikro_orm: { driver: 'nope' as never } } } })).rejects.toThrow(
      /connections\.x\.mikro_orm\.driver: is set by the library/,
    );
  });
});
