import { Logger } from '@nestjs/common';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DbManager } from '../../lib';
import { LogCapture } from '../support/health-app';
import { builderQuery } from '../support/mikro-orm-leg';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

// A connection that goes down for one reason and stays down for another — a dropped network, then a rotated
// password; the backends terminated by a password rotation (57P01), then 28P01; a dropped database, then 3D000 —
// must say the lasting cause once, not only the one that came first, and not on every reconnect attempt.
const url = inject('postgresUrl');
const PASSWORD = 'rotating-secret';
let seq = 0;
let logs: LogCapture;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(() => {
  logs = new LogCapture();
  Logger.overrideLogger(logs);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  logs.lines.length = 0;
});

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'dbm-test-admin' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A login role (and, when asked, a database it owns), removed after the test. */
async function role(withDatabase = false): Promise<{ name: string; database: string }> {
  const name = `dbm_lasting_${process.pid}_${++seq}`;
  await admin(`create role ${name} login password '${PASSWORD}'`);
  if (withDatabase) await admin(`create database ${name} owner ${name}`);
  cleanups.push(async () => {
    await admin(`drop database if exists ${name} with (force)`);
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where usename = '${name}'`);
    await vi.waitFor(() => admin(`drop role ${name}`), { timeout: 5_000 });
  });
  return { name, database: withDatabase ? name : 'test' };
}

function dsn(user: string, database: string, address: { host: string; port: number }): string {
  return `postgres://${user}:${PASSWORD}@${address.host}:${address.port}/${database}`;
}

async function manager(connectionDsn: string): Promise<DbManager> {
  const m = await DbManager.create({
    health_check_interval: '200ms',
    retry_delay: '20ms',
    retry_max_delay: '100ms',
    connections: { app: { type: 'postgres', dsn: connectionDsn, max_open_conns: 4, connect_timeout: '1s', health_check_timeout: '1s' } },
  });
  cleanups.push(() => m.close());
  return m;
}

/** What the connection logged about being down, in order. */
const downLines = () => logs.matching('DbManager:app', /^is (still )?down/).map((l) => l.message);

/** Waits for `count` failed reconnect attempts from now. */
async function failedReconnects(m: DbManager, count: number): Promise<void> {
  let failures = 0;
  const off = m.get('app').on('reconnect', (result) => (failures += result === 'failure' ? 1 : 0));
  try {
    await vi.waitFor(() => expect(failures).toBeGreaterThanOrEqual(count), { timeout: 10_000 });
  } finally {
    off();
  }
}

describe('a connection that stays down for another reason than the one it went down for', () => {
  it('logs the new lasting cause once: the network went away, and came back to a rotated password (28P01)', async () => {
    const { name, database } = await role();
    const server = new URL(url);
    let proxy: TcpProxy = await startTcpProxy({ host: server.hostname, port: Number(server.port) });
    const port = proxy.port;
    cleanups.push(() => proxy.close());
    const m = await manager(dsn(name, database, proxy));

    await proxy.close(); // every socket drops, new connections are refused
    await vi.waitFor(() => expect(m.get('app').status).toBe('down'));
    await failedReconnects(m, 3);
    await admin(`alter role ${name} password 'rotated-elsewhere'`);
    proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port) }, { port });
    await failedReconnects(m, 5);

    const lines = downLines();
    console.log(`[fault:lasting-cause] network gone, then a rotated password: ${JSON.stringify(lines)}`);
    expect(lines[0]).toMatch(/^is down: .*(ECONNREFUSED|terminated|timed out)/);
    expect(lines.filter((l) => /28P01/.test(l))).toEqual([expect.stringMatching(/^is still down, now: password authentication failed for user ".*" \(28P01\)$/)]);
    expect(lines.at(-1)).toMatch(/28P01/);
    expect(m.stats().connections.app!.lastError).toMatch(/28P01/);
  });

  it('a password rotation that terminates the backends: the 28P01 that lasts is logged exactly once', async () => {
    const { name, database } = await role();
    const server = new URL(url);
    const m = await manager(dsn(name, database, { host: server.hostname, port: Number(server.port) }));
    await Promise.all(Array.from({ length: 4 }, () => builderQuery(m.get('app'), 'select pg_sleep(0.02)')));

    await admin(`alter role ${name} password 'rotated-elsewhere'`);
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where usename = '${name}'`);
    await vi.waitFor(() => expect(m.get('app').status).toBe('down'));
    await failedReconnects(m, 5);

    const lines = downLines();
    console.log(`[fault:lasting-cause] password rotated, backends terminated: ${JSON.stringify(lines)}`);
    expect(lines.filter((l) => /28P01/.test(l))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/password authentication failed .*\(28P01\)$/);
  });

  it('a dropped database: the 3D000 that lasts is logged exactly once', async () => {
    const { name, database } = await role(true);
    const server = new URL(url);
    const m = await manager(dsn(name, database, { host: server.hostname, port: Number(server.port) }));
    await Promise.all(Array.from({ length: 4 }, () => builderQuery(m.get('app'), 'select pg_sleep(0.02)')));

    await admin(`drop database ${database} with (force)`);
    await vi.waitFor(() => expect(m.get('app').status).toBe('down'));
    await failedReconnects(m, 5);

    const lines = downLines();
    console.log(`[fault:lasting-cause] database dropped: ${JSON.stringify(lines)}`);
    expect(lines.filter((l) => /3D000/.test(l))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/database ".*" does not exist \(3D000\)$/);
  });
});
