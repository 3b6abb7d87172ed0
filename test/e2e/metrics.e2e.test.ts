import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { register } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { AppModule } from '../../sample-app/src/app.module';
import { DbManager, METRIC } from '../../lib';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { type Scrape, scrape } from '../support/prometheus-text';

/**
 * The sample app on PostgreSQL (pool max 2) + SQLite + a PostgreSQL of its own that this test stops and starts,
 * scraped over HTTP while it is loaded with more concurrent requests than the pool holds.
 */
const postgresUrl = inject('postgresUrl');
const dir = mkdtempSync(join(tmpdir(), 'dbm-e2e-metrics-'));
let flakyServer: TestPostgres;
let app: INestApplication;
let baseUrl: string;

const metrics = () => scrape(baseUrl);

/** Scrapes until `check` (assertions on the scrape) passes; resolves to that scrape. */
function until(check: (s: Scrape) => void, timeoutMs = 15_000): Promise<Scrape> {
  return vi.waitFor(
    async () => {
      const s = await metrics();
      check(s);
      return s;
    },
    { timeout: timeoutMs, interval: 50 },
  );
}

beforeAll(async () => {
  flakyServer = await startTestPostgres();
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    `dbmanager:
  default_connection: primary
  health_check_interval: 200ms
  retry_attempts: 2
  retry_delay: 100ms
  retry_max_delay: 300ms
  connections:
    primary:
      type: postgres
      dsn: ${JSON.stringify(postgresUrl)}
      max_open_conns: 2
      acquire_timeout: 20s
    analytics:
      type: sqlite
      filepath: ${JSON.stringify(join(dir, 'analytics.db'))}
      max_open_conns: 2
    flaky:
      type: postgres
      dsn: ${JSON.stringify(flakyServer.url)}
      critical: false
      connect_timeout: 1s
      health_check_timeout: 1s
    quiet:
      type: sqlite
      filepath: ":memory:"
      enable_metrics: false
`,
  );
  app = await NestFactory.create(AppModule.register(configPath), { logger: ['error'], abortOnError: false });
  await app.listen(0, '127.0.0.1');
  baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
});

