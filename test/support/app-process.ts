import { type ChildProcess, spawn } from 'node:child_process';

/** A Node.js app started as a child process, the way a user runs it, reachable over HTTP once it printed its URL. */
export interface AppProcess {
  /** `http://127.0.0.1:<port>`, read from the app's "listening on …" line. */
  readonly baseUrl: string;
  /** From spawn to that line. */
  readonly bootMs: number;
  readonly pid: number;
  /** Everything the app wrote so far (stdout and stderr, interleaved). */
  output(): string;
  /** Sends `signal` and resolves when the process has exited (SIGKILL and a rejection after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<AppExit>;
  /** SIGKILL if still running; for afterAll after a failed test. */
  kill(): void;
}

export interface AppExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From the signal to the exit. */
  ms: number;
}

export interface StartAppOptions {
  /** Arguments to `node`, e.g. `['sample-app/dist/main.js']`. */
  args: string[];
  cwd: string;
  /** Added to (and overriding) the test process' environment. */
  env?: Record<string, string | undefined>;
  /** How long to wait for the "listening on" line. */
  timeoutMs?: number;
}

const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;

/** Spawns `node <args>` and resolves once it printed `listening on http://127.0.0.1:<port>`; rejects with its output if it exits or times out first. */
export function startApp(opts: StartAppOptions): Promise<AppProcess> {
  const started = performance.now();
  const child = spawn(process.execPath, opts.args, {
    cwd: opts.cwd,
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise<AppProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${opts.args.join(' ')} printed no "listening on" line within ${opts.timeoutMs ?? 30_000} ms:\n${output}`));
    }, opts.timeoutMs ?? 30_000);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = LISTENING.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stdout.on('data', (more: Buffer) => (output += more.toString()));
      resolve(handle(child, match[1], performance.now() - started, () => output, exited));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`node ${opts.args.join(' ')} exited (code ${code}, signal ${signal}) before listening:\n${output}`));
    });
  });
}

function handle(
  child: ChildProcess,
  baseUrl: string,
  bootMs: number,
  output: () => string,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
): AppProcess {
  return {
    baseUrl,
    bootMs,
    pid: child.pid!,
    output,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<AppExit> {
      const sent = performance.now();
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`still running ${timeoutMs} ms after ${signal}:\n${output().slice(-3000)}`));
        }, timeoutMs);
        timer.unref();
      });
      try {
        const result = await Promise.race([exited, timedOut]);
        return { ...result, ms: performance.now() - sent };
      } finally {
        clearTimeout(timer);
      }
    },
    kill(): void {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
