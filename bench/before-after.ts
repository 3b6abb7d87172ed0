import { mikroOrm } from '../lib/mikro-orm-version';
import { CALLS, POOL_MAX, type VariantKey, WORKLOADS } from './query-variants';
import { AA_BAND, CONCURRENCIES, type Rounds, type RoundsSettings } from './query-rounds';
import { differences, type Interval, interval, micros, ratios, reach, sign, times } from './support/paired';
import { median, ms, opsPerSec } from './support/stats';
import { renderTable } from './support/table';

/**
 * Issue 13's check: each access path on the library before it (`before:*`) and after (`ours:*`), measured in the same
 * rounds of the query-path harness (bench/query-rounds.ts) next to the A/A control, so "no added cost" is judged
 * against the noise this very run showed.
 */

/** One access path, before and after (named by what today's variant calls). */
interface Path {
  name: string;
  before: VariantKey;
  after: VariantKey;
}

const PATHS: Path[] = (['native', 'knex', 'em'] as const).map((path) => ({
  name: CALLS[`ours:${path}`],
  before: `before:${path}`,
  after: `ours:${path}`,
}));

/** The A/A control: two identical `pg.Pool`s, whose difference is this run's noise. */
const AA = { subject: 'control:pool', reference: 'bare:pool' } as const;

/** Every variant the bench runs, compared pairs next to each other. */
export const BEFORE_AFTER_KEYS: VariantKey[] = [AA.reference, AA.subject, ...PATHS.flatMap((p) => [p.before, p.after])];

/** What the section says about the two libraries. */
export interface Revisions {
  before: string;
  after: string;
}

export interface BeforeAfterOutcome {
  /** The section, Markdown. */
  text: string;
  /** Paths whose pooled cost lies beyond the A/A noise. */
  beyondNoise: string[];
  /** Whether the A/A control read within its band over all rounds. */
  fair: boolean;
}

/** The A/A's spread around "no difference": how far its interval reaches from 1× (throughput) and from 0 µs (CPU). */
interface Noise {
  ratio: number;
  cpu: number;
}

const noiseOf = (aaRatio: Interval, aaCpu: Interval): Noise => ({
  ratio: Math.max(Math.abs(1 - aaRatio.low), Math.abs(aaRatio.high - 1)),
  cpu: reach(aaCpu),
});

/** What lies beyond the noise: throughput below 1× by more than the A/A strayed, CPU added beyond its reach. */
function beyond(ratio: Interval, added: Interval, noise: Noise): string[] {
  const notes: string[] = [];
  if (ratio.median < 1 - noise.ratio) notes.push(`throughput ${((1 - ratio.median) * 100).toFixed(1)} % lower, A/A noise ±${(noise.ratio * 100).toFixed(1)} %`);
  if (added.median > noise.cpu) notes.push(`CPU +${(added.median - noise.cpu).toFixed(1)} µs beyond A/A noise`);
  return notes;
}

