import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConnectionFailedError, type DbManagerConfigInput } from '../../lib';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { type HealthApp, startHealthApp } from '../support/health-app';
import { builderQuery } from '../support/mikro-orm-leg';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

// Scenario 3: a network path that swallows every byte. Only the connection behind it may suffer: its checks end at
// its own timeout, nothing piles up in its pool or on the wire, and nothing of it survives close().
const MAX = 3;
const PING_TIMEOUT_MS = 500;
const CONNECT_TIMEOUT_MS = 1_500;
const SHUTDOWN_TIMEOUT_MS = 1_000;
const MARGIN_MS = 600;

function config(pg: TestPostgres, proxy: TcpProxy, holeCritical: boolean): DbManagerConfigInput {
  return {
    health_check_interval: '1s',
    retry_attempts: 2,
    retry_delay: '100ms',
    retry_max_delay: '200ms',
    shutdown_timeout: SHUTDOWN_TIMEOUT_MS,
    connections: {
      primary: { type: 'postgres', dsn: pg.url },
      hole: {
        type: 'postgres',
        dsn: `postgres://${pg.user}:${pg.password}@${proxy.host}:${proxy.port}/${pg.database}`,
        critical: holeCritical,
        max_open_conns: MAX,
        connect_timeout: CONNECT_TIMEOUT_MS,
        health_check_timeout: PING_TIMEOUT_MS,
      },
    },
  };
}

/** Samples the proxy's sockets and the pool's waiting acquires every few ms until stopped; returns the maxima. */
function sampler(proxy: TcpProxy, pending: () => number) {
  const max = { openSockets: 0, upstreamSockets: 0, pending: 0 };
  const timer = setInterval(() => {
    max.openSockets = Math.max(max.openSockets, proxy.openSockets);
    max.upstreamSockets = Math.max(max.upstreamSockets, proxy.upstreamSockets);
    max.pending = Math.max(max.pending, pending());
  }, 2);
  return { max, stop: () => clearInterval(timer) };
}

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await pg?.close();
});

describe('fault: black-holed connection at runtime', () => {
  let proxy: TcpProxy;
  let h: HealthApp;
  const hung: Promise<unknown>[] = [];

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: pg.host, port: pg.port });
    h = await startHealthApp(config(pg, proxy, false));
  });

  afterAll(async () => {
    await h?.close();
    await proxy?.close();
  });

  it('reports it down within its timeout while the other connection answers fast', async () => {
    const hole = h.manager.get('hole');
    await Promise.all(Array.from({ length: MAX }, () => builderQuery(hole, 'select pg_sleep(0.05)')));
    expect(hole.gauges()).toMatchObject({ idle: MAX, inUse: 0 });
    expect((await h.get('/health')).status).toBe(200);
    // Long queries on all but one pooled connection: once the path is black-holed their answers never come.
    for (let i = 0; i < MAX - 1; i++) hung.push(builderQuery(hole, 'select pg_sleep(30)').then(() => 'finished', (error: unknown) => error));
    await vi.waitFor(() => expect(hole.gauges().inUse, 'long queries running').toBe(MAX - 1), { timeout: 1_000 });

    proxy.blackhole();
    const answer = await h.get('/health');
    expect(answer.status).toBe(200); // critical: false → degraded, not down
    expect(answer.body.status).toBe('degraded');
    expect(answer.body.details.hole).toMatchObject({ status: 'degraded', critical: false });
    expect(answer.body.details.hole.message).toMatch(/timed out after 500 ms/);
    expect(answer.body.details.primary.status).toBe('up');
    expect(answer.body.details.primary.responseTimeMs).toBeLessThan(100);
    expect(answer.ms).toBeLessThan(PING_TIMEOUT_MS + MARGIN_MS);

    const started = performance.now();
    const primaryOnly = h.get('/health/primary');
    const holeOnly = await h.get('/health/hole');
    const primaryAnswer = await primaryOnly;
    console.log(
      `[fault:black-hole] /health with one black-holed connection: ${answer.ms} ms (hole ${answer.body.details.hole.responseTimeMs} ms, ` +
        `primary ${answer.body.details.primary.responseTimeMs} ms); /health/primary meanwhile ${primaryAnswer.ms} ms, /health/hole ${holeOnly.ms} ms`,
    );
    expect(primaryAnswer.status).toBe(200);
    expect(primaryAnswer.ms).toBeLessThan(200);
    expect(holeOnly.body.details.hole.status).toBe('degraded');
    expect(performance.now() - started).toBeLessThan(PING_TIMEOUT_MS + MARGIN_MS);
    expect(h.manager.stats().connections.hole).toMatchObject({ status: 'down' });
  });

  it('a caller who joins a running ping with a shorter timeout still answers within its own timeout', async () => {
    const hole = h.manager.get('hole');
    const long = hole.healthCheck({ timeout: 3_000 }); // as a loop started with a longer bound would
    const started = performance.now();
    const short = await hole.healthCheck({ timeout: 300 });
    const ms = performance.now() - started;
    expect(short).toMatchObject({ status: 'down', error: 'ping timed out after 300 ms' });
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(300 + MARGIN_MS);
    expect((await long).status).toBe('down');
  });

  it('shares one ping per connection among 50 concurrent /health calls and leaves nothing queued', async () => {
    const hole = h.manager.get('hole');
    // Pool: MAX - 1 connections hung in queries; the ping's own connection was torn down. The next ping must open one
    // (pending create), the ones after it find the pool saturated and may open one of their own, one at a time.
    expect(hole.gauges()).toMatchObject({ inUse: MAX - 1, idle: 0 });
    let pings = 0;
    const off = hole.on('healthCheck', () => pings++);
    const sample = sampler(proxy, () => hole.gauges().pending);
    const waves: { ms: number; slowestMs: number; statuses: number[] }[] = [];
    try {
      for (let wave = 0; wave < 3; wave++) {
        const started = performance.now();
        const answers = await Promise.all(Array.from({ length: 50 }, () => h.get('/health')));
        const slowestMs = Math.max(...answers.map((a) => a.ms));
        waves.push({ ms: Math.round(performance.now() - started), slowestMs, statuses: [...new Set(answers.map((a) => a.status))] });
        for (const a of answers) expect(a.body.details.primary.status).toBe('up');
      }
    } finally {
      sample.stop();
      off();
    }
    console.log(
      `[fault:black-hole] 3 waves of 50 concurrent /health: ${waves.map((w) => `${w.ms} ms (slowest answer ${w.slowestMs} ms)`).join(', ')}; ` +
        `hole pings: ${pings}; ` +
        `max sockets to the black hole ${sample.max.openSockets} (pool max ${MAX}), max upstream ${sample.max.upstreamSockets}, ` +
        `max waiting acquires ${sample.max.pending}`,
    );
    for (const wave of waves) {
      expect(wave.statuses).toEqual([200]);
      expect(wave.slowestMs).toBeLessThan(PING_TIMEOUT_MS + MARGIN_MS); // a request that arrives as a ping ends starts the next
    }
    // Every answer was bounded by the ping timeout; a ping that finds the previous one's connection still waiting
    // answers at once (no I/O), so later waves are fast. What must not grow is what the pings leave behind:
    expect(sample.max.openSockets).toBeLessThanOrEqual(MAX + 1);
    expect(sample.max.upstreamSockets).toBeLessThanOrEqual(MAX + 1);
    expect(sample.max.pending).toBeLessThanOrEqual(1); // the live ping's acquire, never a queue of timed-out ones
    expect(hole.gauges().pending).toBe(0);
  });

  it('closes within shutdown_timeout and leaves no socket to the black hole', async () => {
    expect(proxy.openSockets).toBeGreaterThan(0);
    const started = performance.now();
    await h.close();
    const closeMs = Math.round(performance.now() - started);
    await vi.waitFor(() => expect(proxy.openSockets, 'sockets to the black hole').toBe(0), { timeout: 1_000 });
    const settled = await Promise.all(hung);
    console.log(`[fault:black-hole] app.close() with ${hung.length} queries hung on the black hole: ${closeMs} ms; sockets left: ${proxy.openSockets}`);
    expect(closeMs).toBeGreaterThanOrEqual(SHUTDOWN_TIMEOUT_MS - 50); // it gave the hung queries their chance
    expect(closeMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + MARGIN_MS); // connects under way are torn down too, not waited for
    expect(settled).toHaveLength(MAX - 1);
    for (const outcome of settled) expect(outcome).toBeInstanceOf(Error);
    // It names the callers' connections that were really busy, and how long shutdown really waited for them.
    const warning = h.logs.matching('DbManager:hole', /still busy after \d+ ms \(shutdown_timeout\)/);
    expect(warning).toHaveLength(1);
    const [, busy, waitedMs] = /^(\d+) connection\(s\) still busy after (\d+) ms/.exec(warning[0]!.message)!;
    expect(Number(busy)).toBe(MAX - 1);
    expect(Number(waitedMs)).toBeGreaterThanOrEqual(SHUTDOWN_TIMEOUT_MS - 50);
  });
});

