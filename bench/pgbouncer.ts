import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DbManager, mikroOrmVersion } from '../lib';
import { freePort } from '../test/support/free-port';
import type { Report } from './support/report';

// Section: behind a real PgBouncer (transaction mode, 5 server connections), ours (`pooler: pgbouncer`) against a bare
// `pg.Pool` of the same size through the same PgBouncer, same run, variants interleaved. Self-contained (it starts its
// own PgBouncer and runs its own closed loop) so it does not depend on the rest of the harness.

const POOL_MAX = 20;
const SERVER_CONNECTIONS = 5;
const CONCURRENCY = 50;
const BINARIES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

type Variant = 'bare' | 'oursNative' | 'oursNoTimeout' | 'oursBuilder';
const LABELS: Record<Variant, string> = {
  bare: '`pg.Pool` (max 20) `query`',
  oursNative: 'ours, `withNativeClient` → `query` (query_timeout 30s: a cancel timer per statement)',
  oursNoTimeout: 'ours, `withNativeClient` → `query`, `query_timeout: 0` (no timer)',
  oursBuilder: "ours, the running major's query builder (raw SQL)",
};

export async function pgbouncer(report: Report, server: { url: string }, settings: { rounds: number; cellMs: number }): Promise<void> {
  const binary = BINARIES.find((path) => existsSync(path));
  if (!binary) {
    console.log(`[bench] pgbouncer section skipped: pgbouncer is not installed (looked in ${BINARIES.join(', ')}; apt-get install -y pgbouncer)`);
    return;
  }
  const bouncer = await startPgBouncer(binary, server.url);
  const connection = { type: 'postgres', dsn: bouncer.url, pooler: 'pgbouncer', max_open_conns: POOL_MAX, max_idle_conns: POOL_MAX } as const;
  const manager = await DbManager.create({ connections: { timed: connection, untimed: { ...connection, query_timeout: 0 } } });
  const bare = new pg.Pool({ connectionString: bouncer.url, max: POOL_MAX });
  const sql = 'select 1 as one';
  const timed = manager.get('timed');
  const builder = mikroOrmVersion().major === 7 ? kyselyQuery(timed.kysely()) : knexQuery(timed.knex());
  const native = (name: string) => () => manager.get(name).withNativeClient((client: pg.PoolClient) => client.query(sql));
  const ops: Record<Variant, () => Promise<unknown>> = {
    bare: () => bare.query(sql),
    oursNative: native('timed'),
    oursNoTimeout: native('untimed'),
    oursBuilder: () => builder(sql),
  };
  const variants = Object.keys(ops) as Variant[];
  const results = new Map<Variant, Array<{ opsPerSec: number; cpuUs: number; errors: number }>>();
  try {
    for (const v of variants) await closedLoop(ops[v], CONCURRENCY, 300); // fills each pool, warms the JIT
    for (let round = 0; round < settings.rounds; round++) {
      for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
        results.set(v, [...(results.get(v) ?? []), await closedLoop(ops[v], CONCURRENCY, settings.cellMs)]);
      }
    }
  } finally {
    await manager.close();
    await bare.end();
    await bouncer.close();
  }

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const of = (v: Variant) => {
    const cells = results.get(v) ?? [];
    return { opsPerSec: median(cells.map((c) => c.opsPerSec)), cpuUs: median(cells.map((c) => c.cpuUs)), errors: cells.reduce((n, c) => n + c.errors, 0) };
  };
  const base = of('bare');
  report.section(
    'PgBouncer: ours behind it vs a bare pg.Pool behind it',
    `PgBouncer 1.18, transaction mode, \`default_pool_size\` ${SERVER_CONNECTIONS}, in front of the run's PostgreSQL; each pool max ${POOL_MAX}; ` +
      `${CONCURRENCY} callers in a closed loop running \`${sql}\`; ${settings.rounds} rounds × ${settings.cellMs} ms per variant, interleaved; medians. ` +
      'CPU is this process\'s user + system time per query (PgBouncer and PostgreSQL run beside it on the same cores).',
  );
  report.table({
    headers: ['variant', 'queries/s', 'vs bare', 'CPU µs/query', 'errors'],
    rows: variants.map((v) => {
      const r = of(v);
      return [LABELS[v], r.opsPerSec.toFixed(0), `${(r.opsPerSec / base.opsPerSec).toFixed(2)}×`, r.cpuUs.toFixed(0), String(r.errors)];
    }),
  });
  const ours = of('oursNative');
  report.summary('through PgBouncer, queries/s (native client)', ours.opsPerSec.toFixed(0), `${base.opsPerSec.toFixed(0)} (bare pg.Pool)`, `${(ours.opsPerSec / base.opsPerSec).toFixed(2)}×`);
}

/** `concurrency` callers run `op` back to back for `durationMs`: queries per second and this process' CPU per query. */
async function closedLoop(op: () => Promise<unknown>, concurrency: number, durationMs: number): Promise<{ opsPerSec: number; cpuUs: number; errors: number }> {
  let ops = 0;
  let errors = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const end = started + durationMs;
  const caller = async () => {
    while (performance.now() < end) {
      try {
        await op();
        ops++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const elapsed = performance.now() - started;
  const { user, system } = process.cpuUsage(cpu);
  return { opsPerSec: (ops / elapsed) * 1000, cpuUs: ops ? (user + system) / ops : Number.NaN, errors };
}

function kyselyQuery(kysely: unknown): (sql: string) => Promise<unknown> {
  const { sql: tag } = require('kysely') as { sql: { raw(sql: string): { execute(on: unknown): Promise<unknown> } } };
  return (sql) => tag.raw(sql).execute(kysely);
}

function knexQuery(knex: unknown): (sql: string) => Promise<unknown> {
  return (sql) => (knex as { raw(sql: string): Promise<unknown> }).raw(sql);
}

/** A PgBouncer on a free port in front of `serverUrl`, run as `postgres` (it refuses root), with its own files. */
async function startPgBouncer(binary: string, serverUrl: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = new URL(serverUrl);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'dbm-bench-pgbouncer-'));
  const file = (name: string) => join(dir, name);
  writeFileSync(
    file('pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port}`,
      '[pgbouncer]',
      `listen_addr = 127.0.0.1`,
      `listen_port = ${port}`,
      "unix_socket_dir = ''",
      'auth_type = scram-sha-256',
      `auth_file = ${file('userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${SERVER_CONNECTIONS}`,
      'max_client_conn = 500',
      `logfile = ${file('pgbouncer.log')}`,
      '',
    ].join('\n'),
  );
  writeFileSync(file('userlist.txt'), `"${decodeURIComponent(server.username)}" "${decodeURIComponent(server.password).replaceAll('"', '""')}"\n`);
  writeFileSync(file('pgbouncer.log'), '');
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
  for (const name of ['', 'pgbouncer.ini', 'userlist.txt', 'pgbouncer.log']) chownSync(file(name), uid, gid);
  const child = spawn(binary, ['-u', 'postgres', file('pgbouncer.ini')], { stdio: 'ignore' });
  const close = async () => {
    await stopped(child);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = performance.now() + 10_000;
  while (!(await accepts(port))) {
    if (performance.now() > deadline || child.exitCode !== null) {
      await close();
      throw new Error(`PgBouncer did not start on 127.0.0.1:${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const url = new URL(serverUrl);
  url.port = String(port);
  return { url: url.toString(), close };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => (socket.destroy(), resolve(false)));
  });
}

function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => (clearTimeout(timer), resolve()));
    child.kill('SIGINT');
  });
}
