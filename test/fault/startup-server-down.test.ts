import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConnectionFailedError, DbManager } from '../../lib';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { type HealthApp, LogCapture, startHealthApp } from '../support/health-app';
import { builderQuery } from '../support/mikro-orm-leg';

// Scenario 4: the app starts while its database is down. A critical connection retries with capped, jittered
// backoff and then fails clearly; a non-critical one starts down and heals by itself once the server appears.
const MARGIN_MS = 250;

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
  await pg.stop(); // the port is known and refuses connections
});
afterAll(async () => {
  await pg?.close();
});

describe('fault: startup while the server is down', () => {
  it('retries a critical connection with exponential backoff and full jitter, then fails naming it', async () => {
    const ATTEMPTS = 5;
    const BASE_MS = 100;
    const MAX_MS = 300;
    const logs = new LogCapture();
    Logger.overrideLogger(logs);
    const started = performance.now();
    const error = await DbManager.create({
      retry_attempts: ATTEMPTS,
      retry_delay: BASE_MS,
      retry_max_delay: MAX_MS,
      connections: { primary: { type: 'postgres', dsn: pg.url, connect_timeout: '2s' } },
    }).then(
      () => new Error('startup should have failed'),
      (e: unknown) => e as Error,
    );
    const failedAt = performance.now();

    // The manager logs each failed attempt but the last, with the delay it chose, right before sleeping it.
    const retries = logs.matching('DbManager', /^"primary" attempt \d+ failed/).map((line) => {
      const [, index, delay] = /attempt (\d+) failed .* retrying in (\d+) ms$/.exec(line.message)!;
      return { attempt: Number(index), delayMs: Number(delay), at: line.at };
    });
    const ends = [...retries.map((r) => r.at), failedAt];
    const gaps = ends.slice(1).map((at, i) => Math.round(at - ends[i]!));
    console.log(
      `[fault:startup] critical connection, server down: ${ATTEMPTS} attempts in ${Math.round(failedAt - started)} ms; ` +
        `chosen delays ${retries.map((r) => r.delayMs).join(', ')} ms (caps ${retries.map((_, i) => Math.min(MAX_MS, BASE_MS * 2 ** i)).join(', ')}); ` +
        `attempt-to-attempt gaps ${gaps.join(', ')} ms; error: ${error.message}`,
    );

    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect((error as ConnectionFailedError).connectionName).toBe('primary');
    expect((error as ConnectionFailedError).attempts).toBe(ATTEMPTS);
    expect(error.message).toMatch(/^Connection "primary" \(postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/test\) failed after 5 attempts: .*ECONNREFUSED/);
    expect(error.message).toMatch(/Check that the server is reachable/);
    expect(error.message).not.toContain(pg.password);

    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3, 4]); // attempts - 1 retries, then the failure
    retries.forEach((retry, i) => {
      const cap = Math.min(MAX_MS, BASE_MS * 2 ** i);
      expect(retry.delayMs).toBeGreaterThanOrEqual(0);
      expect(retry.delayMs).toBeLessThanOrEqual(cap);
      // The next attempt ends one delay (plus a refused connect, a few ms) later.
      expect(gaps[i]).toBeGreaterThanOrEqual(retry.delayMs - 5);
      expect(gaps[i]).toBeLessThanOrEqual(retry.delayMs + MARGIN_MS);
    });
    expect(failedAt - started).toBeLessThan(BASE_MS + 2 * BASE_MS + 3 * MAX_MS + 5 * MARGIN_MS);
  });

  describe('a non-critical connection', () => {
    let h: HealthApp;

    afterAll(async () => {
      await h?.close();
    });

    it('starts down at once and comes up by itself when the server appears', async () => {
      const started = performance.now();
      h = await startHealthApp({
        retry_attempts: 5,
        retry_delay: '100ms',
        retry_max_delay: '400ms',
        health_check_interval: '5s',
        connections: { offline: { type: 'postgres', dsn: pg.url, critical: false, connect_timeout: '2s' } },
      });
      const startupMs = Math.round(performance.now() - started);
      const connection = h.manager.get('offline');
      expect(connection.stats()).toMatchObject({ status: 'down', reconnects: 0 });
      expect(connection.stats().lastError).toMatch(/ECONNREFUSED/);
      const attempts: { result: string; at: number }[] = [];
      connection.on('reconnect', (result) => attempts.push({ result, at: performance.now() }));

      const down = await h.get('/health');
      expect(down.status).toBe(200);
      expect(down.body.details.offline).toMatchObject({ status: 'degraded', critical: false });
      expect(down.body.details.offline.message).toMatch(/ECONNREFUSED/);

      await vi.waitFor(() => expect(attempts.length, 'background reconnect attempts while the server is down').toBeGreaterThanOrEqual(2), { timeout: 3_000 });
      await pg.start();
      const readyAt = performance.now();
      await vi.waitFor(() => expect(connection.status, 'the connection, coming up by itself').toBe('up'), { timeout: 400 + 1_000, interval: 10 });
      const upMs = Math.round(performance.now() - readyAt);
      const failures = attempts.filter((a) => a.result === 'failure').length;
      console.log(
        `[fault:startup] non-critical connection, server down: startup took ${startupMs} ms; ${failures} failed background ` +
          `reconnect attempts; server ready → up by itself ${upMs} ms (retry_max_delay 400 ms)`,
      );

      expect(startupMs).toBeLessThan(2_000);
      expect(attempts.at(-1)?.result).toBe('success');
      expect(connection.stats()).toMatchObject({ status: 'up', reconnects: 1, lastError: null });
      expect(await builderQuery(connection, 'select 1 as one')).toEqual([{ one: 1 }]);
      expect((await h.get('/health')).body.details.offline.status).toBe('up');
      expect(h.logs.matching('DbManager:offline', /is up again/)).toHaveLength(1);
    });
  });
});
