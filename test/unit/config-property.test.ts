import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DbManagerConfigError, parseDbManagerConfig } from '../../lib';
import { CONNECTION_NAME } from '../../lib/config/config-schema';

const KEYS = [
  'type', 'dsn', 'host', 'port', 'user', 'password', 'database', 'sslmode', 'schema', 'filepath', 'auth_source', 'replica_set',
  'read_preference', 'max_open_conns', 'maxOpenConns', 'max_idle_conns', 'conn_max_lifetime', 'conn_max_idle_time', 'connect_timeout',
  'query_timeout', 'acquire_timeout', 'health_check_timeout', 'enable_tracing', 'enable_metrics', 'enable_logging', 'default_orm', 'tags',
  'critical', 'application_name', 'mikro_orm', 'name', 'nme', 'hots', 'Type', '', ' ', 'constructor', '__proto__', 'toString',
];
const MANAGER_KEYS = [
  'default_connection', 'max_open_conns', 'retry_attempts', 'retry_delay', 'retry_max_delay', 'health_check_interval', 'enable_auto_reconnect',
  'shutdown_timeout', 'conn_max_lifetime', 'retryAttempts', 'retry_attempts_', 'connections', 'dbmanager',
];

/** Any JSON-ish value, biased towards the shapes config fields take. */
const value = fc.oneof(
  fc.constantFrom('postgres', 'sqlite', 'mssql', 'mongodb', 'mysql', 'mariadb', 'oracle', ':memory:', '30s', '1h30m', '5 minutes', '-1s', '1e9h', 'disable', 'bun', 'gorm', 'knex', 'true', 'false', '${HOME}', '${NOPE}', '${X:-y}', 'postgres://u:p@h:1/d', 'postgres://[::1', 'mysql://', 'file:a.db', ''),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 1, 65_535, 65_536, 2 ** 31, Number.MAX_SAFE_INTEGER, Infinity, NaN),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.object()), { maxKeys: 3 }),
);

const connection = fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 8 });
const name = fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom('primary', 'cache-db', 'a.b_c', 'with space', 'ünïcode', '-lead', 'x'.repeat(64), '<default>'));
const config = fc.record(
  {
    connections: fc.oneof(fc.dictionary(name, fc.oneof(connection, value), { maxKeys: 4 }), value),
    extra: fc.dictionary(fc.constantFrom(...MANAGER_KEYS), value, { maxKeys: 4 }),
  },
  { requiredKeys: [] },
).map(({ connections, extra }) => ({ ...extra, ...(connections === undefined ? {} : { connections }) }));

describe('parseDbManagerConfig under generated input', () => {
  it('either parses or fails with DbManagerConfigError naming paths — never a TypeError, never a hang', () => {
    let parsed = 0;
    let rejected = 0;
    fc.assert(
      fc.property(fc.oneof(config, value, config.map((c) => ({ dbmanager: c }))), (input) => {
        const started = performance.now();
        try {
          const result = parseDbManagerConfig(input, { env: { HOME: '/root' }, warn: () => undefined });
          parsed++;
          for (const [key, c] of Object.entries(result.connections)) {
            expect(CONNECTION_NAME.test(key)).toBe(true);
            expect(c.name).toBe(key);
            expect(Number.isInteger(c.maxOpenConns) && c.maxOpenConns >= 1).toBe(true);
            expect(c.maxIdleConns).toBeLessThanOrEqual(c.maxOpenConns);
          }
        } catch (error) {
          rejected++;
          expect(error).toBeInstanceOf(DbManagerConfigError);
          const issues = (error as DbManagerConfigError).issues;
          expect(issues.length).toBeGreaterThan(0);
          for (const issue of issues) {
            expect(typeof issue.path).toBe('string');
            expect(issue.message.length).toBeGreaterThan(0);
          }
        }
        expect(performance.now() - started).toBeLessThan(200);
      }),
      { numRuns: 5_000 },
    );
    console.log(`[property] 5000 generated configs: ${parsed} parsed, ${rejected} rejected with DbManagerConfigError`);
    expect(rejected).toBeGreaterThan(0);
  });

  it('connection names that cannot be a safe token or metric label are refused with a clear message', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 80 }).filter((n) => !CONNECTION_NAME.test(n)),
        (bad) => {
          expect(() => parseDbManagerConfig({ connections: { [bad]: { type: 'sqlite', filepath: ':memory:' } } })).toThrow(
            /must be 1-63 characters of letters, digits, "_", "." or "-", starting with a letter or digit/,
          );
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('never echoes a password or a DSN in an error', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 6, maxLength: 20 }).filter((s) => /^[\w!@#%^&*]+$/.test(s) && !/^\d+$/.test(s)), fc.constantFrom('port', 'sslmode', 'type', 'zz'), (secret, broken) => {
        const input = {
          connections: {
            a: { type: 'postgres', dsn: `postgres://u:${encodeURIComponent(secret)}@h:5432/db`, [broken]: 'nonsense-value' },
            b: { type: 'mysql', host: 'h', password: secret, port: 'x' },
            c: { type: 'postgres', dsn: `mysql://u:${encodeURIComponent(secret)}@h/db` },
          },
        };
        try {
          parseDbManagerConfig(input, { warn: () => undefined });
        } catch (error) {
          expect((error as Error).message).not.toContain(secret);
          expect((error as Error).message).not.toContain(encodeURIComponent(secret));
          return;
        }
        throw new Error('expected a rejection');
      }),
      { numRuns: 500 },
    );
  });
});
