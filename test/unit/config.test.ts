import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DbManagerConfigError, dbManagerYamlConfig, parseDbManagerConfig, parseDuration } from '../../lib';
import { mikroOrm } from '../../lib/mikro-orm-version';
import { OTHER_QUERY_BUILDER, QUERY_BUILDER } from '../support/mikro-orm-leg';

// The seed README's YAML example, as it is.
const seedYaml = () => parse(readFileSync(join(process.cwd(), 'test/fixtures/seed-config.yaml'), 'utf8'));

function problems(input: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseDbManagerConfig(input, { env, warn: () => undefined });
  } catch (error) {
    expect(error).toBeInstanceOf(DbManagerConfigError);
    return (error as DbManagerConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected the config to be rejected');
}

describe('durations', () => {
  it('reads Go-style durations and milliseconds', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('5 minutes')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
  });
});

describe('parseDbManagerConfig', () => {
  it('loads the seed README YAML as it is, with the seed defaults', () => {
    const warnings: string[] = [];
    const config = parseDbManagerConfig(seedYaml(), { env: {}, warn: (m) => warnings.push(m) });
    expect(Object.keys(config.connections)).toEqual(['primary', 'analytics', 'cache-db', 'documents']);
    expect(config.defaultConnection).toBe('primary');
    expect(config).toMatchObject({ retryAttempts: 3, retryDelay: 1_000, retryMaxDelay: 10_000, healthCheckInterval: 30_000, enableAutoReconnect: true });
    expect(config.connections.primary).toMatchObject({
      type: 'postgres', host: 'localhost', port: 5432, user: 'myuser', password: 'mypassword', database: 'myapp', sslmode: 'disable',
      maxOpenConns: 25, maxIdleConns: 5, connMaxLifetime: 1_800_000, connMaxIdleTime: 300_000, connectTimeout: 10_000, queryTimeout: 30_000,
      defaultOrm: QUERY_BUILDER, enableTracing: true, enableMetrics: true, enableLogging: true, critical: true, applicationName: 'primary',
    });
    // The dsn overrides the individual fields and its credentials are decoded.
    expect(config.connections.analytics).toMatchObject({ host: 'analytics', port: 5432, user: 'readonly', password: 'pass', database: 'analytics' });
    expect(config.connections['cache-db']).toMatchObject({ type: 'sqlite', filepath: '/var/lib/app/cache.db', maxOpenConns: 1, maxIdleConns: 1 });
    expect(config.connections.documents).toMatchObject({ type: 'mongodb', authSource: 'admin', port: 27017 });
    expect(warnings.some((w) => w.includes('default_orm "bun"'))).toBe(true);
  });

  it("refuses default_orm naming the other major's query builder, naming the version that runs", () => {
    const config = { connections: { x: { type: 'sqlite', filepath: ':memory:', default_orm: OTHER_QUERY_BUILDER } } };
    const other = OTHER_QUERY_BUILDER === 'knex' ? 6 : 7;
    expect(problems(config)).toEqual([
      `connections.x.default_orm: is "${OTHER_QUERY_BUILDER}", the query builder of MikroORM ${other}, but MikroORM ${mikroOrm().version} runs here: use "${QUERY_BUILDER}" (or orm, native)`,
    ]);
  });

  it('dbManagerYamlConfig reads a YAML file (relative to the working directory) for @nestjs/config', () => {
    const loaded = dbManagerYamlConfig('test/fixtures/seed-config.yaml')();
    expect(Object.keys(loaded)).toEqual(['dbmanager']);
    expect(loaded.dbmanager.max_open_conns).toBe(25);
    expect(() => dbManagerYamlConfig('test/fixtures/missing.yaml')()).toThrow(/missing\.yaml: cannot be read \(ENOENT\)/);
  });

  it('accepts camelCase and snake_case alike, unwrapped or under dbmanager', () => {
    const camel = parseDbManagerConfig({ maxOpenConns: 7, connections: { a: { type: 'sqlite', filepath: ':memory:', healthCheckTimeout: '2s' } } });
    const snake = parseDbManagerConfig({ dbmanager: { max_open_conns: 7, connections: { a: { type: 'sqlite', filepath: ':memory:', health_check_timeout: '2s' } } } });
    expect(camel.connections.a).toEqual(snake.connections.a);
    expect(camel.connections.a.maxOpenConns).toBe(7);
    expect(camel.connections.a.healthCheckTimeout).toBe(2_000);
    expect(camel.defaultConnection).toBeUndefined();
  });

  it('lets a connection override the manager defaults', () => {
    const config = parseDbManagerConfig({
      max_open_conns: 10, conn_max_idle_time: '1m', acquire_timeout: '3s',
      connections: { a: { type: 'postgres', host: 'h', max_open_conns: 2, max_idle_conns: 9 }, b: { type: 'postgres', host: 'h' } },
    });
    expect(config.connections.a).toMatchObject({ maxOpenConns: 2, maxIdleConns: 2, connMaxIdleTime: 60_000, acquireTimeout: 3_000 });
    expect(config.connections.b).toMatchObject({ maxOpenConns: 10, maxIdleConns: 5 });
    expect(config.connections.a.explicit).toEqual(['type', 'host', 'maxOpenConns', 'maxIdleConns']);
  });

  it('interpolates ${ENV} and ${ENV:-fallback}, and names the path of a missing variable', () => {
    const config = parseDbManagerConfig(
      { connections: { a: { type: 'postgres', host: '${DB_HOST:-db.local}', password: '${DB_PASSWORD}', port: '${DB_PORT}' } } },
      { env: { DB_PASSWORD: 's3cret', DB_PORT: '6543' } },
    );
    expect(config.connections.a).toMatchObject({ host: 'db.local', password: 's3cret', port: 6543 });
    expect(problems({ connections: { a: { type: 'postgres', host: 'h', password: '${NOPE}' } } })).toEqual([
      'connections.a.password: environment variable NOPE is not set (referenced as ${NOPE})',
    ]);
  });

  it('decodes escaped credentials in a dsn and passes unknown parameters on', () => {
    const config = parseDbManagerConfig({
      connections: { a: { type: 'postgres', dsn: 'postgresql://us%40er:p%3Aw%2Fd%25@db:6432/app?sslmode=require&application_name=reports' } },
    });
    expect(config.connections.a).toMatchObject({ user: 'us@er', password: 'p:w/d%', host: 'db', port: 6432, database: 'app', sslmode: 'require', applicationName: 'reports' });
  });

  it('reports every problem at once, each with its path, with "did you mean"', () => {
    const found = problems({
      retry_attempts: 0,
      retry_delay: 'soon',
      health_check_intervall: '5s',
      default_connection: 'primry',
      connections: {
        primary: { type: 'postgres', host: 'h', port: 99999, max_open_conns: -1, sslmode: 'sometimes', filepath: '/x.db', enable_metrics: 'yes' },
        'bad name': { type: 'sqlite', filepath: ':memory:' },
        nodb: { type: 'oracle' },
        lite: { type: 'sqlite' },
        both: { type: 'sqlite', filepath: 'a.db', maxOpenConns: 1, max_open_conns: 2 },
        named: { type: 'sqlite', filepath: 'a.db', name: 'other' },
      },
    });
    expect(found).toEqual(
      expect.arrayContaining([
        'retry_attempts: must be an integer from 1 to 1000, got 0',
        expect.stringMatching(/^retry_delay: must be a duration/),
        'health_check_intervall: is not a known setting (did you mean "health_check_interval"?)',
        'default_connection: names "primry", which is not a configured connection (did you mean "primary"?)',
        'connections.primary.port: must be an integer from 1 to 65535, got 99999',
        'connections.primary.max_open_conns: must be an integer from 1 to 10000, got -1',
        expect.stringMatching(/^connections\.primary\.sslmode: must be one of disable, .*got "sometimes"/),
        'connections.primary.filepath: does not apply to a postgres connection (only to sqlite)',
        'connections.primary.enable_metrics: must be true or false, got "yes"',
        expect.stringMatching(/^connections\.bad name: connection name "bad name" must be 1-63 characters/),
        expect.stringMatching(/^connections\.nodb\.type: must be one of postgres, sqlite, mssql, mongodb, mysql, mariadb, got "oracle"/),
        'connections.lite.filepath: is required for sqlite (a file path, or ":memory:"), or give a dsn',
        'connections.both.max_open_conns: is given twice, as "maxOpenConns" and "max_open_conns": keep one spelling',
        'connections.named.name: is "other" but must equal the connection\'s key "named" (or be left out)',
      ]),
    );
  });

  it('never repeats a password or dsn in an error', () => {
    const found = problems({ connections: { a: { type: 'postgres', dsn: 'mysql://u:hunter2@h/db' }, b: { type: 'postgres', host: 'h', password: 12345 } } });
    expect(found.join('\n')).not.toContain('hunter2');
    expect(found.join('\n')).not.toContain('12345');
    expect(found).toContain('connections.b.password: must be a string, got a value (not shown)');
  });

  it('refuses MikroORM options the library derives itself', () => {
    expect(problems({ connections: { a: { type: 'sqlite', filepath: 'x.db', mikro_orm: { pool: { max: 99 }, dbName: 'y' } } } })).toEqual([
      'connections.a.mikro_orm.dbName: is set by the library from the connection fields; use those fields instead',
      'connections.a.mikro_orm.pool: is set by the library from the connection fields; use those fields instead',
    ]);
  });

  it('rejects a retry delay longer than its cap, and a non-object config', () => {
    expect(problems({ retry_delay: '5s', retry_max_delay: '1s', connections: {} })).toEqual(['retry_delay: (5000 ms) is longer than retry_max_delay (1000 ms)']);
    expect(problems('nope')).toEqual(['dbmanager: must be an object with a "connections" map, got "nope"']);
  });

  it('says what to do in the error message', () => {
    const error = (() => {
      try {
        parseDbManagerConfig({ connections: { a: { type: 'sqlite' } } });
      } catch (thrown) {
        return thrown as Error;
      }
      return undefined;
    })();
    // Outside the catch: a config that parsed would fail here, not pass silently.
    expect(error, 'parseDbManagerConfig should have thrown').toBeInstanceOf(Error);
    expect(error!.name).toBe('DbManagerConfigError');
    expect(error!.message).toMatch(/^Invalid dbmanager configuration \(1 problem\):\n {2}connections\.a\.filepath: .*\nFix these fields/);
  });
});

