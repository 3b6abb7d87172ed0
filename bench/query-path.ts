import { MikroORM } from '@mikro-orm/core';
import { type EntityManager, PostgreSqlDriver } from '@mikro-orm/postgresql';
import type { Knex } from 'knex';
import pg from 'pg';
import { register } from 'prom-client';
import type { TestPostgres } from '../test/support/embedded-postgres';
import { startOursApp } from './support/apps';
import type { Report } from './support/report';
import { median, ms, opsPerSec, percentile } from './support/stats';
import { runLoad } from './support/timing';

// Section 1: the same queries through a bare driver pool, plain MikroORM, and our connection (metrics and health loop on).

const POOL_MAX = 10;
const CONCURRENCIES = [1, 16, 64];
const ROWS = 10_000;

interface Workload {
  name: string;
  /** node-postgres placeholders ($1). */
  pgSql: string;
  /** knex / MikroORM placeholders (?). */
  knexSql: string;
  params(): unknown[];
}

let counter = 0;
/** Keys spread over the table, identical sequence for every variant. */
const nextKey = () => ((counter++ * 7919) % ROWS) + 1;

const WORKLOADS: Workload[] = [
  { name: 'SELECT 1', pgSql: 'select 1', knexSql: 'select 1', params: () => [] },
  {
    name: 'read by key',
    pgSql: 'select id, name, score from bench_items where id = $1',
    knexSql: 'select id, name, score from bench_items where id = ?',
    params: () => [nextKey()],
  },
];

type Path = 'native' | 'knex' | 'em';
type Side = 'reference' | 'ours';
/**
 * `reference:pool`: the raw client lent by plain MikroORM's own (knex/tarn) pool, a second reference for the native path.
 * `control:knex`: a second, identical plain MikroORM: its ratio to `reference:knex` shows the run's noise floor.
 * `ours-no-metrics:knex`: ours with `enable_metrics: false`, to show what recording metrics costs.
 */
type VariantKey = `${Side}:${Path}` | 'reference:pool' | 'control:knex' | 'ours-no-metrics:knex';

/** One table row: `subject` against `reference` on one access path. */
interface RowSpec {
  subject: VariantKey;
  reference: VariantKey;
  label: string;
  referenceLabel: string;
}

const ROWS_PER_CELL: RowSpec[] = [
  { subject: 'ours:native', reference: 'reference:native', label: 'native client', referenceLabel: '`pg.Pool.query`' },
  { subject: 'ours:native', reference: 'reference:pool', label: 'native client', referenceLabel: "MikroORM's pool: `acquireConnection` + `query`" },
  { subject: 'ours:knex', reference: 'reference:knex', label: 'knex', referenceLabel: 'MikroORM `em.getKnex().raw`' },
  { subject: 'ours:em', reference: 'reference:em', label: 'EntityManager', referenceLabel: 'MikroORM `em.execute`' },
  { subject: 'ours-no-metrics:knex', reference: 'reference:knex', label: 'knex, `enable_metrics: false`', referenceLabel: 'MikroORM `em.getKnex().raw`' },
  { subject: 'control:knex', reference: 'reference:knex', label: '*A/A control: a 2nd, identical plain MikroORM, knex*', referenceLabel: 'MikroORM `em.getKnex().raw`' },
];

/** What "ours" calls on each access path. */
const OURS_CALLS: Record<Path, string> = {
  native: '`withNativeClient(c => c.query)`',
  knex: '`connection.knex().raw`',
  em: '`connection.em.execute`',
};

type Op = (w: Workload) => Promise<unknown>;

/** One variant's run of one cell in one round. */
interface Sample {
  opsPerSec: number;
  cpuPerOpUs: number;
  latencies: number[];
  errors: number;
}

export interface QueryPathSettings {
  rounds: number;
  cellMs: number;
  warmupMs: number;
}

/** Rows below 0.97×, for the summary. */
export interface QueryPathOutcome {
  below: string[];
}

