import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConnectionHealth, DbManager } from '../../lib';
import type { CloseReason } from '../../lib/vocabulary';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { waitFor } from '../support/health-app';

// Scenario 2: the server kills every backend (pg_terminate_backend). Knex must drop the dead connections by itself
// and the pool's error event must make the library check health at once, not at the next interval.
const POOL_MAX = 4;

/** The pooled raw connections (tarn internals, read only to verify knex marked them). */
function pooledConnections(knex: Knex): { __knex__disposed?: unknown }[] {
  const pool = (knex.client as { pool?: { free: { resource: { __knex__disposed?: unknown } }[] } }).pool;
  return (pool?.free ?? []).map((f) => f.resource);
}

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
    const knex = connection.knex<Knex>();
    await Promise.all(Array.from({ length: POOL_MAX }, () => knex.raw('select pg_sleep(0.05)')));
    expect(await pg.countConnections('primary')).toBe(POOL_MAX);
    expect(connection.gauges().idle).toBe(POOL_MAX);

    const checks: { at: number; result: ConnectionHealth }[] = [];
    const errors: number[] = [];
    const closed: CloseReason[] = [];
    connection.on('healthCheck', (result) => checks.push({ at: performance.now(), result }));
    connection.on('connectionError', () => errors.push(performance.now()));
    connection.on('closed', (reason) => closed.push(reason));

    const victims = pooledConnections(knex);
    expect(victims).toHaveLength(POOL_MAX);
    const terminatedAt = performance.now();
    expect(await pg.terminateBackends('primary')).toBe(POOL_MAX);

    // knex's own error listener marks each dead connection disposed; ours forwards the error to the health loop.
    await waitFor(() => errors.length >= POOL_MAX, 2_000, 'an error event per terminated connection');
    const firstErrorMs = Math.round(errors[0]! - terminatedAt);
    const lastErrorMs = Math.round(errors[POOL_MAX - 1]! - terminatedAt);
    for (const victim of victims) expect(String(victim.__knex__disposed)).toMatch(/terminating connection due to administrator command|Connection ended unexpectedly/);

    const firstCheck = await waitFor(() => checks[0], 1_000, 'a health check triggered by the pool error');
    expect(firstCheck.result.status).toBe('up'); // the server is fine: only its backends died
    expect(connection.status).toBe('up');

    const startedAt = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => knex.raw('select 1 as one')));
    const queriesMs = Math.round(performance.now() - startedAt);
    const failed = results.filter((r) => r.status === 'rejected');
    console.log(
      `[fault:terminate] ${POOL_MAX} backends terminated: error events ${firstErrorMs}–${lastErrorMs} ms after the call, ` +
        `health check ${Math.round(firstCheck.at - errors[0]!)} ms after the first error (${firstCheck.result.status}, ${firstCheck.result.responseTimeMs} ms); ` +
        `next 20 queries: ${results.length - failed.length} ok, ${failed.length} failed, in ${queriesMs} ms`,
    );
    expect(failed).toEqual([]);
    expect(firstCheck.at - errors[0]!).toBeLessThan(200);
    expect(closed.filter((r) => r === 'broken')).toHaveLength(POOL_MAX);
    const now = pooledConnections(knex);
    expect(now.every((c) => !c.__knex__disposed && !victims.includes(c))).toBe(true);
    expect(connection.stats()).toMatchObject({ status: 'up', lastError: null, reconnects: 0 });
  });
});
