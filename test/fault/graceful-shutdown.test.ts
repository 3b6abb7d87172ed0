import { ConsoleLogger, Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { DbManager, type DbManagerConfigInput, type DurationInput } from '../../lib';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { LogCapture, startHealthApp } from '../support/health-app';
import { builderQuery, sqlRunner } from '../support/mikro-orm-leg';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

// Shutdown: in-flight queries get up to shutdown_timeout to finish before the pools close; what still runs after
// that is cancelled, so shutdown is bounded; close() is idempotent and safe while a reconnect is under way.
const MARGIN_MS = 400;

let pg: TestPostgres;
let proxy: TcpProxy;
beforeAll(async () => {
  pg = await startTestPostgres();
  proxy = await startTcpProxy({ host: pg.host, port: pg.port });
});
afterAll(async () => {
  await proxy?.close();
  await pg?.close();
});

/** One connection through the proxy, so the test can see every socket it opens. */
function config(shutdownTimeout: DurationInput, extra: Record<string, unknown> = {}, managerExtra: Record<string, unknown> = {}): DbManagerConfigInput {
  return {
    ...managerExtra,
    shutdown_timeout: shutdownTimeout,
    connections: {
      primary: { type: 'postgres', dsn: `postgres://${pg.user}:${pg.password}@${proxy.host}:${proxy.port}/${pg.database}`, max_open_conns: 4, ...extra },
    },
  };
}

describe('fault: graceful shutdown', () => {
  it('lets in-flight queries and transactions finish before the pool closes', async () => {
    const manager = await DbManager.create(config('5s'));
    const builder = sqlRunner(manager.get('primary'));
    const query = builder.query<{ answer: number }>('select pg_sleep(0.6), 42 as answer');
    const transaction = builder.transaction(async (trx) => {
      await trx.query('select pg_sleep(0.4)');
      return (await trx.query<{ seven: number }>('select 7 as seven'))[0].seven;
    });
    await vi.waitFor(() => expect(manager.get('primary').gauges().inUse, 'connections at work').toBe(2), { timeout: 1_000 });

    const started = performance.now();
    await manager.close();
    const closeMs = Math.round(performance.now() - started);
    console.log(`[fault:shutdown] close() with a 600 ms query and a 400 ms transaction in flight: ${closeMs} ms (shutdown_timeout 5 s)`);
    expect((await query)[0].answer).toBe(42);
    expect(await transaction).toBe(7);
    expect(closeMs).toBeGreaterThanOrEqual(450);
    expect(closeMs).toBeLessThan(600 + MARGIN_MS);
    await vi.waitFor(() => expect(proxy.openSockets, 'sockets open').toBe(0), { timeout: 1_000 });
  });

  it('cancels what still runs at shutdown_timeout, so shutdown is bounded', async () => {
    const manager = await DbManager.create(config(500));
    const stuck = builderQuery(manager.get('primary'), 'select pg_sleep(20)').then(() => 'finished', (error: unknown) => error as Error);
    await vi.waitFor(() => expect(manager.get('primary').gauges().inUse, 'connections at work').toBe(1), { timeout: 1_000 });

    const started = performance.now();
    await manager.close();
    const closeMs = Math.round(performance.now() - started);
    const outcome = await stuck;
    console.log(`[fault:shutdown] close() with a 20 s query in flight and shutdown_timeout 500 ms: ${closeMs} ms; the query: ${String(outcome)}`);
    expect(outcome).toBeInstanceOf(Error);
    expect(closeMs).toBeGreaterThanOrEqual(450);
    expect(closeMs).toBeLessThan(500 + MARGIN_MS);
    await vi.waitFor(() => expect(proxy.openSockets, 'sockets open').toBe(0), { timeout: 1_000 });
  });

  it('is idempotent, and safe while a reconnect is under way', async () => {
    // Backoff at its floor (10 ms): the reconnect loop spends nearly all its time inside an attempt (a 300 ms ping).
    const manager = await DbManager.create(config('2s', { health_check_timeout: '300ms' }, { retry_delay: '10ms', retry_max_delay: '10ms' }));
    const connection = manager.get('primary');
    const attempts: string[] = [];
    connection.on('reconnect', (result) => attempts.push(result));
    proxy.blackhole(); // a reconnect attempt now hangs until its health_check_timeout, or fails at once once pings pile up
    onTestFinished(() => proxy.forward());
    await connection.healthCheck();
    expect(connection.status).toBe('down');
    // The reconnect loop under way: a second attempt has ended, and the next one is due 10 ms later.
    await vi.waitFor(() => expect(attempts.length, 'reconnect attempts').toBeGreaterThanOrEqual(2), { timeout: 5_000 });

    const started = performance.now();
    const first = manager.close();
    const second = manager.close();
    const connectionClose = connection.close();
    expect(second).toBe(first);
    expect(connection.close()).toBe(connectionClose);
    await Promise.all([first, second, connectionClose]);
    const closeMs = Math.round(performance.now() - started);
    const attemptsAtClose = attempts.length;
    const acceptedAtClose = proxy.acceptedSockets;
    // Proving that nothing happens takes a window, not a condition: longer than a whole reconnect cycle (a 10 ms
    // backoff and a 300 ms attempt), in which a loop still running would have connected to the proxy again.
    await new Promise((resolve) => setTimeout(resolve, 500));
    console.log(`[fault:shutdown] close() twice during a reconnect: ${closeMs} ms; reconnect attempts after close: ${attempts.length - attemptsAtClose}`);
    expect(attempts.length).toBe(attemptsAtClose); // the loop stopped for good
    expect(proxy.acceptedSockets).toBe(acceptedAtClose);
    // The running attempt is cancelled, not waited for (its 300 ms ping, let alone its connect's connect_timeout).
    expect(closeMs).toBeLessThan(MARGIN_MS);
    expect(connection.status).toBe('closed');
    expect(manager.stats().totalConnections).toBe(0);
    await manager.close(); // a third call, after the first finished
    await vi.waitFor(() => expect(proxy.openSockets, 'sockets open').toBe(0), { timeout: 1_000 });
  });

  it('cancels a connect still under way at once, and does not call it a busy connection', async () => {
    const logs = new LogCapture();
    Logger.overrideLogger(logs);
    onTestFinished(() => Logger.overrideLogger(new ConsoleLogger()));
    proxy.blackhole();
    onTestFinished(() => proxy.forward());
    // Not critical: it starts down (its startup connect still hanging), and the reconnect loop (10 ms backoff) is soon
    // inside a 2 s attempt of its own, connecting to the black hole too.
    const acceptedBefore = proxy.acceptedSockets;
    const manager = await DbManager.create(
      config('10s', { critical: false, connect_timeout: '2s', health_check_timeout: '2s' }, { retry_delay: '10ms', retry_max_delay: '10ms' }),
    );
    const attempts: string[] = [];
    manager.get('primary').on('reconnect', (result) => attempts.push(result));
    await vi.waitFor(() => expect(proxy.acceptedSockets - acceptedBefore, "the startup's and a reconnect attempt's connects").toBeGreaterThanOrEqual(2), { timeout: 2_000 });
    expect(attempts, 'no reconnect attempt has ended yet').toEqual([]);

    const started = performance.now();
    await manager.close();
    const closeMs = Math.round(performance.now() - started);
    console.log(`[fault:shutdown] close() while a connect to a black hole is under way: ${closeMs} ms (connect_timeout 2 s, shutdown_timeout 10 s)`);
    expect(closeMs).toBeLessThan(MARGIN_MS);
    expect(logs.matching(/DbManager/, /still busy/)).toEqual([]);
    await vi.waitFor(() => expect(proxy.openSockets, 'sockets open').toBe(0), { timeout: 1_000 });
  });

  it('waits for in-flight queries on app.close() (Nest shutdown hook)', async () => {
    const h = await startHealthApp(config('5s'));
    const query = builderQuery<{ one: number }>(h.manager.get('primary'), 'select pg_sleep(0.4), 1 as one');
    await vi.waitFor(() => expect(h.manager.get('primary').gauges().inUse, 'connections at work').toBe(1), { timeout: 1_000 });
    const started = performance.now();
    await h.close();
    const closeMs = Math.round(performance.now() - started);
    console.log(`[fault:shutdown] app.close() with a 400 ms query in flight: ${closeMs} ms`);
    expect((await query)[0].one).toBe(1);
    expect(closeMs).toBeGreaterThanOrEqual(250);
    await vi.waitFor(() => expect(proxy.openSockets, 'sockets open').toBe(0), { timeout: 1_000 });
  });
});