export async function queryPath(report: Report, server: TestPostgres, settings: QueryPathSettings): Promise<QueryPathOutcome> {
  await createTable(server.url);

  const pool = new pg.Pool({ connectionString: server.url, max: POOL_MAX });
  pool.on('error', () => undefined);
  // Every variant gets its own pool: a pool shared by several variants idles less and would run warmer.
  const plainOrms: MikroORM[] = [];
  const plain = async () => {
    const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: server.url, pool: { min: 0, max: POOL_MAX }, discovery: { warnWhenNoEntities: false } });
    plainOrms.push(orm);
    return orm.em as EntityManager;
  };
  const [poolEm, knexEm, emEm, controlEm] = [await plain(), await plain(), await plain(), await plain()];
  // max_idle_conns = pool size, as the references keep every idle connection.
  const ourPool = { type: 'postgres', dsn: server.url, max_open_conns: POOL_MAX, max_idle_conns: POOL_MAX } as const;
  const ours = await startOursApp(
    {
      health_check_interval: '1s',
      connections: { native: ourPool, knex: ourPool, em: ourPool, unmetered: { ...ourPool, enable_metrics: false } },
    },
    { listen: false },
  );
  const our = (name: string) => ours.manager.get(name);
  const plainClient = poolEm.getKnex().client as unknown as { acquireConnection(): Promise<pg.Client>; releaseConnection(c: pg.Client): Promise<void> };

  // Key order = run order within a round: each compared pair runs back to back.
  const ops: Record<VariantKey, Op> = {
    'reference:native': (w) => pool.query(w.pgSql, w.params()),
    'ours:native': (w) => our('native').withNativeClient((c: pg.Client) => c.query(w.pgSql, w.params())),
    'reference:pool': async (w) => {
      const client = await plainClient.acquireConnection();
      try {
        return await client.query(w.pgSql, w.params());
      } finally {
        await plainClient.releaseConnection(client);
      }
    },
    'ours:knex': (w) => our('knex').knex<Knex>().raw(w.knexSql, w.params() as Knex.RawBinding[]),
    'reference:knex': (w) => knexEm.getKnex().raw(w.knexSql, w.params() as Knex.RawBinding[]),
    'ours-no-metrics:knex': (w) => our('unmetered').knex<Knex>().raw(w.knexSql, w.params() as Knex.RawBinding[]),
    'control:knex': (w) => controlEm.getKnex().raw(w.knexSql, w.params() as Knex.RawBinding[]),
    'reference:em': (w) => emEm.execute(w.knexSql, w.params()),
    'ours:em': (w) => (our('em').em as EntityManager).execute(w.knexSql, w.params()),
  };
  const variants = Object.keys(ops) as VariantKey[];
  const cells = WORKLOADS.flatMap((workload) => CONCURRENCIES.map((concurrency) => ({ workload, concurrency })));
  // samples[cell][variant][round]
  const samples = cells.map(() => Object.fromEntries(variants.map((v) => [v, [] as Sample[]])) as Record<VariantKey, Sample[]>);

  try {
    // Warm-up: fill every pool to its max and let the JIT settle; not recorded.
    for (const v of variants) for (const w of WORKLOADS) await runLoad(() => ops[v](w), 64, settings.warmupMs);

    for (let round = 0; round < settings.rounds; round++) {
      for (const [i, { workload, concurrency }] of cells.entries()) {
        // Alternate the order by round and by cell, so no variant always runs first or last.
        const order = (round + i) % 2 === 0 ? variants : [...variants].reverse();
        for (const v of order) {
          const { opsPerSec, cpuPerOpUs, latencies, errors } = await runLoad(() => ops[v](workload), concurrency, settings.cellMs);
          samples[i]![v].push({ opsPerSec, cpuPerOpUs, latencies, errors });
        }
      }
    }
    const acquires = await histogramCount('dbmanager_connection_acquire_seconds');
    const pings = await histogramCount('dbmanager_health_check_duration_seconds');
    return writeTable(report, cells, samples, settings, { acquires, pings });
  } finally {
    await ours.close();
    for (const orm of plainOrms) await orm.close(true);
    await pool.end();
  }
}

