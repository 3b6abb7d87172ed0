import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ConnectionHealth, DbManager } from '../../lib';
import type { CloseReason } from '../../lib/vocabulary';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { builderQuery } from '../support/mikro-orm-leg';

// Scenario 2: the server kills every backend (pg_terminate_backend). The pool (knex's on MikroORM 6, pg-pool on 7)
// must drop the dead connections by itself and the pool's error event must make the library check health at once,
// not at the next interval.
const POOL_MAX = 4;

describe('fault: every backend terminated', () => {
  let pg: TestPostgres;
  let manager: DbManager;

  beforeAll(async () => {
    pg = await startTestPostgres();
    manager = await DbManager.create({
      health_check_interval: '1m', // far away: any check seen below was triggered by the pool's error event
      connections: { primary: { type: 'postgres', dsn: pg.url, max_open_conns: POOL_MAX, max_idle_conns: POOL_MAX } },
    });
  });

  afterAll(async () => {
    await manager?.close();
    await pg?.close();
  });

  it('drops the dead connections, checks health at once, and serves the next queries', async () => {
    const connection = manager.get('primary');
    await Promise.all(Array.from({ length: POOL_MAX }, () => builderQuery(connection, 'select pg_sleep(0.05)')));
    expect(await pg.countConnections('primary')).toBe(POOL_MAX);
    expect(connection.gauges().idle).toBe(POOL_MAX);

    const checks: { at: number; result: ConnectionHealth }[] = [];
    const errors: { at: number; message: string; error: unknown }[] = [];
    const closed: CloseReason[] = [];
    connection.on('healthCheck', (result) => checks.push({ at: performance.now(), result }));
    connection.on('connectionError', (error) => errors.push({ at: performance.now(), message: String((error as Error)?.message ?? error), error }));
    connection.on('closed', (reason) => closed.push(reason));

    // The pooled connections' server processes.
    const victims = await pg.backendPids('primary');
    expect(victims).toHaveLength(POOL_MAX);
    const terminatedAt = performance.now();
    expect(await pg.terminateBackends('primary')).toBe(POOL_MAX);

    // Each dead connection reports the server's reason; the pool drops it, and the error reaches the health loop.
    await vi.waitFor(() => expect(errors.length, 'error events, one per terminated connection').toBeGreaterThanOrEqual(POOL_MAX), { timeout: 2_000 });
    const firstErrorMs = Math.round(errors[0]!.at - terminatedAt);
    const lastErrorMs = Math.round(errors[POOL_MAX - 1]!.at - terminatedAt);
    for (const error of errors) expect(error.message).toMatch(/terminating connection due to administrator command|Connection ended unexpectedly|Connection terminated unexpectedly/);

    const firstCheck = await vi.waitFor(() => {
      expect(checks, 'a health check triggered by the pool error').not.toEqual([]);
      return checks[0]!;
    }, { timeout: 1_000 });
    expect(firstCheck.result.status).toBe('up'); // the server is fine: only its backends died
    expect(connection.status).toBe('up');

    const startedAt = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => builderQuery(connection, 'select 1 as one')));
    const queriesMs = Math.round(performance.now() - startedAt);
    const failed = results.filter((r) => r.status === 'rejected');
    console.log(
      `[fault:terminate] ${POOL_MAX} backends terminated: error events ${firstErrorMs}–${lastErrorMs} ms after the call, ` +
        `health check ${Math.round(firstCheck.at - errors[0]!.at)} ms after the first error (${firstCheck.result.status}, ${firstCheck.result.responseTimeMs} ms); ` +
        `next 20 queries: ${results.length - failed.length} ok, ${failed.length} failed, in ${queriesMs} ms`,
    );
    expect(failed).toEqual([]);
    expect(firstCheck.at - errors[0]!.at).toBeLessThan(200);
    expect(closed.filter((r) => r === 'broken')).toHaveLength(POOL_MAX);
    // No error is reported twice (pg itself may raise a second one as a dead socket ends).
    expect(new Set(errors.map((e) => e.error)).size).toBe(errors.length);
    // The queries ran on new server connections: none of the dead ones was lent again.
    const now = await pg.backendPids('primary');
    expect(now.length).toBeGreaterThan(0);
    expect(now.filter((pid) => victims.includes(pid))).toEqual([]);
    expect(connection.stats()).toMatchObject({ status: 'up', lastError: null, reconnects: 0 });
  });
});
