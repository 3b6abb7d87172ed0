import type { TestPostgres } from '../test/support/embedded-postgres';
import { mikroOrm } from '../lib/mikro-orm-version';
import type { CellSample } from './query-child';
import { CALLS, POOL_MAX, type VariantKey, variantsOfThisLeg, WORKLOADS } from './query-variants';
import { AA_BAND, type Cell, CONCURRENCIES, type RoundsSettings, runRounds } from './query-rounds';
import { differences, interval, micros, ratios, reach, times } from './support/paired';
import type { Report } from './support/report';
import { median, ms, opsPerSec } from './support/stats';

// Section 1: the same queries through each access path with and without the module, every variant in a process of its
// own, strictly one at a time, in many short interleaved rounds.

/** The target: ours at least this share of the same path without the module. */
const TARGET = 0.97;

/** One table row: `subject` against `reference`. */
interface Comparison {
  subject: VariantKey;
  reference: VariantKey;
  /** Held to the 0.97× target (else reported only). */
  target: boolean;
}

const COMPARISONS: Comparison[] = [
  { subject: 'control:pool', reference: 'bare:pool', target: false },
  { subject: 'ours:native', reference: 'bare:pool', target: true },
  { subject: 'ours:native', reference: 'bare:lend', target: true },
  { subject: 'bare:lend', reference: 'bare:pool', target: false },
  { subject: 'ours:native', reference: 'plain:pool', target: true },
  { subject: 'plain:pool', reference: 'bare:pool', target: false },
  { subject: 'ours:kysely', reference: 'plain:kysely', target: true },
  { subject: 'ours:knex', reference: 'plain:knex', target: true },
  { subject: 'ours:em', reference: 'plain:em', target: true },
  { subject: 'anchor:em', reference: 'plain:em', target: false },
  { subject: 'ballast:pool', reference: 'bare:pool', target: false },
  { subject: 'ours:native', reference: 'ballast:pool', target: false },
];

export interface QueryPathSettings extends RoundsSettings {
  /** Only these variants (while working on one path); all of this leg's by default. */
  variants?: string[];
}

/** Rows that miss a target, and whether the A/A control was fair. */
export interface QueryPathOutcome {
  below: string[];
  fair: boolean;
}

export async function queryPath(report: Report, server: TestPostgres, settings: QueryPathSettings): Promise<QueryPathOutcome> {
  const keys = settings.variants ? (settings.variants.filter((k) => k in CALLS) as VariantKey[]) : variantsOfThisLeg();
  const { cells, samples } = await runRounds(server.url, keys, settings);
  return writeTables(report, cells, samples, settings, keys);
}

