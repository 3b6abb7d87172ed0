import { Logger } from '@nestjs/common';
import { startTestPostgres } from '../test/support/embedded-postgres';
import { BEFORE_AFTER_KEYS, beforeAfterSection } from './before-after';
import { runRounds } from './query-rounds';
import { load, machine, resultsPath, runBench, writeMarked } from './support/report';

/**
 * `npm run bench:before-after` (scripts/bench-before-after.mjs builds the earlier library and starts this on the
 * MikroORM 6 leg): the query paths before and after issue 13 in one run against one embedded PostgreSQL, written
 * into bench/RESULTS.md between `<!-- before-after -->` markers. BENCH_QUICK=1 shortens it and writes nothing
 * (BENCH_WRITE=1 writes even so); BENCH_ROUNDS=n sets the rounds.
 */
const quick = process.env.BENCH_QUICK === '1';
const settings = {
  rounds: Number(process.env.BENCH_ROUNDS) || (quick ? 2 : 20),
  cellMs: 150,
  warmupMs: quick ? 200 : 400,
  roundsPerProcess: quick ? 1 : 5,
};
const revisions = {
  before: process.env.BENCH_BEFORE_REV ?? 'the build in BENCH_BEFORE_LIB',
  after: process.env.BENCH_AFTER_REV ?? 'this checkout',
};

async function main(): Promise<void> {
  Logger.overrideLogger(false); // the library's own log lines would bury the tables
  const startedAt = new Date();
  const loadBefore = load();
  const t0 = performance.now();
  const server = await startTestPostgres();
  console.log(`PostgreSQL (embedded) on 127.0.0.1:${server.port}`);
  let section: ReturnType<typeof beforeAfterSection>;
  try {
    section = beforeAfterSection(await runRounds(server.url, BEFORE_AFTER_KEYS, settings), settings, revisions);
  } finally {
    await server.close();
  }
  const totalMs = performance.now() - t0;
  const info = {
    ...machine(),
    Date: startedAt.toISOString(),
    Command: `\`${process.env.DBM_BENCH_COMMAND ?? 'npm run bench:before-after'}\``,
    'Load (1-min average, `uptime`)': `${loadBefore} at the start, ${load()} at the end`,
    'Total runtime': `${(totalMs / 1000).toFixed(0)} s (after compiling)`,
  };
  const part = ['## Before and after issue 13 (driver sessions)', '', ...Object.entries(info).map(([k, v]) => `- ${k}: ${v}`), '', section.text].join('\n');
  console.log(`\n${part}`);
  if (!quick || process.env.BENCH_WRITE === '1') {
    const path = resultsPath();
    writeMarked(path, 'before-after', part);
    console.log(`Wrote ${path}`);
  }
}

runBench(main);
