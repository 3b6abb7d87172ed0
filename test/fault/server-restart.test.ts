import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DbManager } from '../../lib';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { type HealthApp, startHealthApp } from '../support/health-app';
import { type SqlRunner, sqlRunner } from '../support/mikro-orm-leg';

// Scenario 1: the server stops and comes back. /health must say why at once, and recover on its very next poll.
const HEALTH_TIMEOUT_MS = 1_000;
const INTERVAL_MS = 1_000;
const MARGIN_MS = 700;

interface QueryRecord {
  startedAt: number;
  endedAt: number;
  ok: boolean;
  error?: string;
}

/** Runs `select 1` back to back (a few in parallel) until stopped, recording each outcome. */
function queryLoop(builder: SqlRunner, parallel = 3): { records: QueryRecord[]; stop(): Promise<void> } {
  const records: QueryRecord[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      const startedAt = performance.now();
      try {
        await builder.query('select 1');
        records.push({ startedAt, endedAt: performance.now(), ok: true });
      } catch (error) {
        records.push({ startedAt, endedAt: performance.now(), ok: false, error: String(error) });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  };
  const workers = Array.from({ length: parallel }, worker);
  return {
    records,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

describe('fault: PostgreSQL stopped and restarted', () => {
  let pg: TestPostgres;
  let h: HealthApp;

  beforeAll(async () => {
    pg = await startTestPostgres();
    h = await startHealthApp({
      health_check_interval: INTERVAL_MS,
      health_check_timeout: HEALTH_TIMEOUT_MS,
      retry_attempts: 1,
      retry_delay: '100ms',
      retry_max_delay: '5s',
      connections: { primary: { type: 'postgres', dsn: pg.url, max_open_conns: 4, connect_timeout: '2s' } },
    });
  });

  afterAll(async () => {
    await h?.close();
    await pg?.close();
  });

  it('answers 503 naming the cause while down, 200 on the first poll after the restart, and loses no query', async () => {
    const connection = h.manager.get('primary');
    const builder = sqlRunner(connection);
    expect((await h.get('/health')).status).toBe(200);
    await Promise.all(Array.from({ length: 4 }, () => builder.query('select pg_sleep(0.05)'))); // fill the pool

    const loop = queryLoop(builder);
    await pg.stop();
    const stoppedAt = performance.now();

    const down = await h.get('/health');
    expect(down.status).toBe(503);
    expect(down.body.details.primary).toMatchObject({ status: 'down', type: 'postgres', critical: true });
    expect(down.body.details.primary.message).toMatch(/ECONNREFUSED/);
    expect(down.body.details.primary.message).not.toContain(pg.password);
    expect(down.ms).toBeLessThan(HEALTH_TIMEOUT_MS + MARGIN_MS);
    const stats = h.manager.stats().connections.primary;
    expect(stats.status).toBe('down');
    expect(stats.lastError).toMatch(/ECONNREFUSED/);
    expect(stats.lastHealthCheck).not.toBeNull();
    expect(Date.parse(stats.lastHealthCheck!)).toBeGreaterThan(Date.now() - 5_000);

    // A while down: the loop's queries wait for a connection the server cannot give yet.
    await vi.waitFor(() => expect(connection.stats().pending, 'queries waiting through the outage').toBeGreaterThan(0), { timeout: 2_000 });
    await pg.start();
    const readyAt = performance.now();

    const up = await h.get('/health');
    const firstHealthyMs = Math.round(performance.now() - readyAt);
    expect(up.status).toBe(200);
    expect(up.body.details.primary.status).toBe('up');
    expect(h.manager.stats().connections.primary.status).toBe('up');

    // Queries keep running after the restart.
    await vi.waitFor(() => expect(loop.records.filter((r) => r.startedAt >= readyAt && r.ok).length, 'queries after the restart').toBeGreaterThan(10), {
      timeout: 5_000,
    });
    await loop.stop();
    const afterReady = loop.records.filter((r) => r.startedAt >= readyAt);
    const failedAfterReady = afterReady.filter((r) => !r.ok);
    const firstSuccess = loop.records.filter((r) => r.ok && r.endedAt >= readyAt).sort((a, b) => a.endedAt - b.endedAt)[0];
    const failedWhileDown = loop.records.filter((r) => !r.ok && r.startedAt >= stoppedAt && r.startedAt < readyAt);
    // A refused connect is transient: a query that needs a new connection while the server is down waits (up to
    // acquire_timeout) for the pool to reconnect, and succeeds after the restart.
    const waitedThroughOutage = loop.records.filter((r) => r.ok && r.startedAt < readyAt && r.endedAt >= readyAt);
    console.log(
      `[fault:restart] /health while down: ${down.status} in ${down.ms} ms (${down.body.details.primary.message}); ` +
        `server ready → first /health 200: ${firstHealthyMs} ms; server ready → first successful query: ` +
        `${firstSuccess ? Math.round(firstSuccess.endedAt - readyAt) : 'none'} ms; queries after ready: ${afterReady.length}, failed: ${failedAfterReady.length}; ` +
        `failed while down: ${failedWhileDown.length}; asked for before the restart and answered after it: ${waitedThroughOutage.length}`,
    );
    expect(failedAfterReady).toEqual([]);
    expect(afterReady.length).toBeGreaterThan(10);
    // Nothing asked for while the server was down failed: it waited for the restart.
    expect(failedWhileDown).toEqual([]);
    expect(waitedThroughOutage.length).toBeGreaterThan(0);
    expect(firstSuccess).toBeDefined();
  });

  it('catches up in stats() within one health_check_interval without anyone asking /health', async () => {
    // A reconnect backoff far longer than the interval: only the loop's regular pass can notice the server is back.
    const manager = await DbManager.create({
      health_check_interval: INTERVAL_MS,
      health_check_timeout: HEALTH_TIMEOUT_MS,
      retry_delay: '1m',
      retry_max_delay: '1m',
      connections: { slow: { type: 'postgres', dsn: pg.url, max_open_conns: 2, connect_timeout: '2s' } },
    });
    try {
      const connection = manager.get('slow');
      const attempts: string[] = [];
      connection.on('reconnect', (result) => attempts.push(result));
      await pg.stop();
      const stoppedAt = performance.now();
      await vi.waitFor(() => expect(connection.stats().status).toBe('down'), { timeout: INTERVAL_MS + MARGIN_MS, interval: 10 });
      const downMs = Math.round(performance.now() - stoppedAt);

      // At least one pass of the loop while down: a reconnect attempt that failed.
      await vi.waitFor(() => expect(attempts, 'reconnect attempts while down').toContain('failure'), { timeout: 3 * INTERVAL_MS });
      await pg.start();
      const readyAt = performance.now();
      await vi.waitFor(() => expect(connection.stats().status).toBe('up'), { timeout: INTERVAL_MS + MARGIN_MS, interval: 10 });
      const upMs = Math.round(performance.now() - readyAt);
      console.log(`[fault:restart] stats() without /health: down ${downMs} ms after the stop, up ${upMs} ms after the server was ready`);
      const stats = connection.stats();
      expect(stats.lastError).toBeNull();
      expect(stats.reconnects).toBe(1);
      expect(attempts.at(-1)).toBe('success');
      expect(attempts.filter((a) => a === 'failure').length).toBeGreaterThanOrEqual(1);
    } finally {
      await manager.close();
    }
  });

  it('logs each status transition once, not on every tick', async () => {
    await vi.waitFor(() => expect(h.manager.get('primary').status).toBe('up'), { timeout: INTERVAL_MS + MARGIN_MS });
    const count = (context: string, pattern: RegExp) => h.logs.matching(context, pattern).length;
    // Two outages, each seen by the app's "primary" through many failed checks and loop passes: one line per change.
    expect(count('DbManager:primary', /is down/)).toBe(2);
    expect(count('DbManager:primary', /is up again/)).toBe(2);
    expect(count('DbManager:slow', /is down/)).toBe(1);
    expect(count('DbManager:slow', /is up again/)).toBe(1);
    for (const line of h.logs.lines) expect(line.message).not.toContain(pg.password);
    expect(h.manager.get('primary').stats().reconnects).toBe(2);
  });
});
