import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { DbManager } from '../../lib';
import { AppModule } from '../../sample-app/src/app.module';
import { startTestPostgres } from '../support/embedded-postgres';
import { burst, sustained } from '../support/http-load';
import { QUERY_BUILDER } from '../support/mikro-orm-leg';
import { countBackends, peakBackendsDuring } from '../support/pg-activity';

const dir = mkdtempSync(join(tmpdir(), 'dbm-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PATHS = ['em', QUERY_BUILDER, 'native'] as const;

/** Boots the sample app on a PostgreSQL primary with a pool of 10. */
async function sampleApp(pgUrl: string, app: string, extra = '', quiet = false): Promise<{ nest: INestApplication; base: string }> {
  const file = join(dir, `${app}.yaml`);
  writeFileSync(
    file,
    `dbmanager:
  health_check_interval: 1s
  retry_delay: 100ms
  retry_max_delay: 500ms
  connections:
    primary: { type: postgres, dsn: "${pgUrl}", max_open_conns: 10, application_name: ${app}, connect_timeout: 2s${extra} }
    analytics: { type: sqlite, filepath: ":memory:" }
`,
  );
  const nest = await NestFactory.create(AppModule.register(file), { logger: quiet ? false : ['error'] });
  await nest.listen(0, '127.0.0.1');
  return { nest, base: (await nest.getUrl()).replace('[::1]', '127.0.0.1') };
}

describe('under load', () => {
  it(`5,000 concurrent requests through EM, ${QUERY_BUILDER} and native on a pool of 10: none fail, nothing leaks`, async () => {
    const url = inject('postgresUrl');
    const app = `dbm-load-${process.pid}`;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const { nest, base } = await sampleApp(url, app, ', acquire_timeout: 30s');
    try {
      const run = burst((i) => `${base}/connections/primary/${PATHS[i % 3]}`, 5_000);
      const peak = await peakBackendsDuring(url, app, run);
      const { results, ms } = await run;
      const failed = results.filter((r) => r.status !== 200);
      const stats = nest.get(DbManager).get('primary').stats();
      console.log(
        `[load] 5000 requests (${PATHS.join('/')}) in ${ms.toFixed(0)} ms = ${((5000 / ms) * 1000).toFixed(0)} req/s; failed ${failed.length}; ` +
          `peak server connections ${peak} (pool max 10, + 1 health ping while saturated); waits ${stats.waitCount}, acquire timeouts ${stats.timeouts}`,
      );
      expect(failed.slice(0, 3)).toEqual([]);
      // The pool never opens more than 10; while all 10 are busy a health ping uses one short-lived connection of its own.
      expect(peak).toBeLessThanOrEqual(10 + 1);
      expect(stats.open).toBeLessThanOrEqual(10);
      expect(stats.waitCount).toBeGreaterThan(0);
      await vi.waitFor(() => expect(nest.get(DbManager).get('primary').stats().inUse, 'connections in use').toBe(0), { timeout: 2_000 });
      expect(nest.get(DbManager).get('primary').stats()).toMatchObject({ inUse: 0, pending: 0, timeouts: 0 });
      expect(await countBackends(url, app)).toBeLessThanOrEqual(10);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await nest.close();
    }
    expect(await countBackends(url, app)).toBe(0);
  }, 120_000);

  it('an acquire timeout under saturation is a clear error, counted, and the pool recovers', async () => {
    const url = inject('postgresUrl');
    const app = `dbm-load-timeout-${process.pid}`;
    // Quiet: each of the expected failures would log its stack.
    const { nest, base } = await sampleApp(url, app, ', acquire_timeout: 20ms', true);
    try {
      const { results } = await burst((i) => `${base}/connections/primary/${PATHS[i % 3]}`, 2_000);
      const failed = results.filter((r) => r.status !== 200);
      const stats = nest.get(DbManager).get('primary').stats();
      console.log(`[load] acquire_timeout 20ms, 2000 requests: ${failed.length} failed, ${stats.timeouts} acquire timeouts counted`);
      expect(failed.length).toBeGreaterThan(0);
      expect(stats.timeouts).toBeGreaterThanOrEqual(failed.length);
      expect(failed.every((r) => r.status === 500)).toBe(true);
      await vi.waitFor(() => expect(nest.get(DbManager).get('primary').stats().inUse, 'connections in use').toBe(0), { timeout: 2_000 });
      const after = await burst((i) => `${base}/connections/primary/${PATHS[i % 3]}`, 10, 1);
      expect(after.results.every((r) => r.status === 200)).toBe(true);
    } finally {
      await nest.close();
    }
  }, 60_000);

  it('server restarted in the middle of the load: failures only during the outage, none after recovery', async () => {
    const pg = await startTestPostgres();
    const app = `dbm-load-fault-${process.pid}`;
    const { nest, base } = await sampleApp(pg.url, app, "", true);
    try {
      let stoppedAt = 0;
      let readyAt = 0;
      const t0 = performance.now();
      const fault = (async () => {
        await new Promise((r) => setTimeout(r, 1_000));
        stoppedAt = performance.now() - t0;
        await pg.stop();
        await new Promise((r) => setTimeout(r, 1_000));
        await pg.start();
        readyAt = performance.now() - t0;
      })();
      const results = await sustained((i) => `${base}/connections/primary/${PATHS[i % 3]}`, 32, 4_500);
      await fault;
      // sustained() measures from its own start, a few microseconds after t0.
      const failed = results.filter((r) => r.status !== 200);
      const lateFailures = failed.filter((r) => r.endedAt > readyAt + 250);
      const afterRecovery = results.filter((r) => r.endedAt > readyAt);
      const firstOk = afterRecovery.filter((r) => r.status === 200).map((r) => r.endedAt).sort((a, b) => a - b)[0];
      // A request that needs a new connection while the server is down waits for it (up to acquire_timeout).
      const waitedThrough = results.filter((r) => r.status === 200 && r.sentAt >= stoppedAt && r.sentAt < readyAt && r.endedAt >= readyAt);
      console.log(
        `[load] restart under load: ${results.length} requests, ${failed.length} failed (all between stop at ${stoppedAt.toFixed(0)} ms and ready at ${readyAt.toFixed(0)} ms + 250 ms: ${lateFailures.length === 0}); ` +
          `${waitedThrough.length} sent during the outage answered after it; ` +
          `first success ${(firstOk - readyAt).toFixed(0)} ms after the server was ready; ${afterRecovery.length} requests after recovery`,
      );
      expect(results.every((r) => r.status !== 0)).toBe(true);
      // The outage was felt: requests failed (the queries running when the server stopped) or waited through it.
      expect(failed.length + waitedThrough.length).toBeGreaterThan(0);
      expect(failed.every((r) => r.endedAt >= stoppedAt)).toBe(true);
      expect(lateFailures).toEqual([]);
      expect(afterRecovery.length).toBeGreaterThan(100);
    } finally {
      await nest.close();
      await pg.close();
    }
  }, 90_000);
});
