import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbManager, DbManagerModule, parseDbManagerConfig } from '../../lib';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { HealthController, LogCapture, waitFor } from '../support/health-app';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

// Secrets chosen to be recognisable and to need escaping in a DSN.
const WRONG = 'Wr0ng/Pa55:w@rd%x';
const FIELD = 'F1eld-Secret!#';
const ENV_SECRET = 'Env-S3cret&more';

const exporter = new InMemorySpanExporter();
let pg: TestPostgres;
let hole: TcpProxy;
const printed: string[] = [];
let restoreWrites: () => void;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  pg = await startTestPostgres();
  hole = await startTcpProxy({ host: pg.host, port: pg.port });
  hole.blackhole();
  // Everything written to stdout/stderr (knex, MikroORM, Nest) is captured too.
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: unknown, ...rest: never[]) => (printed.push(String(chunk)), out(chunk as string, ...rest))) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: never[]) => (printed.push(String(chunk)), err(chunk as string, ...rest))) as typeof process.stderr.write;
  // Vitest routes console.* around process.stdout in workers: capture those calls as well.
  const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const originals = methods.map((m) => console[m]);
  methods.forEach((m, i) => {
    console[m] = (...args: unknown[]) => {
      printed.push(args.map(String).join(' '));
      originals[i].apply(console, args);
    };
  });
  restoreWrites = () => {
    process.stdout.write = out;
    process.stderr.write = err;
    methods.forEach((m, i) => (console[m] = originals[i]));
  };
});

afterAll(async () => {
  restoreWrites?.();
  trace.disable();
  context.disable();
  await hole?.close();
  await pg?.close();
});

function expectNoSecret(where: string, text: string, secrets: string[]) {
  for (const secret of secrets) {
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      if (text.includes(form)) throw new Error(`${where} contains a password (${form.length} chars): ${text.slice(Math.max(0, text.indexOf(form) - 80), text.indexOf(form) + 80)}`);
    }
  }
}

describe('no password ever leaks', () => {
  it('through logs, errors, health payloads, /metrics, stats() and spans, on every failure path', async () => {
    const secrets = [pg.password, WRONG, FIELD, ENV_SECRET];
    process.env.DBM_TEST_SECRET = ENV_SECRET;
    const good = new URL(pg.url);
    const wrongDsn = new URL(pg.url);
    wrongDsn.password = encodeURIComponent(WRONG);
    const logs = new LogCapture();
    const collected: string[] = [];

    @Module({
      imports: [
        DbManagerModule.forRoot({
          health_check_interval: '200ms',
          retry_delay: '50ms',
          retry_max_delay: '100ms',
          connections: {
            good: { type: 'postgres', dsn: pg.url, enable_logging: true, enable_tracing: true, health_check_timeout: '500ms' },
            'wrong-dsn': { type: 'postgres', dsn: wrongDsn.toString(), critical: false, enable_logging: true, enable_tracing: true },
            'wrong-field': { type: 'postgres', host: good.hostname, port: Number(good.port), user: 'postgres', password: FIELD, critical: false, enable_tracing: true },
            'wrong-env': { type: 'postgres', host: good.hostname, port: Number(good.port), user: 'postgres', password: '${DBM_TEST_SECRET}', critical: false },
            unreachable: { type: 'postgres', host: '127.0.0.1', port: 1, user: 'postgres', password: FIELD, critical: false, connect_timeout: '300ms' },
            hole: { type: 'postgres', host: hole.host, port: hole.port, user: 'postgres', password: ENV_SECRET, critical: false, connect_timeout: '300ms', health_check_timeout: '300ms', enable_tracing: true },
          },
        }),
        TerminusModule,
        PrometheusModule.register({ defaultMetrics: { enabled: false } }),
      ],
      controllers: [HealthController],
    })
    class SecretsModule {}

    const app = await NestFactory.create(SecretsModule, { logger: logs, abortOnError: false });
    await app.listen(0, '127.0.0.1');
    const base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
    const manager = app.get(DbManager);
    try {
      await manager.get('good').knex().raw("select 'hello' as greeting");
      for (const path of ['/health', '/health/good', '/health/wrong-dsn', '/health/wrong-field', '/health/wrong-env', '/health/unreachable', '/health/hole', '/health/nope', '/metrics']) {
        collected.push(`${path} ${await (await fetch(base + path)).text()}`);
      }
      // Server down, reconnect attempts failing, server back, reconnect succeeding.
      await pg.stop();
      collected.push(`/health (stopped) ${await (await fetch(`${base}/health`)).text()}`);
      await waitFor(() => manager.get('good').status === 'down', 5_000, 'good to be down');
      await new Promise((r) => setTimeout(r, 500));
      await pg.start();
      await waitFor(() => manager.get('good').status === 'up', 5_000, 'good to come back');
      collected.push(`/health (back) ${await (await fetch(`${base}/health`)).text()}`);
      collected.push(`/metrics ${await (await fetch(`${base}/metrics`)).text()}`);
      collected.push(JSON.stringify(manager.stats()), JSON.stringify(await manager.healthCheck()));
      for (const c of manager.all()) collected.push(JSON.stringify(c.settings), c.target.display, JSON.stringify(c.stats()));
      expect(manager.stats().connections['wrong-dsn'].lastError).toMatch(/password authentication failed/);
      expect(manager.stats().connections.hole.lastError).toMatch(/timed out|timeout/);
    } finally {
      await app.close();
    }

    // Startup failures and config errors.
    const errors: unknown[] = [];
    errors.push(await DbManager.create({ retry_attempts: 2, connections: { pg: { type: 'postgres', dsn: wrongDsn.toString() } } }).catch((e: unknown) => e));
    errors.push(await DbManager.create({ retry_attempts: 1, connections: { pg: { type: 'postgres', host: hole.host, port: hole.port, password: FIELD, connect_timeout: '200ms' } } }).catch((e: unknown) => e));
    errors.push((() => { try { parseDbManagerConfig({ connections: { a: { type: 'mysql', dsn: wrongDsn.toString() }, b: { type: 'postgres', host: 'h', password: 42 }, c: { type: 'postgres', host: 'h', password: '${DBM_NOPE}' } } }); } catch (e) { return e; } })());
    for (const error of errors) {
      expect(error).toBeInstanceOf(Error);
      const e = error as Error & { cause?: unknown };
      collected.push(e.message, String(e.stack), String(e.cause), JSON.stringify(e));
    }

    const spans = exporter.getFinishedSpans();
    expect(spans.length).toBeGreaterThan(0);
    collected.push(JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, status: s.status, events: s.events }))));

    // The check itself finds a secret, escaped or not.
    expect(() => expectNoSecret('probe', `x${encodeURIComponent(WRONG)}y`, [WRONG])).toThrow(/contains a password/);
    expectNoSecret('captured Nest logs', logs.lines.map((l) => `${l.context} ${l.message}`).join('\n'), secrets);
    expectNoSecret('stdout/stderr', printed.join(''), secrets);
    expectNoSecret('health, metrics, stats, errors and spans', collected.join('\n'), secrets);
    restoreWrites();
    console.log(
      `[secrets] checked ${logs.lines.length} log lines, ${printed.length} console writes, ${collected.length} payloads/errors, ${spans.length} spans: no password found`,
    );
    delete process.env.DBM_TEST_SECRET;
  }, 60_000);
});
