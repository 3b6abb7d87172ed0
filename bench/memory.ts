import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { TestPostgres } from '../test/support/embedded-postgres';
import type { MemoryReading, MemoryVariant } from './memory-child';
import type { Report } from './support/report';
import { mb, median } from './support/stats';
import { interleave } from './support/timing';

// Section 6: resident memory of a process holding 50 idle PostgreSQL connections, each variant in its own child process.

const N = 50;
const VARIANTS: MemoryVariant[] = ['ours', 'mikroorm', 'pg'];
const LABELS: Record<MemoryVariant, string> = {
  ours: `ours: \`DbManager.create\`, ${N} named connections`,
  mikroorm: `plain MikroORM: ${N} \`MikroORM.init\``,
  pg: `${N} bare \`pg.Client\``,
};

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

interface Measured extends MemoryReading {
  serverConnections: number;
}

/** Starts the child, waits for its reading, counts the server connections it holds, then kills it. */
async function measureChild(variant: MemoryVariant, server: TestPostgres): Promise<Measured> {
  const already = await server.countConnections();
  const script = join(__dirname, 'memory-child.js');
  const child = spawn(process.execPath, ['--expose-gc', script, variant, server.url, String(N)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<Measured>((resolve, reject) => {
    let stdout = '';
    child.stdout.on('data', async (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!stdout.includes('\n')) return;
      try {
        const reading = JSON.parse(stdout.split('\n')[0]!) as MemoryReading;
        const serverConnections = (await server.countConnections()) - already;
        resolve({ ...reading, serverConnections });
      } catch (error) {
        reject(error);
      } finally {
        child.kill('SIGKILL');
      }
    });
    child.once('exit', (code) => reject(new Error(`memory child (${variant}) exited with ${code}: ${stderr.trim()}`)));
  }).finally(() => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()))));
}

export async function memory(report: Report, server: TestPostgres, settings: { rounds: number }): Promise<void> {
  const results = await interleave(settings.rounds, VARIANTS, (variant) => measureChild(variant, server));
  report.section(
    '6. Memory',
    `Resident set size of a fresh Node process (\`--expose-gc\`, after GC) holding ${N} idle PostgreSQL connections, median of ` +
      `${settings.rounds} runs per variant (interleaved). "Before" is after loading the variant's modules and opening and closing one connection (so one-time initialisation is not counted per connection). ` +
      'Server connections: the rise in `pg_stat_activity` while the process held them. Lower is better.',
  );
  const pgRss = median(results.pg.map((r) => r.rssAfter));
  report.table({
    headers: ['process', 'RSS before', 'RSS with connections', 'RSS per connection', 'JS heap per connection', 'server connections', 'RSS ÷ bare pg'],
    rows: VARIANTS.map((variant) => {
      const r = results[variant];
      const before = median(r.map((x) => x.rssBefore));
      const after = median(r.map((x) => x.rssAfter));
      return [
        LABELS[variant],
        mb(before),
        mb(after),
        kib(median(r.map((x) => x.rssAfter - x.rssBefore)) / N),
        kib(median(r.map((x) => x.heapAfter - x.heapBefore)) / N),
        String(median(r.map((x) => x.serverConnections))),
        `${(after / pgRss).toFixed(2)}×`,
      ];
    }),
    numeric: [1, 2, 3, 4, 5, 6],
  });
  const rss = (v: MemoryVariant) => median(results[v].map((r) => r.rssAfter));
  const perConn = (v: MemoryVariant) => kib(median(results[v].map((r) => r.rssAfter - r.rssBefore)) / N);
  report.summary(
    `RSS of a process with ${N} idle connections, lower is better`,
    `${mb(rss('ours'))} (${perConn('ours')} per connection)`,
    `plain MikroORM ${mb(rss('mikroorm'))} (${perConn('mikroorm')}); bare pg ${mb(rss('pg'))} (${perConn('pg')})`,
    `${(rss('ours') / rss('mikroorm')).toFixed(2)}× plain MikroORM`,
  );
}
