import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DbConnection, DbManager, type DbManagerConfigInput, TRACER_NAME } from '../../lib';
import { freePort } from '../support/free-port';
import { builderQuery, MIKRO_ORM_MAJOR, nativeClientQuery, onlyOnMikroOrm, QUERY_BUILDER, sqlRunner } from '../support/mikro-orm-leg';

const postgresUrl = inject('postgresUrl');
const pgPassword = new URL(postgresUrl).password;
const dir = mkdtempSync(join(tmpdir(), 'dbm-tracing-'));
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const managers: DbManager[] = [];

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  const setup = await start({ setup: { type: 'postgres', dsn: postgresUrl } });
  await builderQuery(setup.get('setup'), 'create table if not exists trace_accounts (login text, password text)');
});

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
  exporter.reset();
});

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  rmSync(dir, { recursive: true, force: true });
});

async function start(connections: Record<string, Record<string, unknown>>): Promise<DbManager> {
  const manager = await DbManager.create({ health_check_interval: 0, retry_attempts: 1, connections } as DbManagerConfigInput);
  managers.push(manager);
  return manager;
}

const spans = (name?: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name);
const ofConnection = (connection: string) => spans().filter((s) => s.attributes['dbmanager.connection.name'] === connection);
/** Everything a span could leak through: name, attributes, status, events. */
const everything = () => JSON.stringify(spans().map((s) => ({ n: s.name, a: s.attributes, st: s.status, e: s.events })));
const port = Number(new URL(postgresUrl).port);