afterAll(async () => {
  await app?.close();
  await flakyServer?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sample app: GET /metrics under load, through an outage and a removal', () => {
  it('exports every connection with enable_metrics, up, beside the default process metrics', async () => {
    const s = await metrics();
    expect(s.value(METRIC.status, { name: 'primary', type: 'postgres' })).toBe(1);
    expect(s.value(METRIC.status, { name: 'analytics', type: 'sqlite' })).toBe(1);
    expect(s.value(METRIC.status, { name: 'flaky', type: 'postgres' })).toBe(1);
    expect(s.withLabel('name', 'quiet')).toEqual([]);
    expect(s.value(METRIC.connections, { type: 'postgres' })).toBe(2);
    expect(s.value(METRIC.connections, { type: 'sqlite' })).toBe(1);
    expect(s.value(METRIC.poolSize, { name: 'primary', state: 'max' })).toBe(2);
    expect(s.text).toContain('process_resident_memory_bytes');
  });

  it('shows the pool saturated while 30 requests compete for 2 connections, and counts the waits', async () => {
    const before = await metrics();
    const waitsBefore = before.value(METRIC.waits, { name: 'primary' })!;
    const acquiresBefore = before.value(`${METRIC.acquireDuration}_count`, { name: 'primary' })!;
    const waitedBefore = before.value(METRIC.waitSeconds, { name: 'primary' })!;

    const load = Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        fetch(`${baseUrl}/connections/primary/${i % 3 === 0 ? 'native' : 'hold/150'}`, { signal: AbortSignal.timeout(30_000) }).then((r) => r.status),
      ),
    );
    // Scraped over HTTP while the requests are still queued for the pool.
    const during = await until((s) => {
      expect(s.value(METRIC.poolSize, { name: 'primary', state: 'in_use' }), 'in use').toBe(2);
      expect(s.value(METRIC.poolSize, { name: 'primary', state: 'pending' }), 'callers pending').toBeGreaterThan(0);
    });
    const midWaits = await until((s) => expect(s.value(METRIC.waits, { name: 'primary' }), 'waits').toBeGreaterThan(waitsBefore));
    const statuses = await load;
    expect(statuses.every((code) => code === 200)).toBe(true);

    expect(during.value(METRIC.poolSize, { name: 'primary', state: 'open' })).toBe(2);
    expect(during.value(METRIC.poolSize, { name: 'primary', state: 'idle' })).toBe(0);
    expect(midWaits.value(METRIC.waits, { name: 'primary' })).toBeGreaterThan(waitsBefore);

    const after = await metrics();
    const delta = (name: string) => (after.value(name, { name: 'primary' })! - before.value(name, { name: 'primary' })!).toFixed(3);
    console.log(
      `[metrics e2e] during load: in_use=${during.value(METRIC.poolSize, { name: 'primary', state: 'in_use' })} ` +
        `pending=${during.value(METRIC.poolSize, { name: 'primary', state: 'pending' })}; after: waits +${delta(METRIC.waits)}, ` +
        `wait seconds +${delta(METRIC.waitSeconds)}, acquires +${delta(`${METRIC.acquireDuration}_count`)}`,
    );
    expect(after.value(METRIC.poolSize, { name: 'primary', state: 'in_use' })).toBe(0);
    expect(after.value(METRIC.poolSize, { name: 'primary', state: 'pending' })).toBe(0);
    expect(after.value(METRIC.poolSize, { name: 'primary', state: 'open' })).toBeLessThanOrEqual(2);
    // At most the first two requests found a free connection; most of the other 28 had to wait.
    expect(after.value(METRIC.waits, { name: 'primary' })! - waitsBefore).toBeGreaterThanOrEqual(20);
    expect(after.value(METRIC.waitSeconds, { name: 'primary' })! - waitedBefore).toBeGreaterThan(1);
    expect(after.value(`${METRIC.acquireDuration}_count`, { name: 'primary' })! - acquiresBefore).toBeGreaterThanOrEqual(30);
    // Waits of a second or more land in the upper buckets.
    expect(after.value(`${METRIC.acquireDuration}_bucket`, { name: 'primary', le: '0.3' })!).toBeLessThan(after.value(`${METRIC.acquireDuration}_count`, { name: 'primary' })!);
    expect(after.value(METRIC.timeouts, { name: 'primary' })).toBe(0);
    expect(after.value(`${METRIC.healthCheckDuration}_count`, { name: 'primary' })).toBeGreaterThan(0);
  });

  it('drops status to 0 while the server is stopped and counts the successful reconnect when it is back', async () => {
    const before = await metrics();
    const successesBefore = before.value(METRIC.reconnectAttempts, { name: 'flaky', result: 'success' })!;
    const failuresBefore = before.value(METRIC.reconnectAttempts, { name: 'flaky', result: 'failure' })!;

    await flakyServer.stop();
    const down = await until((s) => expect(s.value(METRIC.status, { name: 'flaky' }), 'flaky status').toBe(0));
    expect(down.value(METRIC.status, { name: 'primary' })).toBe(1);
    await until((s) => expect(s.value(METRIC.reconnectAttempts, { name: 'flaky', result: 'failure' }), 'failed reconnect attempts').toBeGreaterThan(failuresBefore));

    await flakyServer.start();
    const up = await until((s) => expect(s.value(METRIC.status, { name: 'flaky' }), 'flaky status').toBe(1), 20_000);
    expect(up.value(METRIC.reconnectAttempts, { name: 'flaky', result: 'success' })).toBeGreaterThan(successesBefore);
    const response = await fetch(`${baseUrl}/connections/flaky/native`);
    expect(response.status).toBe(200);
  });

  it('drops every series of a removed connection', async () => {
    expect((await metrics()).withLabel('name', 'flaky').length).toBeGreaterThan(30);
    await app.get(DbManager).remove('flaky');
    const s = await metrics();
    expect(s.withLabel('name', 'flaky')).toEqual([]);
    expect(s.value(METRIC.connections, { type: 'postgres' })).toBe(1);
    expect(s.value(METRIC.status, { name: 'primary' })).toBe(1);
  });

  it('leaves prom-client’s registry clean when the app closes', async () => {
    await app.close();
    for (const name of Object.values(METRIC)) expect(register.getSingleMetric(name), name).toBeUndefined();
  });
});
