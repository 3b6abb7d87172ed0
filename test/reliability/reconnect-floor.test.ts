import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbManager, DbManagerConfigError, parseDbManagerConfig } from '../../lib';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';

// Before the floors, retry_delay: 0 made 15,522 reconnect attempts in 5 s at 98 % CPU against a stopped server.
const WINDOW_MS = 3_000;
const FLOOR_MS = 10;
// Full jitter waits a random time in [0, 10 ms): 5 ms on average, so about 600 attempts fit in the window; the
// health loop (every 100 ms) may start ~30 more. A third above that still separates it from a hot loop by 10×.
const MOST_ATTEMPTS = Math.round((WINDOW_MS / (FLOOR_MS / 2)) * (4 / 3));

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await pg?.close();
});

describe('a server that is down, with the smallest backoff the config accepts', () => {
  it('retry_delay: 0 is refused, and at its 10ms floor the reconnect loop makes a bounded number of attempts', async () => {
    expect(() => parseDbManagerConfig({ retry_delay: 0, connections: { db: { type: 'postgres', dsn: pg.url } } })).toThrow(DbManagerConfigError);

    const manager = await DbManager.create({
      retry_delay: `${FLOOR_MS}ms`,
      retry_max_delay: `${FLOOR_MS}ms`,
      health_check_interval: '100ms',
      connections: { db: { type: 'postgres', dsn: pg.url, connect_timeout: '1s', health_check_timeout: '1s' } },
    });
    try {
      const db = manager.get('db');
      let attempts = 0;
      db.on('reconnect', () => attempts++);
      await pg.stop();
      await expect.poll(() => db.status, { timeout: 5_000 }).toBe('down');
      await expect.poll(() => attempts, { timeout: 5_000 }).toBeGreaterThan(0);

      attempts = 0;
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      // A measurement window, not a wait for a condition: how many attempts fit in it is what is asserted.
      await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
      const elapsedMs = performance.now() - started;
      const made = attempts;
      const cpu = process.cpuUsage(cpuBefore);
      const cpuPercent = ((cpu.user + cpu.system) / 1_000 / elapsedMs) * 100;
      console.log(
        `[reconnect-floor] server stopped, retry_delay = retry_max_delay = ${FLOOR_MS}ms: ${made} reconnect attempts in ${Math.round(elapsedMs)} ms ` +
          `(bound ${MOST_ATTEMPTS}), this process used ${cpuPercent.toFixed(0)} % of one core`,
      );
      expect(made).toBeGreaterThan(0);
      expect(made).toBeLessThanOrEqual(MOST_ATTEMPTS);
      expect(db.status).toBe('down');

      await pg.start();
      await expect.poll(() => db.status, { timeout: 5_000 }).toBe('up');
    } finally {
      await manager.close();
    }
  });
});
