import { setTimeout as delay } from 'node:timers/promises';

/** What a closed-loop load run measured. */
export interface LoadResult {
  ops: number;
  errors: number;
  opsPerSec: number;
  /** Latencies of successful operations, ms. */
  latencies: number[];
  /** CPU time this process spent per successful operation (user + system), µs: robust to other load on the machine. */
  cpuPerOpUs: number;
}

/**
 * Closed loop: `concurrency` workers each run `op` back to back until `durationMs` has passed. Throughput counts
 * successful operations over the time until the last worker finished.
 */
export async function runLoad(op: () => Promise<unknown>, concurrency: number, durationMs: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const end = started + durationMs;
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await op();
        latencies.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - started;
  const { user, system } = process.cpuUsage(cpu);
  const ops = latencies.length;
  return { ops, errors, opsPerSec: (ops / elapsed) * 1000, latencies, cpuPerOpUs: ops ? (user + system) / ops : Number.NaN };
}

/** How long `fn` takes, ms. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
}

/** Resolves with `promise`'s outcome, or `{ timedOut: true }` after `ms` (the promise goes on; its rejection is handled). */
export async function capped<T>(promise: Promise<T>, capMs: number): Promise<{ timedOut: false; value: T } | { timedOut: true } | { timedOut: false; error: unknown }> {
  const settled = promise.then(
    (value) => ({ timedOut: false as const, value }),
    (error: unknown) => ({ timedOut: false as const, error }),
  );
  if (!Number.isFinite(capMs)) return settled;
  const ac = new AbortController();
  const timer = delay(capMs, { timedOut: true as const }, { signal: ac.signal, ref: false }).catch(() => ({ timedOut: true as const }));
  try {
    return await Promise.race([settled, timer]);
  } finally {
    ac.abort();
  }
}

/**
 * Round-robin interleaving: every round runs every variant once, forward on even rounds and backward on odd ones,
 * so slow drift of the machine lands on all variants alike. Returns each variant's results in round order.
 */
export async function interleave<K extends string, R>(rounds: number, variants: readonly K[], run: (variant: K, round: number) => Promise<R>): Promise<Record<K, R[]>> {
  const results = Object.fromEntries(variants.map((v) => [v, [] as R[]])) as Record<K, R[]>;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order) results[variant].push(await run(variant, round));
  }
  return results;
}

/** Polls `check` every `everyMs` until it returns true; resolves with the elapsed ms, or rejects after `timeoutMs`. */
export async function pollUntil(check: () => Promise<boolean> | boolean, everyMs: number, timeoutMs: number, what: string): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}