/** The tables of one run: every cell, then every path over all rounds of all cells. */
export function beforeAfterSection(rounds: Rounds, settings: RoundsSettings, revisions: Revisions): BeforeAfterOutcome {
  const { cells, samples } = rounds;
  const { version } = mikroOrm();
  const rows: string[][] = [];
  const pooled = PATHS.map(() => ({ ratios: [] as number[], added: [] as number[], cellRatios: [] as number[] }));
  const aaPooled = { ratios: [] as number[], added: [] as number[] };
  for (const [i, cell] of cells.entries()) {
    const s = samples[i]!;
    const aaRatio = interval(ratios(s[AA.subject], s[AA.reference]));
    const aaCpu = interval(differences(s[AA.subject], s[AA.reference]));
    aaPooled.ratios.push(...ratios(s[AA.subject], s[AA.reference]));
    aaPooled.added.push(...differences(s[AA.subject], s[AA.reference]));
    const noise = noiseOf(aaRatio, aaCpu);
    const query = WORKLOADS[cell.workload]!.name;
    const aaNotes = aaRatio.median < AA_BAND[0] || aaRatio.median > AA_BAND[1] ? [`A/A cell outside ${AA_BAND[0]}–${AA_BAND[1]}`] : [];
    rows.push(row(query, cell.concurrency, 'A/A: `pg.Pool` vs its twin', s[AA.reference], s[AA.subject], aaRatio, aaCpu, noise, aaNotes));
    for (const [k, path] of PATHS.entries()) {
      const ratio = interval(ratios(s[path.after], s[path.before]));
      const added = interval(differences(s[path.after], s[path.before]));
      pooled[k]!.ratios.push(...ratios(s[path.after], s[path.before]));
      pooled[k]!.added.push(...differences(s[path.after], s[path.before]));
      pooled[k]!.cellRatios.push(ratio.median);
      const notes = beyond(ratio, added, noise);
      const errors = [...s[path.after], ...s[path.before]].reduce((n, x) => n + x.errors, 0);
      if (errors) notes.push(`${errors} failed queries`);
      rows.push(row(query, cell.concurrency, path.name, s[path.before], s[path.after], ratio, added, noise, notes));
    }
  }

  const aaRatio = interval(aaPooled.ratios);
  const aaCpu = interval(aaPooled.added);
  const noise = noiseOf(aaRatio, aaCpu);
  const fair = aaRatio.median >= AA_BAND[0] && aaRatio.median <= AA_BAND[1];
  const beyondNoise: string[] = [];
  const pooledRows = [['A/A: `pg.Pool` vs its twin', times(aaRatio), '', micros(aaCpu), '', fair ? 'fair' : `outside ${AA_BAND[0]}–${AA_BAND[1]}×`]];
  for (const [k, path] of PATHS.entries()) {
    const p = pooled[k]!;
    const ratio = interval(p.ratios);
    const added = interval(p.added);
    const notes = beyond(ratio, added, noise);
    if (notes.length) beyondNoise.push(`${path.name}: ${notes.join(', ')}`);
    pooledRows.push([
      path.name,
      times(ratio),
      `${Math.min(...p.cellRatios).toFixed(2)}–${Math.max(...p.cellRatios).toFixed(2)}×`,
      micros(added),
      `±${(noise.ratio * 100).toFixed(1)} %, ±${noise.cpu.toFixed(1)} µs`,
      notes.length ? notes.join('; ') : 'within the A/A noise',
    ]);
  }

  const text = [
    `Each access path through the library before issue 13 (**before**: ${revisions.before}) and today (**after**: ${revisions.after}), ` +
      `on MikroORM ${version} and Node ${process.versions.node}, the two builds resolving the very same node_modules. The query-path ` +
      `harness of \`npm run bench\`: every variant in a process of its own with a pool of max ${POOL_MAX}, a Nest application context ` +
      'with `DbManagerModule` (Prometheus metrics on, health loop at its default, tracing and logging off), run strictly one at a ' +
      `time: ${settings.rounds} rounds × ${settings.cellMs} ms per cell and variant, a new random order every cell, a new process per ` +
      `variant every ${settings.roundsPerProcess} rounds (warm-up ${settings.warmupMs} ms per workload and concurrency). **ratio** = ` +
      'median over rounds of after ÷ before throughput in the same round, with its 95 % bootstrap interval; **CPU** = the process\'s ' +
      'CPU time per query, median over rounds; **added CPU** = median of the per-round difference after − before (95 % interval). ' +
      "**A/A noise** = how far the A/A control's own interval reaches from 1× and from 0 µs in that cell (or over all rounds): a cost " +
      'beyond it is noted.',
    '',
    renderTable({
      headers: ['query', 'c', 'path', 'before ops/s', 'after ops/s', 'after ÷ before (95 % CI)', 'CPU µs/query before → after', 'added CPU µs (95 % CI)', 'A/A CPU noise', 'p99 before → after', 'note'],
      rows,
      numeric: [1, 3, 4, 5, 6, 7, 8, 9],
    }),
    '',
    `Over all ${aaPooled.ratios.length} rounds of every cell (${WORKLOADS.length} queries × c=${CONCURRENCIES.join('/')}):`,
    '',
    renderTable({
      headers: ['path', 'after ÷ before (95 % CI)', 'cells', 'added CPU µs (95 % CI)', 'A/A noise', 'verdict'],
      rows: pooledRows,
      numeric: [1, 2, 3, 4],
    }),
    '',
    fair
      ? beyondNoise.length
        ? `**Beyond the A/A noise: ${beyondNoise.join('; ')}.**`
        : `No added cost beyond the A/A noise on any path (the A/A control read ${times(aaRatio)}, ${sign(aaCpu.median)} µs CPU).`
      : `**Flagged: the A/A control read ${times(aaRatio)} over all rounds, outside ${AA_BAND[0]}–${AA_BAND[1]}×; this run cannot tell a small cost from noise.**`,
  ].join('\n');
  return { text, beyondNoise, fair };
}

function row(
  query: string,
  concurrency: number,
  path: string,
  before: { opsPerSec: number; cpuPerOpUs: number; p99: number }[],
  after: { opsPerSec: number; cpuPerOpUs: number; p99: number }[],
  ratio: Interval,
  added: Interval,
  noise: Noise,
  notes: string[],
): string[] {
  return [
    query,
    String(concurrency),
    path,
    opsPerSec(median(before.map((x) => x.opsPerSec))),
    opsPerSec(median(after.map((x) => x.opsPerSec))),
    times(ratio),
    `${median(before.map((x) => x.cpuPerOpUs)).toFixed(1)} → ${median(after.map((x) => x.cpuPerOpUs)).toFixed(1)}`,
    micros(added),
    `±${noise.cpu.toFixed(1)}`,
    `${ms(median(before.map((x) => x.p99)))} → ${ms(median(after.map((x) => x.p99)))}`,
    notes.join('; '),
  ];
}
