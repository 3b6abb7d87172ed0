import 'reflect-metadata';

/**
 * Run by tenants.ts in a fresh process: `node --expose-gc tenants-child.js <url> <declared> <active> <prefix>`.
 * Declares `declared` lazy PostgreSQL tenants (application_name `<prefix>-<i>`), times DbManager.create, then starts
 * the app a user would (DbManagerModule + Terminus + Prometheus + /health), uses `active` tenants (one EntityManager
 * query and one query-builder query each), counts the server connections per tenant, and times /metrics, /health
 * and stats(). `declared` 0 is the same app with no connections: the RSS baseline. Prints one JSON line.
 */
import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import pg from 'pg';
import { type ConnectionOptionsInputFor, DbHealthIndicator, DbManager, type DbManagerConfigInput, DbManagerModule } from '../lib';
import { mikroOrm } from '../lib/mikro-orm-version';
import { oursHealthController } from './support/health-controller';

export interface TenantsReading {
  declared: number;
  active: number;
  createMs: number;
  rssMb: number;
  heapMb: number;
  /** Server connections of the declared tenants after the active ones ran their queries. */
  backends: number;
  /** Tenants with at least one server connection. */
  tenantsWithBackends: number;
  metricsP50Ms: number;
  metricsP95Ms: number;
  metricsBytes: number;
  metricsSeries: number;
  healthP50Ms: number;
  healthBytes: number;
  statsP50Ms: number;
  /** First EntityManager query of an idle tenant (ORM built, pool opened, then the query). */
  firstUseP50Ms: number;
}

function tenantsConfig(url: string, declared: number, prefix: string): DbManagerConfigInput {
  const connections: Record<string, ConnectionOptionsInputFor<'postgres'>> = {};
  for (let i = 0; i < declared; i++) {
    connections[`tenant-${i}`] = { type: 'postgres', dsn: url, application_name: `${prefix}-${i}`, lazy: true, idle_pool_timeout: '5m' };
  }
  return { health_check_interval: '10s', connections };
}

/**
 * RSS and heap once garbage is collected and V8 had time to give pages back (its memory reducer runs after a few idle
 * seconds): what the process keeps, not the high-water mark of the last burst of requests.
 */
async function settledMemory(): Promise<{ rss: number; heap: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 10; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heap: heapUsed };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function timedGets(base: string, path: string, count: number): Promise<{ times: number[]; bytes: number; body: string }> {
  const times: number[] = [];
  let body = '';
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const response = await fetch(base + path);
    body = await response.text();
    times.push(performance.now() - started);
  }
  return { times, bytes: Buffer.byteLength(body), body };
}

async function backendsOf(url: string, prefix: string): Promise<{ backends: number; tenants: number }> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench-observer' });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string; t: string }>(
      "select count(*) as n, count(distinct application_name) as t from pg_stat_activity where application_name like $1 || '-%'",
      [prefix],
    );
    return { backends: Number(rows[0].n), tenants: Number(rows[0].t) };
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const [url, declaredArg, activeArg, prefix] = process.argv.slice(2);
  const declared = Number(declaredArg);
  const active = Math.min(Number(activeArg), declared);
  Logger.overrideLogger(false);
  const config = tenantsConfig(url, declared, prefix);

  if (process.argv[6] === 'create') {
    // DbManager.create alone, as a script would call it, in a process of its own (its memory would blur the app's RSS).
    const started = performance.now();
    const manager = await DbManager.create(config);
    const createMs = performance.now() - started;
    await manager.close();
    process.stdout.write(`${JSON.stringify({ createMs })}\n`);
    process.exit(0);
  }
  const createMs = 0;

  @Module({
    imports: [...(declared > 0 ? [DbManagerModule.forRoot(config)] : []), TerminusModule, PrometheusModule.register()],
    controllers: declared > 0 ? [oursHealthController(DbHealthIndicator)] : [],
  })
  class TenantsBenchModule {}
  const app = await NestFactory.create(TenantsBenchModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;

  let reading: TenantsReading = {
    declared, active, createMs, rssMb: 0, heapMb: 0, backends: 0, tenantsWithBackends: 0,
    metricsP50Ms: 0, metricsP95Ms: 0, metricsBytes: 0, metricsSeries: 0, healthP50Ms: 0, healthBytes: 0, statsP50Ms: 0, firstUseP50Ms: 0,
  };
  if (declared === 0) {
    // The baseline does the same outside work (HTTP client, pg client, scrapes), so only the tenants differ.
    await backendsOf(url, prefix);
    await timedGets(base, '/metrics', 50);
    await timedGets(base, '/health', 20);
  } else {
    const manager = app.get(DbManager);
    // The active tenants, spread over the declared ones.
    const step = declared / active;
    const firstUse: number[] = [];
    for (let i = 0; i < active; i++) {
      const tenant = manager.get(`tenant-${Math.floor(i * step)}`);
      // First use of an idle tenant: its ORM built, its pool opened (connect + ping), then the query.
      const started = performance.now();
      await tenant.em.fork().getConnection().execute('select 1');
      firstUse.push(performance.now() - started);
      // The running major's query builder: Kysely on 7, Knex on 6.
      if (mikroOrm().major === 7) {
        await (tenant.kysely() as unknown as { selectNoFrom(s: unknown): { execute(): Promise<unknown> } })
          .selectNoFrom((eb: { lit(v: number): { as(n: string): unknown } }) => eb.lit(1).as('one'))
          .execute();
      } else {
        await (tenant.knex() as unknown as { raw(sql: string): Promise<unknown> }).raw('select 1 as one');
      }
    }
    const { backends, tenants } = await backendsOf(url, prefix);
    const metrics = await timedGets(base, '/metrics', 50);
    const health = await timedGets(base, '/health', 20);
    const statsTimes: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      manager.stats();
      statsTimes.push(performance.now() - started);
    }
    reading = {
      ...reading,
      backends,
      tenantsWithBackends: tenants,
      metricsP50Ms: percentile(metrics.times, 50),
      metricsP95Ms: percentile(metrics.times, 95),
      metricsBytes: metrics.bytes,
      metricsSeries: metrics.body.split('\n').filter((line) => line.startsWith('dbmanager_')).length,
      healthP50Ms: percentile(health.times, 50),
      healthBytes: health.bytes,
      statsP50Ms: percentile(statsTimes, 50),
      firstUseP50Ms: percentile(firstUse, 50),
    };
  }
  const memory = await settledMemory();
  reading.rssMb = memory.rss / 1e6;
  reading.heapMb = memory.heap / 1e6;
  process.stdout.write(`${JSON.stringify(reading)}\n`);
  await app.close();
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
