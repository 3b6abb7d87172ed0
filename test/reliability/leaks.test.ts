import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { register } from 'prom-client';
import { describe, expect, inject, it } from 'vitest';
import { DbHealthIndicator, DbManager, DbManagerModule } from '../../lib';
import { builderQuery } from '../support/mikro-orm-leg';
import { countBackends } from '../support/pg-activity';
import { heapAfterGc, resourceCounts } from '../support/process-resources';

const url = inject('postgresUrl');
const MB = 1024 * 1024;

/** Sockets and timers: what a leaked pool or a forgotten interval leaves behind. */
const leakable = (counts: Record<string, number>) => ({ sockets: (counts.TCPSocketWrap ?? 0) + (counts.TCPWRAP ?? 0), timers: counts.Timeout ?? 0 });

describe('no leaks', () => {
  it('500 cycles of add / query / remove return sockets, timers and server connections to baseline', async () => {
    const app = `dbm-leak-${process.pid}`;
    const manager = await DbManager.create({ health_check_interval: '1s', connections: {} });
    try {
      const cycle = async (i: number) => {
        const c = await manager.add(`tenant-${i}`, { type: 'postgres', dsn: url, application_name: app, max_open_conns: 2 });
        await Promise.all([builderQuery(c, 'select 1'), c.withNativeClient((client: { query(s: string): Promise<unknown> }) => client.query('select 2')), c.em.fork().getConnection().execute('select 3')]);
        await manager.remove(`tenant-${i}`);
      };
      for (let i = 0; i < 20; i++) await cycle(i); // warm-up: module loading, JIT, first allocations
      // The probe does see a live pool's sockets (so the baseline comparison below can fail).
      const probe = await manager.add('probe', { type: 'postgres', dsn: url, application_name: app });
      await builderQuery(probe, 'select 1');
      expect(leakable(await resourceCounts()).sockets).toBeGreaterThan(0);
      await manager.remove('probe');
      const before = { ...leakable(await resourceCounts()), heap: heapAfterGc(), backends: await countBackends(url, app) };
      const started = performance.now();
      for (let i = 20; i < 520; i++) await cycle(i);
      const seconds = (performance.now() - started) / 1000;
      await expect.poll(() => countBackends(url, app), { message: 'server connections', timeout: 5_000 }).toBe(0);
      const after = { ...leakable(await resourceCounts()), heap: heapAfterGc() };
      console.log(
        `[leaks] 500 add/query/remove cycles in ${seconds.toFixed(1)} s: sockets ${before.sockets}→${after.sockets}, timers ${before.timers}→${after.timers}, ` +
          `heap ${(before.heap / MB).toFixed(1)}→${(after.heap / MB).toFixed(1)} MB, server connections ${before.backends}→0`,
      );
      expect(after.sockets).toBeLessThanOrEqual(before.sockets);
      expect(after.timers).toBeLessThanOrEqual(before.timers);
      expect(after.heap - before.heap).toBeLessThan(20 * MB);
      expect(manager.names()).toEqual([]);
    } finally {
      await manager.close();
    }
  }, 180_000);

  it('20 cycles of app create / close in one process return to baseline', async () => {
    const app = `dbm-app-leak-${process.pid}`;
    @Controller('health')
    class HealthController {
      constructor(private readonly health: HealthCheckService, private readonly db: DbHealthIndicator) {}
      @Get() @HealthCheck() check() {
        return this.health.check([() => this.db.checkAll()]);
      }
    }
    const cycle = async () => {
      @Module({
        imports: [
          DbManagerModule.forRoot({
            health_check_interval: '200ms',
            connections: { pg: { type: 'postgres', dsn: url, application_name: app, max_open_conns: 3 }, lite: { type: 'sqlite', filepath: ':memory:' } },
          }),
          TerminusModule,
        ],
        controllers: [HealthController],
      })
      class AppModule {}
      const nest = await NestFactory.create(AppModule, { logger: false });
      await nest.listen(0, '127.0.0.1');
      const res = await fetch(`${await nest.getUrl()}/health`, { headers: { connection: 'close' } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      await nest.close();
    };
    for (let i = 0; i < 3; i++) await cycle();
    const before = { ...leakable(await resourceCounts()), heap: heapAfterGc() };
    for (let i = 0; i < 20; i++) await cycle();
    await expect.poll(() => countBackends(url, app), { message: 'server connections', timeout: 5_000 }).toBe(0);
    const after = { ...leakable(await resourceCounts()), heap: heapAfterGc() };
    console.log(
      `[leaks] 20 app create/close cycles: sockets ${before.sockets}→${after.sockets}, timers ${before.timers}→${after.timers}, ` +
        `heap ${(before.heap / MB).toFixed(1)}→${(after.heap / MB).toFixed(1)} MB`,
    );
    expect(after.sockets).toBeLessThanOrEqual(before.sockets);
    expect(after.timers).toBeLessThanOrEqual(before.timers);
    expect(after.heap - before.heap).toBeLessThan(30 * MB);
  }, 120_000);

  it('1000 cycles of add / (use every other one) / remove of lazy tenants return sockets, timers, server connections, metric series and heap to baseline', async () => {
    const app = `dbm-lazy-leak-${process.pid}`;
    @Module({
      imports: [
        DbManagerModule.forRoot({ health_check_interval: '200ms', connections: { home: { type: 'sqlite', filepath: ':memory:' } } }),
        PrometheusModule.register({ defaultMetrics: { enabled: false } }),
      ],
    })
    class LazyTenantsModule {}
    const nest = await NestFactory.create(LazyTenantsModule, { logger: false });
    await nest.init();
    const manager = nest.get(DbManager);
    /** Series of our metrics that name a tenant. */
    const tenantSeries = async () =>
      (await register.getMetricsAsJSON()).flatMap((m) => m.values).filter((v) => String(v.labels.name ?? '').startsWith('tenant-')).length;
    try {
      const cycle = async (i: number) => {
        const c = await manager.add(`tenant-${i}`, { type: 'postgres', dsn: url, application_name: app, lazy: true, idle_pool_timeout: '1s', max_open_conns: 2 });
        expect(c.status).toBe('idle');
        if (i % 2 === 0) await Promise.all([builderQuery(c, 'select 1'), c.em.fork().getConnection().execute('select 2')]);
        await manager.remove(`tenant-${i}`);
      };
      for (let i = 0; i < 20; i++) await cycle(i);
      // The series do appear while a tenant is there (so the comparison below can fail).
      await manager.add('tenant-probe', { type: 'postgres', dsn: url, application_name: app, lazy: true });
      expect(await tenantSeries()).toBeGreaterThan(0);
      await manager.remove('tenant-probe');
      const before = { ...leakable(await resourceCounts()), heap: heapAfterGc(), backends: await countBackends(url, app), series: await tenantSeries() };
      const started = performance.now();
      for (let i = 20; i < 1020; i++) await cycle(i);
      const seconds = (performance.now() - started) / 1000;
      await expect.poll(() => countBackends(url, app), { message: 'server connections', timeout: 5_000 }).toBe(0);
      const after = { ...leakable(await resourceCounts()), heap: heapAfterGc(), series: await tenantSeries() };
      console.log(
        `[leaks] 1000 lazy add/use/remove cycles in ${seconds.toFixed(1)} s: sockets ${before.sockets}→${after.sockets}, timers ${before.timers}→${after.timers}, ` +
          `heap ${(before.heap / MB).toFixed(1)}→${(after.heap / MB).toFixed(1)} MB, server connections ${before.backends}→0, tenant series ${before.series}→${after.series}`,
      );
      expect(after.sockets).toBeLessThanOrEqual(before.sockets);
      expect(after.timers).toBeLessThanOrEqual(before.timers);
      expect(after.series).toBe(0);
      expect(after.heap - before.heap).toBeLessThan(20 * MB);
      expect(manager.names()).toEqual(['home']);
    } finally {
      await nest.close();
    }
  }, 240_000);
});
