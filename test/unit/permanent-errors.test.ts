import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseDbManagerConfig, PoolerRefusedError } from '../../lib';
import { postgresDriver } from '../../lib/drivers/postgres';

// Which PostgreSQL connect errors a retry cannot fix. The real servers show 08P01 (PgBouncer, test/integration/
// pgbouncer.test.ts), 28P01, 3D000 and 53300 (test/integration/connection-limit.test.ts, postgres-pool.test.ts);
// 0A000 cannot be provoked at connect time here, so its classification is checked on pg's own error class.
function serverError(code: string, message: string): Error {
  return Object.assign(new pg.DatabaseError(message, message.length, 'error'), { code });
}

describe('PostgreSQL connect errors', () => {
  it.each([
    ['08P01', 'unsupported startup parameter: statement_timeout'],
    ['0A000', 'feature not supported'],
    ['28P01', 'password authentication failed for user "app"'],
    ['3D000', 'database "nope" does not exist'],
  ])('%s (%s) is permanent: one attempt', (code, message) => {
    expect(postgresDriver.isPermanentError(serverError(code, message))).toBe(true);
  });

  it.each([
    ['53300', 'sorry, too many clients already'],
    ['57P01', 'terminating connection due to administrator command'],
    ['57P03', 'the database system is starting up'],
  ])('%s (%s) can pass: retried', (code, message) => {
    expect(postgresDriver.isPermanentError(serverError(code, message))).toBe(false);
  });

  it('a refused or timed-out connect can pass: retried', () => {
    expect(postgresDriver.isPermanentError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))).toBe(false);
    expect(postgresDriver.isPermanentError(new Error('timeout expired'))).toBe(false);
  });
});

describe('behind PgBouncer', () => {
  const config = (fields: Record<string, unknown> = {}) => parseDbManagerConfig({ connections: { b: { type: 'postgres', host: 'h', ...fields } } }).connections.b;

  it('a setting the server side must provide (PoolerRefusedError) is permanent: one attempt', () => {
    expect(postgresDriver.isPermanentError(new PoolerRefusedError('b', 'pgbouncer', 'schema "s" is not first on the search_path', 'Set it on the server.'))).toBe(true);
  });

  it('a refused startup parameter names the setting that sends it and says to set pooler: pgbouncer', () => {
    const refused = (parameter: string) => serverError('08P01', `unsupported startup parameter: ${parameter}`);
    expect(postgresDriver.explainError?.(refused('statement_timeout'), config())).toBe(
      'a pooler (PgBouncer) refuses the startup parameter statement_timeout, which query_timeout sends: set pooler: pgbouncer on this connection',
    );
    expect(postgresDriver.explainError?.(refused('options'), config())).toMatch(/parameter options, which schema sends: set pooler: pgbouncer/);
    // With pooler set, ours send neither: the parameter is the user's own driver option.
    expect(postgresDriver.explainError?.(refused('search_path'), config({ pooler: 'pgbouncer' }))).toMatch(/search_path, which this connection's mikro_orm\.driverOptions adds: remove it there/);
    expect(postgresDriver.explainError?.(serverError('28P01', 'password authentication failed'), config())).toBeUndefined();
  });
});