describe('fault: black-holed connection at startup', () => {
  let proxy: TcpProxy;
  let h: HealthApp | undefined;

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: pg.host, port: pg.port });
    proxy.blackhole();
  });

  afterEach(async () => {
    await h?.close();
    h = undefined;
    await vi.waitFor(() => expect(proxy.openSockets, 'sockets to the black hole').toBe(0), { timeout: 1_000 });
  });

  afterAll(async () => {
    await proxy?.close();
  });

  it('delays startup by at most one connect_timeout when the connection is not critical', async () => {
    const started = performance.now();
    h = await startHealthApp(config(pg, proxy, false));
    const startupMs = Math.round(performance.now() - started);
    console.log(`[fault:black-hole] startup with a black-holed critical: false connection: ${startupMs} ms (connect_timeout ${CONNECT_TIMEOUT_MS} ms)`);
    expect(startupMs).toBeLessThan(CONNECT_TIMEOUT_MS + MARGIN_MS);
    expect(h.manager.stats().connections.hole).toMatchObject({ status: 'down' });
    expect(h.manager.stats().connections.primary).toMatchObject({ status: 'up' });
    const answer = await h.get('/health');
    expect(answer.status).toBe(200);
    expect(answer.body.details.hole.status).toBe('degraded');
  });

  it('fails startup after its retries, naming the connection, when it is critical', async () => {
    const started = performance.now();
    const error = await startHealthApp(config(pg, proxy, true)).then(
      (app) => {
        h = app;
        throw new Error('startup should have failed');
      },
      (e: unknown) => e,
    );
    const failedMs = Math.round(performance.now() - started);
    console.log(`[fault:black-hole] startup with a black-holed critical connection failed after ${failedMs} ms: ${(error as Error).message}`);
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect((error as ConnectionFailedError).connectionName).toBe('hole');
    expect((error as ConnectionFailedError).attempts).toBe(2);
    expect((error as Error).message).toMatch(/"hole"/);
    expect((error as Error).message).not.toContain(pg.password);
    expect(failedMs).toBeLessThan(2 * CONNECT_TIMEOUT_MS + 200 + MARGIN_MS);
  });
});
