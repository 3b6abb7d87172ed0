import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ConnectionOptionsInputFor, DbManager, DbManagerModule, parseDbManagerConfig } from '../../lib';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import pg_ from 'pg';
import { HealthController, LogCapture, startHealthApp } from '../support/health-app';
import { builderQuery } from '../support/mikro-orm-leg';
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
  // Everything written to stdout/stderr (the query builder, MikroORM, Nest) is captured too.
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
      await builderQuery(manager.get('good'), "select 'hello' as greeting");
      for (const path of ['/health', '/health/good', '/health/wrong-dsn', '/health/wrong-field', '/health/wrong-env', '/health/unreachable', '/health/hole', '/health/nope', '/metrics']) {
        collected.push(`${path} ${await (await fetch(base + path)).text()}`);
      }
      // Server down, reconnect attempts failing, server back, reconnect succeeding.
      const attempts: string[] = [];
      manager.get('good').on('reconnect', (result) => attempts.push(result));
      await pg.stop();
      collected.push(`/health (stopped) ${await (await fetch(`${base}/health`)).text()}`);
      await vi.waitFor(() => expect(manager.get('good').status, 'good').toBe('down'), { timeout: 5_000 });
      await vi.waitFor(() => expect(attempts, 'reconnect attempts of good while down').toContain('failure'), { timeout: 5_000 });
      await pg.start();
      await vi.waitFor(() => expect(manager.get('good').status, 'good').toBe('up'), { timeout: 5_000 });
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

/** Where a credential stands in a text: a URL's user-info, or the value of a password key. */
function credentialPositions(text: string, password: string): string[] {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const url = new URL('postgres://u@h');
  url.password = password;
  const forms = [...new Set([password, encodeURIComponent(password), url.password])].map(escape).join('|');
  const patterns = [new RegExp(`://[^\\s/@]*:(?:${forms})@`, 'g'), new RegExp(`(?:password|pwd)["']?\\s*[:=]\\s*["']?(?:${forms})(?![\\w])`, 'gi')];
  return patterns.flatMap((p) => [...text.matchAll(p)].map((m) => m[0]));
}

describe('masking never mangles a message', () => {
  // Short, common, equal to the user name, part of the host, full of reserved characters.
  it.each(['a', 'test', 'postgres', '127', 'p@ss:w/rd'])(
    'password %j on the real server (wrong password, health down, reconnect): masked where a credential stands, names readable',
    async (password) => {
      const role = `dbm_mask_${Buffer.from(password).toString('hex')}`;
      // A short-lived admin session each time: the server is stopped in between, which would end a kept one.
      const asAdmin = async (sql: (client: pg_.Client) => string) => {
        const admin = new pg_.Client({ connectionString: pg.url });
        await admin.connect();
        try {
          await admin.query(sql(admin));
        } finally {
          await admin.end();
        }
      };
      await asAdmin(() => `drop role if exists ${role}`);
      await asAdmin((admin) => `create role ${role} login password ${admin.escapeLiteral(password)}`);
      const server = { host: '127.0.0.1', port: pg.port };
      const on = (extra: Partial<ConnectionOptionsInputFor<'postgres'>>): ConnectionOptionsInputFor<'postgres'> => ({ type: 'postgres', ...server, critical: false, connect_timeout: '1s', health_check_timeout: '1s', ...extra });
      const app = await startHealthApp({
        health_check_interval: '100ms',
        retry_delay: '20ms',
        retry_max_delay: '100ms',
        connections: {
          good: { type: 'postgres', dsn: `postgres://${role}:${encodeURIComponent(password)}@127.0.0.1:${pg.port}/test`, connect_timeout: '1s', health_check_timeout: '1s', enable_tracing: true },
          'wrong-password': on({ user: 'postgres', password, database: 'test' }),
          'user-is-password': on({ user: password, password, database: 'test' }),
          'database-is-password': on({ user: role, password, database: password }),
        },
      });
      const texts: string[] = [];
      const manager = app.manager;
      const lastError = (name: string) => manager.stats().connections[name].lastError ?? '';
      try {
        texts.push(JSON.stringify((await app.get('/health')).body));
        // The server's own words, whole: the user and database names in them even when they equal the password.
        expect(lastError('wrong-password')).toBe('password authentication failed for user "postgres" (28P01)');
        expect(lastError('user-is-password')).toBe(`password authentication failed for user "${password}" (28P01)`);
        // (Databases "test" and "postgres" exist: that connection is up.)
        if (password !== 'test' && password !== 'postgres') expect(lastError('database-is-password')).toBe(`database "${password}" does not exist (3D000)`);
        expect(manager.get('good').status).toBe('up');

        // Health down while the server is stopped: the host's address stays readable (password "127" is not in it).
        await pg.stop();
        await expect.poll(() => lastError('good'), { timeout: 10_000 }).toContain(`127.0.0.1:${pg.port}`);
        const down = await app.get('/health');
        expect(down.status).toBe(503);
        expect(down.body.details.good.message).toContain(`127.0.0.1:${pg.port}`);
        texts.push(JSON.stringify(down.body), JSON.stringify(manager.stats()));
        await pg.start();
        await expect.poll(() => manager.get('good').status, { timeout: 10_000 }).toBe('up');
        texts.push(JSON.stringify((await app.get('/health/good')).body));

        // A critical connection that cannot log in: the startup error names its target, password masked.
        const failed = (await DbManager.create({ retry_attempts: 1, connections: { c: { type: 'postgres', dsn: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${pg.port}/test` } } }).catch(
          (e: unknown) => e,
        )) as Error;
        expect(failed.message).toContain(`(postgres://postgres:***@127.0.0.1:${pg.port}/test) failed after 1 attempt: password authentication failed for user "postgres" (28P01)`);
        texts.push(failed.message);
        texts.push(...manager.all().map((c) => `${c.target.display} ${JSON.stringify(c.settings)} ${JSON.stringify(c.stats())}`));
      } finally {
        await app.close();
        await asAdmin(() => `drop role if exists ${role}`);
      }
      texts.push(...app.logs.lines.map((l) => `${l.context} ${l.message}`));
      const all = texts.join('\n');
      expect(credentialPositions(all, password)).toEqual([]);
      // Every mask sits where a credential stood: none inside a word ("p***ssword") or a name.
      const stray = all.replace(/:\*\*\*@/g, '').replace(/(?:password|pwd)["']?\s*[:=]\s*["']?\*\*\*/gi, '');
      expect(stray).not.toContain('***');
      expect(all).toMatch(/password authentication failed/);
    },
    60_000,
  );
});
