import { Logger } from '@nestjs/common';
import { startTestPostgres } from '../test/support/embedded-postgres';
import { health } from './health';
import { memory } from './memory';
import { metricsScrape } from './metrics-scrape';
import { pgbouncer } from './pgbouncer';
import { queryPath } from './query-path';
import { recovery } from './recovery';
import { startup } from './startup';
import { load, Report, resultsPath, runBench } from './support/report';
import { TENANTS_DEFAULTS, tenants } from './tenants';

/**
 * `npm run bench`: every section against one embedded PostgreSQL started here, variants interleaved within each
 * section. Prints each table as it is measured and writes bench/RESULTS.md at the end.
 * BENCH_ONLY=query,startup,… runs some sections (RESULTS.md is then not written); BENCH_QUICK=1 shortens everything;
 * BENCH_VARIANTS=bare:pool,ours:native,… runs some query-path variants; BENCH_PROFILE=<folder> has every query-path variant write a CPU profile of its queries there (open it in Chrome DevTools).
 */
const quick = process.env.BENCH_QUICK === '1';
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
const settings = {
  query: { rounds: Number(process.env.BENCH_ROUNDS) || (quick ? 2 : 20), cellMs: 150, warmupMs: quick ? 200 : 400, roundsPerProcess: quick ? 1 : 5, profileDir: process.env.BENCH_PROFILE, variants: process.env.BENCH_VARIANTS?.split(',') },
  startup: { rounds: quick ? 1 : 5 },
  health: { rounds: quick ? 2 : 5, requests: { 4: quick ? 30 : 200, 50: quick ? 10 : 50 }, blackHoleRounds: quick ? 1 : 3, blackHoleRequests: 4 },
  metrics: { rounds: quick ? 1 : 4, scrapes: quick ? 10 : 50 },
  recovery: { restarts: quick ? 1 : 3 },
  memory: { rounds: quick ? 1 : 3 },
  pgbouncer: { rounds: quick ? 2 : 6, cellMs: quick ? 300 : 800 },
};

type Section = (report: Report, server: Awaited<ReturnType<typeof startTestPostgres>>) => Promise<unknown>;
const SECTIONS: { key: string; run: Section }[] = [
  { key: 'query', run: (report, server) => queryPath(report, server, settings.query) },
  { key: 'startup', run: (report, server) => startup(report, server, settings.startup) },
  { key: 'health', run: (report, server) => health(report, server, settings.health) },
  { key: 'metrics', run: (report, server) => metricsScrape(report, server, settings.metrics) },
  { key: 'recovery', run: (report, server) => recovery(report, server, settings.recovery) },
  { key: 'memory', run: (report, server) => memory(report, server, settings.memory) },
  { key: 'pgbouncer', run: (report, server) => pgbouncer(report, server, settings.pgbouncer) },
  // Self-contained (its own table, printed): RESULTS.md's Tenants section is kept by hand from `npm run bench:tenants`.
  { key: 'tenants', run: (_report, server) => tenants(server, quick ? { ...TENANTS_DEFAULTS, rounds: 1 } : TENANTS_DEFAULTS) },
];

async function main(): Promise<void> {
  Logger.overrideLogger(false); // the library's own log lines (connected, down, up again) would bury the tables
  const startedAt = new Date();
  const loadBefore = load();
  const t0 = performance.now();
  const report = new Report();
  const server = await startTestPostgres();
  console.log(`PostgreSQL (embedded) on 127.0.0.1:${server.port}`);
  try {
    for (const section of SECTIONS) {
      if (only && !only.includes(section.key)) continue;
      const t = performance.now();
      await section.run(report, server);
      console.log(`(${section.key}: ${((performance.now() - t) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await server.close();
  }
  const totalMs = performance.now() - t0;
  console.log(`\n## Summary\n\n${report.summaryTable()}\n\nTotal: ${(totalMs / 1000).toFixed(0)} s`);
  if (!only && !quick) {
    const path = resultsPath();
    report.write(path, {
      command: process.env.DBM_BENCH_COMMAND ?? 'npm run bench',
      loadBefore,
      startedAt,
      totalMs,
      settings: `query path ${settings.query.rounds} rounds × ${settings.query.cellMs} ms per cell and variant (warm-up ${settings.query.warmupMs} ms per workload and concurrency)`,
    });
    console.log(`Wrote ${path}`);
  }
}

runBench(main);
