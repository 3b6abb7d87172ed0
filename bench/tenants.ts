import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { startTestPostgres } from '../test/support/embedded-postgres';
import type { TenantsReading } from './tenants-child';

/**
 * Many tenants, few active: declared 10 / 100 / 1000 lazy PostgreSQL tenants (idle_pool_timeout 5m), 50 of them used
 * (all of them when fewer are declared). Each case runs in a fresh process (tenants-child.ts), interleaved over the
 * rounds; RSS is compared with the same app with no connections, measured the same way. Prints a Markdown table.
 * Standalone: `npm run bench:tenants` (its own embedded PostgreSQL); also section `tenants` of `npm run bench`.
 */
export interface TenantsSettings {
  rounds: number;
  declared: number[];
  active: number;
}

export const TENANTS_DEFAULTS: TenantsSettings = { rounds: 3, declared: [10, 100, 1000], active: 50 };

/**
 * V8 grows its young generation under a burst of allocation (startup with a thousand tenants, scrapes) and keeps it
 * committed, empty, after: most of the RSS difference. The same case again with the young generation capped shows
 * what is retained.
 */
const CAPPED_YOUNG_GENERATION = '--max-semi-space-size=16';

function runChild<R>(url: string, declared: number, active: number, seq: number, mode = 'app', flags: string[] = []): R {
  const child = join(__dirname, 'tenants-child.js');
  const out = execFileSync(process.execPath, ['--expose-gc', ...flags, child, url, String(declared), String(active), `bench-tenant-${process.pid}-${seq}`, mode], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as R;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const f1 = (n: number) => n.toFixed(1);

/** Measures every case; returns the Markdown table (also printed). */
export async function tenants(server: { url: string }, settings: TenantsSettings = TENANTS_DEFAULTS): Promise<string> {
  const load = loadavg()[0];
  const byCase = new Map<number, TenantsReading[]>();
  const cappedRss = new Map<number, number[]>();
  let seq = 0;
  for (let round = 0; round < settings.rounds; round++) {
    for (const declared of [0, ...settings.declared]) {
      const reading = runChild<TenantsReading>(server.url, declared, settings.active, ++seq);
      if (declared > 0) reading.createMs = runChild<{ createMs: number }>(server.url, declared, settings.active, ++seq, 'create').createMs;
      byCase.set(declared, [...(byCase.get(declared) ?? []), reading]);
      const capped = runChild<TenantsReading>(server.url, declared, settings.active, ++seq, 'app', [CAPPED_YOUNG_GENERATION]);
      cappedRss.set(declared, [...(cappedRss.get(declared) ?? []), capped.rssMb]);
    }
  }
  const baseRss = median(byCase.get(0)!.map((r) => r.rssMb));
  const baseHeap = median(byCase.get(0)!.map((r) => r.heapMb));
  const baseCapped = median(cappedRss.get(0)!);
  const rows = settings.declared.map((declared) => {
    const rs = byCase.get(declared)!;
    const m = (pick: (r: TenantsReading) => number) => median(rs.map(pick));
    return (
      `| ${declared} | ${rs[0].active} | ${f1(m((r) => r.createMs))} | ${f1(m((r) => r.rssMb) - baseRss)} / ${f1(median(cappedRss.get(declared)!) - baseCapped)} / ${f1(m((r) => r.heapMb) - baseHeap)} | ${m((r) => r.backends)} (${m((r) => r.tenantsWithBackends)} tenants) | ` +
      `${f1(m((r) => r.metricsP50Ms))} / ${f1(m((r) => r.metricsP95Ms))} | ${f1(m((r) => r.metricsBytes) / 1024)} KiB, ${m((r) => r.metricsSeries)} series | ` +
      `${f1(m((r) => r.healthP50Ms))} (${f1(m((r) => r.healthBytes) / 1024)} KiB) | ${m((r) => r.statsP50Ms).toFixed(2)} | ${f1(m((r) => r.firstUseP50Ms))} |`
    );
  });
  const table = [
    `Lazy PostgreSQL tenants (idle_pool_timeout 5m), ${settings.active} used (one EntityManager and one query-builder query each); medians of ${settings.rounds} rounds, each case a fresh process.`,
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; 1-min load ${load.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end. Baseline (the same app with no connections, doing the same HTTP and pg calls): RSS ${f1(baseRss)} MB, heap ${f1(baseHeap)} MB (RSS ${f1(baseCapped)} MB with ${CAPPED_YOUNG_GENERATION}).`,
    '',
    `| declared | active | DbManager.create ms | over baseline MB: RSS / RSS ${CAPPED_YOUNG_GENERATION} / heap | server connections | /metrics p50 / p95 ms | /metrics size | /health p50 ms (size) | stats() p50 ms | first use p50 ms |`,
    '|---:|---:|---:|---:|---|---|---|---|---:|---:|',
    ...rows,
  ].join('\n');
  console.log(`\n## Tenants\n\n${table}\n`);
  return table;
}

// Standalone run.
if (require.main === module) {
  (async () => {
    const server = await startTestPostgres();
    try {
      await tenants(server, process.env.BENCH_QUICK === '1' ? { ...TENANTS_DEFAULTS, rounds: 1 } : TENANTS_DEFAULTS);
    } finally {
      await server.close();
    }
  })().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
