import { Logger } from '@nestjs/common';
import pg from 'pg';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { AcquireTimeoutError, ConnectionFailedError, type DbConnection, DbManager, type DbManagerConfigInput } from '../../lib';
import { LogCapture } from '../support/health-app';
import { builderQuery, QUERY_BUILDER } from '../support/mikro-orm-leg';
import { peakBackendsDuring } from '../support/pg-activity';

// The server's connection limit (SQLSTATE 53300), reached through a role's CONNECTION LIMIT on the run's PostgreSQL:
// the same refusal as max_connections ("too many clients already") without filling the whole server. A limit can
// free up, so it is retried and callers wait; a rotated password cannot, so callers fail at once.
const url = inject('postgresUrl');
const ROLE_PASSWORD = 'limited-secret';
let seq = 0;
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function admin<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, application_name: 'dbm-test-admin' });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A login role allowed `limit` connections; removed (its backends terminated) after the test. */
async function limitedRole(limit: number): Promise<{ role: string; url: string }> {
  const role = `dbm_limited_${process.pid}_${++seq}`;
  await admin(`create role ${role} login password '${ROLE_PASSWORD}' connection limit ${limit}`);
  cleanups.push(async () => {
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`);
    await vi.waitFor(async () => expect(await admin(`select 1 from pg_stat_activity where usename = '${role}'`)).toEqual([]), { timeout: 5_000 });
    await admin(`drop role ${role}`);
  });
  const u = new URL(url);
  u.username = role;
  u.password = ROLE_PASSWORD;
  return { role, url: u.toString() };
}

/** `count` connections held by the test itself (so the role's limit is reached); released by the returned function. */
async function occupy(roleUrl: string, count: number): Promise<() => Promise<void>> {
  const clients = await Promise.all(
    Array.from({ length: count }, async () => {
      const client = new pg.Client({ connectionString: roleUrl, application_name: 'dbm-test-occupier' });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    }),
  );
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await Promise.all(clients.map((c) => c.end()));
  };
  cleanups.push(release);
  return release;
}

async function manager(config: DbManagerConfigInput): Promise<DbManager> {
  const m = await DbManager.create(config);
  cleanups.push(() => m.close());
  return m;
}

/** One query through each access path the connection offers, each needing a pooled connection. */
function throughEveryPath(db: DbConnection, sql: string): Promise<unknown>[] {
  return [
    db.em.fork().getConnection().execute(sql),
    builderQuery(db, sql),
    db.withNativeClient((client: pg.Client) => client.query(sql)),
  ];
}

describe('PostgreSQL at its connection limit (53300)', () => {
  it('retries a startup refused by the limit, and the final error says the cause could pass', async () => {
    const { url: roleUrl } = await limitedRole(1);
    await occupy(roleUrl, 1);
    const error = await DbManager.create({
      retry_attempts: 3,
      retry_delay: '50ms',
      retry_max_delay: '100ms',
      connections: { limited: { type: 'postgres', dsn: roleUrl } },
    }).then(
      () => new Error('startup should have failed'),
      (e: unknown) => e as Error,
    );
    console.log(`[limit] startup at the role's connection limit: ${error.message}`);
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect((error as ConnectionFailedError).attempts).toBe(3);
    expect((error as ConnectionFailedError).retryable).toBe(true);
    expect(error.message).toMatch(/failed after 3 attempts: too many connections for role .* \(53300\)\. This error can pass/);
    expect(error.message).not.toContain(ROLE_PASSWORD);
  });

  it('connects once the server frees a slot while startup is still retrying', async () => {
    const { url: roleUrl } = await limitedRole(1);
    const release = await occupy(roleUrl, 1);
    const logs = new LogCapture();
    Logger.overrideLogger(logs);
    const starting = manager({ retry_attempts: 10, retry_delay: '100ms', retry_max_delay: '200ms', connections: { limited: { type: 'postgres', dsn: roleUrl } } });
    await logs.logged('DbManager', /"limited" attempt 1 failed \(too many connections for role/);
    await release();
    const m = await starting;
    expect(m.get('limited').status).toBe('up');
    expect(await builderQuery(m.get('limited'), 'select 1 as one')).toEqual([{ one: 1 }]);
  });

  it('60 waiting queries share the connections the server allows instead of failing with "too many connections"', async () => {
    const LIMIT = 3;
    const { url: roleUrl } = await limitedRole(LIMIT);
    const app = `dbm-limit-${process.pid}-${seq}`;
    const m = await manager({
      connections: { limited: { type: 'postgres', dsn: roleUrl, application_name: app, max_open_conns: 10, acquire_timeout: '5s' } },
    });
    const db = m.get('limited');
    const started = performance.now();
    const jobs = Array.from({ length: 60 }, (_, i) => throughEveryPath(db, 'select pg_sleep(0.05)')[i % 3]!.then(
      () => 'ok',
      (error: Error) => error.message,
    ));
    const peak = await peakBackendsDuring(url, app, Promise.all(jobs));
    const outcomes = await Promise.all(jobs);
    const failed = outcomes.filter((o) => o !== 'ok');
    console.log(
      `[limit] 60 queries (EM, ${QUERY_BUILDER}, native) on a pool of 10 whose role may open ${LIMIT}: ${failed.length} failed, ` +
        `${Math.round(performance.now() - started)} ms, peak ${peak} server connections`,
    );
    expect(failed).toEqual([]);
    expect(peak).toBeLessThanOrEqual(LIMIT);
    // Every connection comes back (a release may land a tick after its caller's promise settled).
    await vi.waitFor(() => expect(db.stats()).toMatchObject({ status: 'up', inUse: 0, pending: 0, timeouts: 0 }));
  });

  it('fails waiting callers at acquire_timeout with AcquireTimeoutError, the 53300 refusal as its cause, on every path', async () => {
    const ACQUIRE_TIMEOUT_MS = 1_000;
    const { url: roleUrl } = await limitedRole(2);
    const m = await manager({
      connections: { limited: { type: 'postgres', dsn: roleUrl, max_open_conns: 4, acquire_timeout: ACQUIRE_TIMEOUT_MS } },
    });
    const db = m.get('limited');
    // The pool's one connection is busy, and the test takes the role's last slot: new connections are refused.
    const busy = builderQuery(db, 'select pg_sleep(3)');
    await vi.waitFor(() => expect(db.stats().inUse).toBe(1));
    await occupy(roleUrl, 1);

    const started = performance.now();
    const errors = await Promise.all(throughEveryPath(db, 'select 1').map((p) => p.then(() => undefined, (e: unknown) => e as Error)));
    const ms = Math.round(performance.now() - started);
    console.log(`[limit] EM, ${QUERY_BUILDER} and native waiting on a refused pool: failed after ${ms} ms with: ${errors[0]?.message}`);
    for (const error of errors) {
      expect(error).toBeInstanceOf(AcquireTimeoutError);
      expect(error!.name).toBe('AcquireTimeoutError');
      expect((error as AcquireTimeoutError).connectionName).toBe('limited');
      expect(error!.message).toMatch(/^Connection "limited": timed out after 1000 ms \(acquire_timeout\) waiting for a pooled connection; the pool could not open new ones meanwhile: too many connections for role .* \(53300\)\. Check the server's connection limit/);
      expect((error!.cause as { code?: string }).code).toBe('53300');
    }
    expect(ms).toBeGreaterThanOrEqual(ACQUIRE_TIMEOUT_MS - 20);
    expect(ms).toBeLessThan(ACQUIRE_TIMEOUT_MS + 1_000);
    expect(db.stats().timeouts).toBe(3);
    await busy;
  });

  it('a critical: false connection refused by the limit at startup comes up by itself once the server has room', async () => {
    const { url: roleUrl } = await limitedRole(1);
    const release = await occupy(roleUrl, 1);
    const m = await manager({
      health_check_interval: '200ms',
      retry_delay: '50ms',
      retry_max_delay: '200ms',
      connections: { tenant: { type: 'postgres', dsn: roleUrl, critical: false } },
    });
    const tenant = m.get('tenant');
    expect(tenant.stats()).toMatchObject({ status: 'down' });
    expect(tenant.stats().lastError).toMatch(/too many connections for role .* \(53300\)/);
    await release();
    await vi.waitFor(() => expect(tenant.status).toBe('up'), { timeout: 3_000 });
    expect(await builderQuery(tenant, 'select 1 as one')).toEqual([{ one: 1 }]);
  });
});

describe('PostgreSQL: a permanent connect error', () => {
  it('fails every waiting caller at once (rotated password), not one per failed connect and not at acquire_timeout', async () => {
    const { role, url: roleUrl } = await limitedRole(-1);
    const m = await manager({
      health_check_interval: 0,
      connections: { rotated: { type: 'postgres', dsn: roleUrl, max_open_conns: 2, acquire_timeout: '10s' } },
    });
    const db = m.get('rotated');
    await admin(`alter role ${role} password 'rotated-elsewhere'`);
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`);
    await vi.waitFor(() => expect(db.stats().open).toBe(0), { timeout: 3_000 });

    const started = performance.now();
    const outcomes = await Promise.all(Array.from({ length: 30 }, () => builderQuery(db, 'select 1').then(() => undefined, (e: unknown) => e as Error & { code?: string })));
    const ms = Math.round(performance.now() - started);
    console.log(`[limit] 30 callers after a password rotation: all failed in ${ms} ms (acquire_timeout 10 s) with: ${outcomes[0]?.message}`);
    for (const error of outcomes) {
      expect(error).toBeInstanceOf(Error);
      expect(error!.code).toBe('28P01');
    }
    expect(ms).toBeLessThan(1_000);
  });
});
