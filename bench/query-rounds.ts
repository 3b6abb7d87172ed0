import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import type { CellSample, ChildMessage, ChildRequest } from './query-child';
import { ROWS, type VariantKey, WORKLOADS } from './query-variants';
import { seededRandom, shuffled } from './support/stats';

/**
 * The measuring loop shared by the query-path section (bench/query-path.ts) and the before/after bench
 * (bench/before-after.ts): every variant in a process of its own, strictly one at a time, in many short interleaved
 * rounds, a new random order per cell. What the samples are compared against is the caller's business.
 */

export const CONCURRENCIES = [1, 16, 64];

/** The A/A control must read within this band (median throughput ratio over all rounds), or the run is flagged. */
export const AA_BAND = [0.98, 1.02] as const;

export interface RoundsSettings {
  rounds: number;
  cellMs: number;
  warmupMs: number;
  /** Rounds each set of variant processes runs before a new set replaces it. */
  roundsPerProcess: number;
  /** A folder: every variant's process writes a V8 CPU profile of its queries there (`<variant>.cpuprofile`). */
  profileDir?: string;
}

/** One workload at one concurrency. */
export interface Cell {
  workload: number;
  concurrency: number;
}

/** `samples[cell][variant][round]`: what each variant measured in each round of each cell. */
export interface Rounds {
  cells: Cell[];
  samples: Record<VariantKey, CellSample[]>[];
}

/** A variant's process, answering one request at a time. */
class VariantProcess {
  private readonly child: ChildProcess;
  private waiter?: { resolve(m: ChildMessage): void; reject(e: Error): void };

  constructor(readonly key: VariantKey, url: string, profileDir?: string) {
    this.child = fork(join(__dirname, 'query-child.js'), [], {
      env: { ...process.env, BENCH_VARIANT: key, BENCH_URL: url, BENCH_PROFILE: profileDir ?? '' },
      execArgv: [],
    });
    this.child.on('message', (message: ChildMessage) => {
      const waiter = this.waiter;
      this.waiter = undefined;
      if ('failed' in message) waiter?.reject(new Error(`bench variant ${key}: ${message.failed}`));
      else waiter?.resolve(message);
    });
    this.child.on('exit', (code) => {
      this.waiter?.reject(new Error(`bench variant ${key} exited with code ${code}`));
      this.waiter = undefined;
    });
  }

  /** Resolves with the next message (the first one: `ready`). */
  next(request?: ChildRequest): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      if (request) this.child.send(request);
    });
  }

  async run(workload: number, concurrency: number, ms: number): Promise<CellSample> {
    const answer = await this.next({ run: { workload, concurrency, ms } });
    if (!('sample' in answer)) throw new Error(`bench variant ${this.key}: no sample`);
    return answer.sample;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.next({ close: true }).catch(() => undefined);
    await exited;
  }
}

/** Fills bench_items on the server at `url`, then runs every cell `settings.rounds` times through each of `keys`. */
export async function runRounds(url: string, keys: VariantKey[], settings: RoundsSettings): Promise<Rounds> {
  await createTable(url);
  const cells = WORKLOADS.flatMap((_, workload) => CONCURRENCIES.map((concurrency) => ({ workload, concurrency })));
  const samples = cells.map(() => Object.fromEntries(keys.map((k) => [k, [] as CellSample[]])) as Record<VariantKey, CellSample[]>);
  let processes: VariantProcess[] = [];
  const random = seededRandom(0x9e3779b9);
  let last: VariantProcess | undefined;
  try {
    for (let round = 0; round < settings.rounds; round++) {
      // Every few rounds a new process per variant: a process's own luck (its heap layout, JIT decisions, the core it
      // lands on) moved one variant's CPU per query by more than the A/A control showed within one process pair.
      if (round % settings.roundsPerProcess === 0) {
        await Promise.all(processes.map((p) => p.close()));
        processes = [];
        last = undefined;
        // One at a time (a process that boots while another measures would steal its CPU), in a new order per set: the
        // first booted sat longest before the rounds.
        for (const key of shuffled(keys, random)) {
          const child = new VariantProcess(key, url, settings.profileDir && `${settings.profileDir}/${round}`);
          processes.push(child);
          await child.next();
          // Warm-up: fills the pool to its max and lets the JIT settle; not recorded.
          for (const [workload] of WORKLOADS.entries()) for (const c of [64, 1]) await child.run(workload, c, settings.warmupMs);
        }
        // Booting and warming the others took longer than pg.Pool's 10 s idle timeout, so the first variants' pools
        // had closed their clients and paid reconnects in the first recorded cell: one unrecorded pass at c=64 refills
        // every pool, in random order, right before the rounds.
        for (const child of shuffled(processes, random)) await child.run(0, 64, settings.cellMs);
      }
      for (const [i, { workload, concurrency }] of cells.entries()) {
        const order = runOrder(processes, random, last);
        for (const child of order) samples[i]![child.key].push(await child.run(workload, concurrency, settings.cellMs));
        last = order.at(-1);
      }
    }
  } finally {
    await Promise.all(processes.map((p) => p.close()));
  }
  return { cells, samples };
}

/**
 * A new random order for every cell, never starting with the variant that ran last. Alternating one fixed order with
 * its reverse — the earlier scheme — ran the first variant of the list twice in a row at every reversed → forward
 * turn (its process, its server backends and the CPU caches still hot), and only that one: the bare `pg.Pool` read
 * 5–7 % faster than its identical A/A twin in full runs, while a run of the two alone read 1.00×.
 */
function runOrder(processes: VariantProcess[], random: () => number, last: VariantProcess | undefined): VariantProcess[] {
  const order = shuffled(processes, random);
  if (order.length > 1 && order[0] === last) [order[0], order[1]] = [order[1]!, order[0]!];
  return order;
}

async function createTable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('drop table if exists bench_items');
    await client.query('create table bench_items (id int primary key, name text not null, score int not null)');
    await client.query(`insert into bench_items select g, 'item ' || g, (g * 7919) % 1000 from generate_series(1, ${ROWS}) g`);
    await client.query('analyze bench_items');
  } finally {
    await client.end();
  }
}