describe('floors: no setting makes a hot loop or an unbounded wait', () => {
  const conn = { type: 'sqlite', filepath: ':memory:' };

  it('retry_delay and retry_max_delay: at least 10ms, never 0', () => {
    for (const bad of [0, '0', '0s', 9, '9ms', 0.4]) {
      expect(problems({ retry_delay: bad, connections: { a: conn } })).toEqual([
        expect.stringMatching(/^retry_delay: must be at least 10ms \(a shorter backoff makes reconnect attempts a hot loop\), got /),
      ]);
    }
    expect(problems({ retry_delay: '10ms', retry_max_delay: '5ms', connections: { a: conn } })).toEqual([
      expect.stringMatching(/^retry_max_delay: must be at least 10ms/),
    ]);
    const config = parseDbManagerConfig({ retry_delay: '10ms', retry_max_delay: 10, connections: { a: conn } });
    expect(config).toMatchObject({ retryDelay: 10, retryMaxDelay: 10 });
  });

  it('health_check_interval: 0 (no loop) or at least 100ms', () => {
    for (const bad of [1, '99ms', 0.5]) {
      expect(problems({ health_check_interval: bad, connections: { a: conn } })).toEqual([
        expect.stringMatching(/^health_check_interval: must be 0 \(off\) or at least 100ms \(a shorter period makes the health loop ping without pause\), got /),
      ]);
    }
    expect(parseDbManagerConfig({ health_check_interval: 0, connections: { a: conn } }).healthCheckInterval).toBe(0);
    expect(parseDbManagerConfig({ health_check_interval: '100ms', connections: { a: conn } }).healthCheckInterval).toBe(100);
  });

  it.each(['connect_timeout', 'query_timeout', 'acquire_timeout', 'health_check_timeout', 'conn_max_lifetime', 'conn_max_idle_time'])(
    '%s: 0 (off) or at least 1ms — a fraction no longer rounds to 0 = no timeout',
    (field) => {
      for (const [where, input] of [
        ['manager', { [field]: 0.4, connections: { a: conn } }],
        ['connection', { connections: { a: { ...conn, [field]: '0.4ms' } } }],
      ] as const) {
        const path = where === 'manager' ? field : `connections.a.${field}`;
        expect(problems(input)).toEqual([`${path}: must be 0 (off) or at least 1ms (a fraction of a millisecond would round to 0, which means none), got ${where === 'manager' ? '0.4' : '"0.4ms"'}`]);
      }
      const ok = parseDbManagerConfig({ [field]: 0, connections: { a: { ...conn, [field]: 1.4 } } });
      expect(ok.poolDefaults).toMatchObject({ [field.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())]: 0 });
      expect(ok.connections.a).toMatchObject({ [field.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())]: 1 });
    },
  );

  it('shutdown_timeout: 0 (no bound) or at least 1ms', () => {
    expect(problems({ shutdown_timeout: '0.5ms', connections: { a: conn } })).toEqual([expect.stringMatching(/^shutdown_timeout: must be 0 \(off\) or at least 1ms/)]);
    expect(parseDbManagerConfig({ shutdown_timeout: 0, connections: { a: conn } }).shutdownTimeout).toBe(0);
  });
});

describe('pooler', () => {
  it('takes none or pgbouncer on a PostgreSQL connection, and applies to PostgreSQL only', () => {
    const config = parseDbManagerConfig({ connections: { a: { type: 'postgres', host: 'h', pooler: 'pgbouncer' }, b: { type: 'postgres', host: 'h' } } });
    expect(config.connections.a.pooler).toBe('pgbouncer');
    expect(config.connections.b.pooler).toBeUndefined();
    const error = (() => {
      try {
        parseDbManagerConfig({ connections: { a: { type: 'postgres', host: 'h', pooler: 'pgpool' }, l: { type: 'sqlite', filepath: ':memory:', pooler: 'pgbouncer' } } } as never);
      } catch (e) {
        return e as DbManagerConfigError;
      }
      throw new Error('expected a config error');
    })();
    expect(error.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(/^connections\.a\.pooler: must be one of none, pgbouncer, got "pgpool"/),
      'connections.l.pooler: does not apply to a sqlite connection (only to postgres)',
    ]);
  });
});