function writeTable(
  report: Report,
  cells: { workload: Workload; concurrency: number }[],
  samples: Record<VariantKey, Sample[]>[],
  settings: QueryPathSettings,
  recorded: { acquires: number; pings: number },
): QueryPathOutcome {
  report.section(
    '1. Query path',
    `Closed-loop load, each variant on its own pool of max ${POOL_MAX}, all live at once in one process against one server. ` +
      `${settings.rounds} rounds × ${settings.cellMs / 1000} s per cell and variant, round-robin in alternating order. ` +
      '**ours ÷ ref** is the median over rounds of the throughput ratio of the two runs of the same round (higher is better); ' +
      'ops/s are medians over rounds; p50/p99 latency over all rounds (lower is better); CPU = this process\'s CPU time per query. ' +
      'Ours runs in a Nest application context with `DbManagerModule` (Prometheus metrics recording every acquire) + ' +
      '`PrometheusModule.register()`, health loop every 1 s.',
  );
  const rows: string[][] = [];
  const below: string[] = [];
  const byRow = ROWS_PER_CELL.map(() => [] as number[]);
  for (const [i, { workload, concurrency }] of cells.entries()) {
    for (const [k, row] of ROWS_PER_CELL.entries()) {
      const ref = samples[i]![row.reference];
      const our = samples[i]![row.subject];
      const paired = our.map((s, round) => s.opsPerSec / ref[round]!.opsPerSec);
      // Rounded as printed, so "below 0.97×" never lists a row that reads 0.97×.
      const r = Math.round(median(paired) * 100) / 100;
      byRow[k]!.push(r);
      const label = `${workload.name}, c=${concurrency}, ${row.label} vs ${row.referenceLabel}`;
      if (r < 0.97 && row.subject.startsWith('ours:')) below.push(`${label}: ${r.toFixed(2)}×`);
      const errors = [...ref, ...our].reduce((n, s) => n + s.errors, 0);
      if (errors) below.push(`${label}: ${errors} failed queries`);
      const refLat = ref.flatMap((s) => s.latencies);
      const ourLat = our.flatMap((s) => s.latencies);
      rows.push([
        workload.name,
        String(concurrency),
        row.label,
        row.referenceLabel,
        opsPerSec(median(ref.map((s) => s.opsPerSec))),
        opsPerSec(median(our.map((s) => s.opsPerSec))),
        `${r.toFixed(2)}×`,
        ms(percentile(refLat, 50)),
        ms(percentile(ourLat, 50)),
        ms(percentile(refLat, 99)),
        ms(percentile(ourLat, 99)),
        `${median(ref.map((s) => s.cpuPerOpUs)).toFixed(0)} → ${median(our.map((s) => s.cpuPerOpUs)).toFixed(0)} µs`,
      ]);
    }
  }
  report.table({
    headers: ['workload', 'conc.', 'access path', 'reference', 'ref ops/s', 'ours ops/s', 'ours ÷ ref', 'ref p50', 'ours p50', 'ref p99', 'ours p99', 'CPU/query ref → ours'],
    rows,
    numeric: [1, 4, 5, 6, 7, 8, 9, 10, 11],
  });
  const oursRows = rows.length / ROWS_PER_CELL.length * ROWS_PER_CELL.filter((r) => r.subject.startsWith('ours:')).length;
  const belowRatios = below.map((b) => Number(/([\d.]+)×$/.exec(b)?.[1])).filter(Number.isFinite);
  report.note(
    `Ours: ${Object.entries(OURS_CALLS).map(([path, call]) => `${path} = ${call}`).join(', ')}. During the section our metrics recorded ` +
      `${recorded.acquires.toLocaleString('en-US')} pool acquires and ${recorded.pings} health pings. ` +
      (belowRatios.length
        ? `${belowRatios.length} of ${oursRows} "ours" rows are below 0.97× (${Math.min(...belowRatios).toFixed(2)}× to ${Math.max(...belowRatios).toFixed(2)}×).`
        : `Every "ours" row is at or above 0.97×.`),
  );
  for (const [k, row] of ROWS_PER_CELL.entries()) {
    const ratios = byRow[k]!;
    const subject =
      row.subject === 'control:knex'
        ? 'A/A control: a 2nd, identical plain MikroORM'
        : `${OURS_CALLS[row.subject.split(':')[1] as Path]}${row.subject === 'ours-no-metrics:knex' ? ', `enable_metrics: false`' : ''}`;
    report.summary(
      `Query throughput (${ratios.length} cells: 2 queries × c=${CONCURRENCIES.join('/')}), higher is better`,
      subject,
      row.referenceLabel,
      `${median(ratios).toFixed(2)}× median (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}×)`,
    );
  }
  return { below };
}

async function createTable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('drop table if exists bench_items');
    await client.query('create table bench_items (id int primary key, name text not null, score int not null)');
    await client.query(`insert into bench_items select g, 'item ' || g, (g * 7919) % 1000 from generate_series(1, ${ROWS}) g`);
    await client.query('create index bench_items_score on bench_items (score)');
    await client.query('analyze bench_items');
  } finally {
    await client.end();
  }
}

/** Observations a histogram of ours holds, over all series (0 when it is not registered). */
async function histogramCount(name: string): Promise<number> {
  const metric = register.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => (v as { metricName?: string }).metricName === `${name}_count`).reduce((n, v) => n + v.value, 0);
}
