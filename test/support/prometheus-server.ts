import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { untilChildReady } from './child-ready';
import { freePort } from './free-port';

/**
 * A real Prometheus server (Debian's `prometheus` package, 2.42) for one test: temporary storage, a free port,
 * scraping the given targets every second and evaluating the given rule files every second.
 */

/** One series of an instant query's answer. */
export interface PromSeries {
  metric: Record<string, string>;
  /** The sample value as Prometheus writes it (`"NaN"` included). */
  value: string;
}

export interface PrometheusServer {
  readonly url: string;
  /** An instant query at the current time; rejects with Prometheus' error (a bad expression, say). */
  query(expr: string): Promise<PromSeries[]>;
  /** GET an API path (e.g. `/api/v1/rules`) and return its `data`. */
  api<T>(path: string): Promise<T>;
  /** Everything the server wrote so far. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartPrometheusOptions {
  /** `host:port` of each target of the one scrape job. */
  targets: string[];
  job: string;
  /** Absolute paths of rule files to load. */
  ruleFiles?: string[];
}

/** Why the Prometheus tests cannot run here, or undefined when `prometheus` and `promtool` are both installed. */
export function prometheusSkipReason(): string | undefined {
  const missing = ['prometheus', 'promtool'].filter((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).error);
  return missing.length ? `${missing.join(' and ')} not installed (CI installs Debian's prometheus package: apt-get install prometheus)` : undefined;
}

/** Runs `promtool <args>` with `input` on stdin: its exit code and combined output (a non-zero exit is not thrown). */
export function promtool(args: string[], input?: string, cwd?: string): { code: number | null; output: string } {
  const result = spawnSync('promtool', args, { input, cwd, encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw result.error;
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

export async function startPrometheus(opts: StartPrometheusOptions): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'dbm-prometheus-'));
  const port = await freePort();
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(
    configFile,
    JSON.stringify({
      // Scrape timeout must not exceed the interval.
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: opts.ruleFiles ?? [],
      scrape_configs: [{ job_name: opts.job, static_configs: [{ targets: opts.targets }] }],
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server = handle(child, url, () => output, exited, dir);
  try {
    await waitReady(url, child, () => output);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const ready = () => fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false);
  return untilChildReady(child, ready, { timeoutMs: 20_000, what: 'prometheus', output });
}

function handle(child: ChildProcess, url: string, output: () => string, exited: Promise<void>, dir: string): PrometheusServer {
  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(url + path, { signal: AbortSignal.timeout(10_000) });
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? response.status}`);
    return body.data;
  };
  return {
    url,
    api,
    output,
    async query(expr: string): Promise<PromSeries[]> {
      const data = await api<{ resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      if (data.resultType !== 'vector') throw new Error(`${expr}: a ${data.resultType}, not an instant vector`);
      return data.result.map((r) => ({ metric: r.metric, value: r.value[1] }));
    },
    async stop(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
