import type { TestPostgres } from '../test/support/embedded-postgres';
import { type BenchApp, startOursApp, startPrometheusOnlyApp } from './support/apps';
import type { Report } from './support/report';
import { median, ms, percentile } from './support/stats';
import { interleave } from './support/timing';

// Section 4: GET /metrics with 10 and 100 connections. prom-client's registry is global, so only one app lives at a time:
// each round starts the app, scrapes, and closes it.

type Variant = 'baseline' | 'ours10' | 'ours100';
const VARIANTS: Variant[] = ['baseline', 'ours10', 'ours100'];
const CONNECTIONS: Record<Variant, number> = { baseline: 0, ours10: 10, ours100: 100 };

interface Scrape {
  latencies: number[];
  bytes: number;
  series: number;
  ourSeries: number;
}

export async function metricsScrape(report: Report, server: TestPostgres, settings: { rounds: number; scrapes: number }): Promise<void> {
  const start = (variant: Variant): Promise<BenchApp> => {
    const n = CONNECTIONS[variant];
    if (n === 0) return startPrometheusOnlyApp();
    const names = Array.from({ length: n }, (_, i) => `db${i + 1}`);
    return startOursApp({ connections: Object.fromEntries(names.map((name) => [name, { type: 'postgres', dsn: server.url }])) });
  };
  const results = await interleave(settings.rounds, VARIANTS, async (variant): Promise<Scrape> => {
    const app = await start(variant);
    try {
      for (let i = 0; i < 5; i++) await app.http.get('/metrics'); // warm-up
      const latencies: number[] = [];
      let body = '';
      for (let i = 0; i < settings.scrapes; i++) {
        const answer = await app.http.get('/metrics');
        if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}`);
        latencies.push(answer.ms);
        body = answer.body;
      }
      const samples = body.split('\n').filter((line) => line && !line.startsWith('#'));
      return { latencies, bytes: Buffer.byteLength(body), series: samples.length, ourSeries: samples.filter((l) => l.startsWith('dbmanager_')).length };
    } finally {
      await app.close();
    }
  });

  report.section(
    '4. `/metrics` scrape',
    `Sequential \`GET /metrics\` (${settings.scrapes} per round after 5 warm-up scrapes, ${settings.rounds} rounds, variants ` +
      "interleaved; prom-client's registry is global, so each round starts and closes its app). The baseline is an app with " +
      "`PrometheusModule.register()` only (prom-client's default process metrics); ours adds `DbManagerModule` with N " +
      'connections. Lower is better.',
  );
  const base = median(results.baseline.flatMap((r) => r.latencies));
  report.table({
    headers: ['app', 'p50', 'p99', 'added to p50 by ours', 'response size', 'samples (ours)'],
    rows: VARIANTS.map((variant) => {
      const all = results[variant].flatMap((r) => r.latencies);
      const last = results[variant].at(-1)!;
      const p50 = median(all);
      return [
        variant === 'baseline' ? 'PrometheusModule only' : `ours, ${CONNECTIONS[variant]} connections`,
        ms(p50),
        ms(percentile(all, 99)),
        variant === 'baseline' ? '' : `+${ms(p50 - base)}`,
        `${(last.bytes / 1024).toFixed(1)} KiB`,
        `${last.series} (${last.ourSeries})`,
      ];
    }),
    numeric: [1, 2, 3, 4, 5],
  });
  const p50 = (v: Variant) => median(results[v].flatMap((r) => r.latencies));
  report.summary('`/metrics` scrape, lower is better', `10 connections: ${ms(p50('ours10'))}; 100: ${ms(p50('ours100'))}`, `PrometheusModule only: ${ms(base)}`, `+${ms(p50('ours100') - base)} at 100 connections`);
}