function writeTables(
  report: Report,
  cells: Cell[],
  samples: Record<VariantKey, CellSample[]>[],
  settings: QueryPathSettings,
  keys: VariantKey[],
): QueryPathOutcome {
  const { major, version } = mikroOrm();
  const comparisons = COMPARISONS.filter((c) => keys.includes(c.subject) && keys.includes(c.reference));
  report.section(
    `1. Query path (MikroORM ${version}, Node ${process.versions.node})`,
    `Closed-loop load against the embedded PostgreSQL, each variant in a process of its own with a pool of max ${POOL_MAX}, ` +
      `run strictly one at a time: ${settings.rounds} rounds × ${settings.cellMs} ms per cell and variant, interleaved in a new ` +
      `random order every cell (never the same variant twice in a row); a new process per variant every ${settings.roundsPerProcess} rounds, so no variant ` +
      'keeps one process\'s luck. **ratio** = median over rounds of the two runs\' throughput ratio in the same round, ' +
      'with its 95 % bootstrap interval; **CPU** = the variant process\'s CPU time per query (`process.cpuUsage`), median over ' +
      'rounds; **added CPU** = median of the per-round difference (95 % interval), µs per query. Ours runs in a Nest application ' +
      'context with `DbManagerModule` (Prometheus metrics on, health loop at its default, tracing and logging off).',
  );
  const rows: string[][] = [];
  const below: string[] = [];
  const perComparison = comparisons.map(() => [] as number[]);
  // Every round of every cell: the A/A criterion and the summary stand on these, a cell's own 20 rounds being too few
  // to tell 2 % on 2 shared vCPUs (a cell's 95 % interval is ±5–10 % here).
  const pooled = comparisons.map(() => [] as number[]);
  for (const [i, cell] of cells.entries()) {
    const s = samples[i]!;
    const aaCpu = s['control:pool']?.length && s['bare:pool']?.length ? interval(differences(s['control:pool'], s['bare:pool'])) : { median: Number.NaN, low: Number.NaN, high: Number.NaN };
    // The A/A control's own CPU difference bounds what "within the noise" means in this cell.
    const noise = reach(aaCpu);
    for (const [k, c] of comparisons.entries()) {
      const ratio = interval(ratios(s[c.subject], s[c.reference]));
      const added = interval(differences(s[c.subject], s[c.reference]));
      perComparison[k]!.push(ratio.median);
      pooled[k]!.push(...ratios(s[c.subject], s[c.reference]));
      const where = `${WORKLOADS[cell.workload]!.name}, c=${cell.concurrency}: ${CALLS[c.subject]} vs ${CALLS[c.reference]}`;
      const notes: string[] = [];
      if (c.subject === 'control:pool' && (ratio.median < AA_BAND[0] || ratio.median > AA_BAND[1])) notes.push(`A/A cell outside ${AA_BAND[0]}–${AA_BAND[1]}`);
      if (c.target && Number(ratio.median.toFixed(2)) < TARGET) {
        notes.push(`below ${TARGET}×`);
        below.push(`${where}: ${ratio.median.toFixed(3)}×`);
      }
      if (c.target && added.median > noise) notes.push(`CPU +${(added.median - noise).toFixed(1)} µs beyond A/A noise`);
      const errors = [...s[c.subject], ...s[c.reference]].reduce((n, x) => n + x.errors, 0);
      if (errors) {
        notes.push(`${errors} failed queries`);
        below.push(`${where}: ${errors} failed queries`);
      }
      rows.push([
        WORKLOADS[cell.workload]!.name,
        String(cell.concurrency),
        CALLS[c.subject],
        CALLS[c.reference],
        opsPerSec(median(s[c.reference].map((x) => x.opsPerSec))),
        opsPerSec(median(s[c.subject].map((x) => x.opsPerSec))),
        times(ratio),
        `${median(s[c.reference].map((x) => x.cpuPerOpUs)).toFixed(1)} → ${median(s[c.subject].map((x) => x.cpuPerOpUs)).toFixed(1)}`,
        micros(added),
        `±${noise.toFixed(1)}`,
        `${ms(median(s[c.reference].map((x) => x.p99)))} → ${ms(median(s[c.subject].map((x) => x.p99)))}`,
        notes.join('; '),
      ]);
    }
  }
  report.table({
    headers: ['query', 'c', 'subject', 'reference', 'ref ops/s', 'subject ops/s', 'ratio (95 % CI)', 'CPU µs/query ref → subject', 'added CPU µs (95 % CI)', 'A/A CPU noise', 'p99 ref → subject', 'note'],
    rows,
    numeric: [1, 4, 5, 6, 7, 8, 9, 10],
  });
  const control = comparisons.findIndex((c) => c.subject === 'control:pool');
  const aa = control >= 0 ? interval(pooled[control]!) : undefined;
  const fair = !aa || (aa.median >= AA_BAND[0] && aa.median <= AA_BAND[1]);
  if (aa) {
    report.note(
      fair
        ? `Fair run: the A/A control read ${times(aa)} over all ${pooled[control]!.length} rounds of every cell, within ${AA_BAND[0]}–${AA_BAND[1]}×.`
        : `**Flagged: the A/A control read ${times(aa)} over all rounds of every cell, outside ${AA_BAND[0]}–${AA_BAND[1]}×; treat this run's small ratios with care.**`,
    );
  }
  report.note(below.length ? `Below target: ${below.join('; ')}.` : `Every target row is at or above ${TARGET}×.`);
  for (const [k, c] of comparisons.entries()) {
    const r = perComparison[k]!;
    report.summary(
      `MikroORM ${major}: query throughput, ${r.length} cells (2 queries × c=${CONCURRENCIES.join('/')})`,
      CALLS[c.subject],
      CALLS[c.reference],
      `${times(interval(pooled[k]!))} over all rounds; cells ${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)}×`,
    );
  }
  return { below, fair };
}
