import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { buildIfStale, REPO_ROOT } from '../support/build-once';
import { freePort } from '../support/free-port';

// A critical connection that cannot connect at startup must end the process with exit code 1 and the
// ConnectionFailedError printed, within the retry budget + 2 s — not exit 0 during a backoff. Only a process of its
// own shows that (Vitest's workers keep the event loop alive), so each program runs as a user runs it, in a child.
const ATTEMPTS = 3;
// Backoffs (random up to 1 s) longer than anything else that happens to keep the loop alive for a moment (tarn's
// 200 ms create-retry timer): with the backoff timer unref'd, the process then exits 0 in the middle of startup.
const RETRY_DELAY_MS = 1_000;
const RETRY_MAX_DELAY_MS = 1_000;
const CONNECT_TIMEOUT_MS = 500;
/** Every attempt may take connect_timeout, and each backoff is at most min(max, delay × 2^n). */
const RETRY_BUDGET_MS =
  ATTEMPTS * CONNECT_TIMEOUT_MS + Array.from({ length: ATTEMPTS - 1 }, (_, n) => Math.min(RETRY_MAX_DELAY_MS, RETRY_DELAY_MS * 2 ** n)).reduce((a, b) => a + b, 0);
const SLACK_MS = 2_000;

const postgresUrl = inject('postgresUrl');
const WRONG_PASSWORD = 'not-the-password-4711';
const dir = mkdtempSync(join(tmpdir(), 'dbm-startup-exit-'));
let blackHole: Server;
const swallowed = new Set<Socket>();

beforeAll(async () => {
  await buildIfStale();
  // Accepts and never answers; reading keeps it noticing the client's FIN (no CLOSE_WAIT sockets).
  blackHole = createServer((socket) => {
    swallowed.add(socket);
    socket.resume();
    socket.on('error', () => undefined);
    socket.once('close', () => swallowed.delete(socket));
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
}, 180_000);

afterAll(async () => {
  for (const socket of swallowed) socket.destroy();
  await new Promise((resolve) => blackHole?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

interface Fault {
  name: string;
  /** The failing connection's DSN. */
  dsn(): Promise<string>;
  attempts: number;
  cause: RegExp;
}

const FAULTS: Fault[] = [
  { name: 'a refused port', dsn: async () => `postgres://app:${WRONG_PASSWORD}@127.0.0.1:${await freePort()}/app`, attempts: ATTEMPTS, cause: /ECONNREFUSED/ },
  {
    name: 'a black hole',
    dsn: async () => {
      const address = blackHole.address() as { port: number };
      return `postgres://app:${WRONG_PASSWORD}@127.0.0.1:${address.port}/app`;
    },
    attempts: ATTEMPTS,
    cause: /timed out|timeout/i,
  },
  {
    name: 'a wrong password',
    dsn: async () => {
      const url = new URL(postgresUrl);
      url.password = WRONG_PASSWORD;
      return url.toString();
    },
    attempts: 1,
    cause: /password authentication failed.*28P01/,
  },
];

function managerConfig(connections: Record<string, unknown>): Record<string, unknown> {
  return {
    retry_attempts: ATTEMPTS,
    retry_delay: `${RETRY_DELAY_MS}ms`,
    retry_max_delay: `${RETRY_MAX_DELAY_MS}ms`,
    health_check_interval: 0,
    connections,
  };
}

interface Program {
  name: string;
  /** Marks the moment startup begins (after the modules loaded), from which the budget counts. */
  startMarker: RegExp;
  run(failingDsn: string): { args: string[]; env: Record<string, string> };
}

const PROGRAMS: Program[] = [
  {
    name: 'a bare Nest app (NestFactory.create + DbManagerModule.forRoot)',
    startMarker: /Starting Nest application/,
    run: (dsn) => ({
      args: ['test/fixtures/startup/nest-app.cjs'],
      env: { DBM_TEST_CONFIG: JSON.stringify(managerConfig({ primary: { type: 'postgres', dsn, connect_timeout: CONNECT_TIMEOUT_MS } })) },
    }),
  },
  {
    name: 'a DbManager.create() script',
    startMarker: /creating the manager/,
    run: (dsn) => ({
      args: ['test/fixtures/startup/create-script.cjs'],
      env: { DBM_TEST_CONFIG: JSON.stringify(managerConfig({ primary: { type: 'postgres', dsn, connect_timeout: CONNECT_TIMEOUT_MS } })) },
    }),
  },
  {
    name: 'the sample app on an all-PostgreSQL config',
    startMarker: /Starting Nest application/,
    run: (dsn) => {
      const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
      // Both down: an analytics connection that was up would hold the event loop open with its pooled socket.
      const connections = {
        primary: { type: 'postgres', dsn, connect_timeout: `${CONNECT_TIMEOUT_MS}ms` },
        analytics: { type: 'postgres', dsn, connect_timeout: `${CONNECT_TIMEOUT_MS}ms`, critical: false },
      };
      writeFileSync(file, stringify({ dbmanager: { default_connection: 'primary', ...managerConfig(connections) } }));
      return { args: ['sample-app/dist/main.js'], env: { DBM_CONFIG: file, PORT: '0' } };
    },
  },
];

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  /** From the start marker to the exit. */
  ms: number;
}

/** Runs `node <args>` from the repository root to its exit (SIGKILL after 30 s). */
function runToExit(args: string[], env: Record<string, string>, startMarker: RegExp): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let startedAt: number | undefined;
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (startedAt === undefined && startMarker.test(output)) startedAt = performance.now();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, output, ms: startedAt === undefined ? Number.NaN : performance.now() - startedAt });
    });
  });
}

describe.each(PROGRAMS)('$name, whose critical connection cannot connect', (program) => {
  it.each(FAULTS)('exits 1 with the ConnectionFailedError printed, within the retry budget + 2 s: $name', async (fault) => {
    const { args, env } = program.run(await fault.dsn());
    const exit = await runToExit(args, env, program.startMarker);
    console.log(
      `[startup-exit] ${program.name}, ${fault.name}: exit code ${exit.code} after ${Math.round(exit.ms)} ms ` +
        `(budget ${RETRY_BUDGET_MS} ms + ${SLACK_MS} ms); last line: ${exit.output.trim().split('\n').filter((l) => /ConnectionFailedError/.test(l))[0] ?? '(none)'}`,
    );
    expect(exit.signal).toBeNull();
    expect(exit.code, exit.output.slice(-3000)).toBe(1);
    expect(exit.output).toMatch(/ConnectionFailedError/);
    expect(exit.output).toMatch(new RegExp(`Connection "primary" \\(.*\\) failed after ${fault.attempts} attempts?: `));
    expect(exit.output).toMatch(fault.cause);
    expect(exit.output).not.toContain(WRONG_PASSWORD);
    expect(exit.output).not.toMatch(/started and closed|created and closed|listening on/);
    expect(exit.ms).toBeLessThan(RETRY_BUDGET_MS + SLACK_MS);
  });
});