describe('OpenTelemetry spans (enable_tracing)', () => {
  it('traces connect with the connection attributes, and nothing for a connection without enable_tracing', async () => {
    await start({ traced: { type: 'postgres', dsn: postgresUrl, enable_tracing: true }, plain: { type: 'postgres', dsn: postgresUrl } });
    const [connect] = spans('dbmanager.connect');
    expect(spans('dbmanager.connect')).toHaveLength(1);
    expect(connect.instrumentationScope.name).toBe(TRACER_NAME);
    expect(connect.attributes).toEqual({
      'db.system.name': 'postgresql',
      'db.namespace': 'test',
      'server.address': '127.0.0.1',
      'server.port': port,
      'dbmanager.connection.name': 'traced',
    });
    expect(connect.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(ofConnection('plain')).toEqual([]);
  });

  it(`makes one CLIENT span per query through EM, ${QUERY_BUILDER} and the native client, named after the operation, with no bound value`, async () => {
    const manager = await start({ traced: { type: 'postgres', dsn: postgresUrl, enable_tracing: true } });
    const db = manager.get('traced');
    exporter.reset();
    await db.em.fork().getConnection().execute('insert into trace_accounts (login, password) values (?, ?)', ['alice', 'em-secret-1']);
    await sqlRunner(db).select('trace_accounts', 'login', { password: 'knex-secret-2' });
    await builderQuery(db, "select login from trace_accounts where password = 'literal-secret-3'");
    await db.withNativeClient((client: pg.Client) => client.query('update trace_accounts set password = $1 where login = $2', ['native-secret-4', 'alice']));
    await db.withNativeClient((client: pg.Client) => new Promise((resolve, reject) => client.query('delete from trace_accounts where password = $1', ['native-secret-5'], (e, r) => (e ? reject(e) : resolve(r)))));

    expect(spans().map((s) => [s.name, s.attributes['db.query.summary']])).toEqual([
      ['INSERT', 'INSERT trace_accounts'],
      ['SELECT', 'SELECT trace_accounts'],
      ['SELECT', 'SELECT trace_accounts'],
      ['UPDATE', 'UPDATE trace_accounts'],
      ['DELETE', 'DELETE trace_accounts'],
    ]);
    for (const span of spans()) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.attributes).toMatchObject({
        'db.system.name': 'postgresql',
        'db.namespace': 'test',
        'server.address': '127.0.0.1',
        'server.port': port,
        'dbmanager.connection.name': 'traced',
        'db.operation.name': span.name,
      });
      expect(span.attributes['db.query.text']).toBeUndefined();
    }
    const text = everything();
    for (const secret of ['em-secret-1', 'knex-secret-2', 'literal-secret-3', 'native-secret-4', 'native-secret-5', 'alice', pgPassword]) {
      expect(text).not.toContain(secret);
    }
  });

  it('nests query spans under the caller’s active span, and ends them when the query ends', async () => {
    const manager = await start({ traced: { type: 'postgres', dsn: postgresUrl, enable_tracing: true } });
    const db = manager.get('traced');
    exporter.reset();
    const tracer = trace.getTracer('test');
    const parent = await tracer.startActiveSpan('GET /report', async (span: Span) => {
      await Promise.all([builderQuery(db, 'select pg_sleep(0.05)'), db.withNativeClient((c: pg.Client) => c.query('select pg_sleep(0.05)'))]);
      await db.em.fork().transactional((em) => em.getConnection().execute('select 1'));
      span.end();
      return span.spanContext();
    });
    const queries = spans('SELECT');
    expect(queries).toHaveLength(3);
    for (const q of queries) {
      expect(q.parentSpanContext?.spanId).toBe(parent.spanId);
      expect(q.spanContext().traceId).toBe(parent.traceId);
    }
    const sleeping = queries.filter((q) => q.duration[0] * 1e3 + q.duration[1] / 1e6 >= 45);
    expect(sleeping).toHaveLength(2);
  });

  it('marks a failed query with its SQLSTATE only, never the message (which quotes the statement)', async () => {
    const manager = await start({ traced: { type: 'postgres', dsn: postgresUrl, enable_tracing: true } });
    exporter.reset();
    // Knex (MikroORM 6) quotes the whole statement in its error, pg through Kysely (7) the relation it names.
    const quoted = MIKRO_ORM_MAJOR === 6 ? /error-secret-6/ : /no_such_table/;
    await expect(builderQuery(manager.get('traced'), "select * from no_such_table where password = 'error-secret-6'")).rejects.toThrow(quoted);
    const [failed] = spans('SELECT');
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(failed.attributes['error.type']).toBe('42P01');
    expect(failed.attributes['db.response.status_code']).toBe('42P01');
    expect(everything()).not.toContain('error-secret-6');
  });

  it('traces health checks and reconnect attempts, up and down, without the password', async () => {
    const refused = await freePort();
    const manager = await start({
      traced: { type: 'postgres', dsn: postgresUrl, enable_tracing: true },
      away: { type: 'postgres', dsn: `postgres://app:pw-in-dsn-7@127.0.0.1:${refused}/nowhere`, enable_tracing: true, critical: false, connect_timeout: '1s' },
    });
    const away = spans('dbmanager.connect').find((s) => s.attributes['dbmanager.connection.name'] === 'away')!;
    expect(away.status.code).toBe(SpanStatusCode.ERROR);
    expect(away.attributes['error.type']).toBe('ECONNREFUSED');
    expect(away.attributes).toMatchObject({ 'db.namespace': 'nowhere', 'server.port': refused });
    exporter.reset();

    await manager.healthCheck();
    const checks = spans('dbmanager.health_check');
    const up = checks.find((s) => s.attributes['dbmanager.connection.name'] === 'traced')!;
    const down = checks.find((s) => s.attributes['dbmanager.connection.name'] === 'away')!;
    expect(up.attributes['dbmanager.health.status']).toBe('up');
    expect(up.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(down.attributes['dbmanager.health.status']).toBe('down');
    expect(down.status).toMatchObject({ code: SpanStatusCode.ERROR, message: expect.stringContaining('ECONNREFUSED') });

    exporter.reset();
    expect(await manager.get('away').reconnect()).toBe(false);
    const [attempt] = spans('dbmanager.reconnect');
    expect(attempt.attributes['dbmanager.reconnect.result']).toBe('failure');
    expect(spans('dbmanager.health_check')[0].parentSpanContext?.spanId).toBe(attempt.spanContext().spanId);
    expect(everything()).not.toContain('pw-in-dsn-7');
  });

  it(`traces SQLite through EM, ${QUERY_BUILDER} and the native client (${MIKRO_ORM_MAJOR === 7 ? 'better-sqlite3' : 'sqlite3'})`, async () => {
    const filepath = join(dir, 'traced.db');
    const manager = await start({ lite: { type: 'sqlite', filepath, enable_tracing: true } });
    const db = manager.get('lite');
    await builderQuery(db, 'create table if not exists notes (body text)');
    exporter.reset();
    await db.em.fork().getConnection().execute('insert into notes (body) values (?)', ['sqlite-secret-8']);
    await sqlRunner(db).delete('notes', { body: 'sqlite-secret-9' });
    await db.withNativeClient((client) => nativeClientQuery('sqlite', client, 'select body from notes where body = ?', ['sqlite-secret-10']));
    expect(spans().map((s) => s.attributes['db.query.summary'])).toEqual(['INSERT notes', 'DELETE notes', 'SELECT notes']);
    expect(spans()[0].attributes).toMatchObject({ 'db.system.name': 'sqlite', 'db.namespace': filepath, 'dbmanager.connection.name': 'lite' });
    expect(spans()[0].attributes['server.address']).toBeUndefined();
    expect(everything()).not.toMatch(/sqlite-secret/);
  });

  it.skipIf(onlyOnMikroOrm(6, "Knex's query events (on 7 every statement passes the pool's pg Client subclass, which finds a transaction's client)"))(
    'attaches no Knex query listener when tracing and logging are off (nothing on the query path)',
    async () => {
      const manager = await start({ traced: { type: 'postgres', dsn: postgresUrl, enable_tracing: true }, plain: { type: 'postgres', dsn: postgresUrl } });
      const listeners = (c: DbConnection) =>
        (['query', 'query-response', 'query-error'] as const).map((e) => c.knex<{ listenerCount(event: string): number }>().listenerCount(e));
      const [plainQuery, plainResponse, plainError] = listeners(manager.get('plain'));
      expect(listeners(manager.get('traced'))).toEqual([plainQuery + 1, plainResponse + 1, plainError + 1]);
      // MikroORM's own no-op 'query' listener is all there is.
      expect(plainResponse + plainError).toBe(0);
    },
  );

  it.skipIf(onlyOnMikroOrm(7, "better-sqlite3's prepare (MikroORM 6 runs SQLite on sqlite3 in a knex pool)"))(
    "leaves SQLite's prepare alone when tracing and logging are off (nothing on the query path)",
    async () => {
      const manager = await start({ traced: { type: 'sqlite', filepath: ':memory:', enable_tracing: true }, plain: { type: 'sqlite', filepath: ':memory:' } });
      const prepareOf = (name: string) =>
        manager.get(name).withNativeClient((db: { prepare: unknown }) => ({ own: db.prepare, prototype: (Object.getPrototypeOf(db) as { prepare: unknown }).prepare }));
      const plain = await prepareOf('plain');
      expect(plain.own).toBe(plain.prototype);
      const traced = await prepareOf('traced');
      expect(traced.own).not.toBe(traced.prototype);
    },
  );

  it('makes no span for a connection without enable_tracing, whichever path its queries take', async () => {
    const manager = await start({ traced: { type: 'postgres', dsn: postgresUrl, enable_tracing: true }, plain: { type: 'postgres', dsn: postgresUrl } });
    exporter.reset();
    await builderQuery(manager.get('plain'), 'select 1');
    await manager.get('plain').withNativeClient((c: pg.Client) => c.query('select 1'));
    await manager.get('plain').em.fork().getConnection().execute('select 1');
    expect(spans()).toEqual([]);
  });

});
