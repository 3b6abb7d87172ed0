import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { percentile } from './support/stats';
import { runLoad } from './support/timing';
import { openVariant, type VariantKey, WORKLOADS } from './query-variants';

/**
 * One variant of the query-path harness in a process of its own (forked by bench/query-rounds.ts). It opens the
 * variant, says `ready`, then runs one cell per `run` message and answers with what it measured — CPU time included,
 * which is this variant's alone since nothing else runs in this process.
 */

/** What the parent asks for. */
export type ChildRequest = { run: { workload: number; concurrency: number; ms: number } } | { close: true };

/** What one run measured. */
export interface CellSample {
  opsPerSec: number;
  cpuPerOpUs: number;
  p50: number;
  p99: number;
  errors: number;
}

export type ChildMessage = { ready: true } | { sample: CellSample } | { failed: string } | { closed: true };

async function main(): Promise<void> {
  Logger.overrideLogger(false);
  const [key, url] = [process.env.BENCH_VARIANT as VariantKey, process.env.BENCH_URL!];
  const variant = await openVariant(key, url);
  const profile = process.env.BENCH_PROFILE ? await startProfile() : undefined;
  const send = (message: ChildMessage) => process.send!(message);
  process.on('message', (request: ChildRequest) => {
    if ('close' in request) {
      void (async () => {
        if (profile) mkdirSync(process.env.BENCH_PROFILE!, { recursive: true });
        if (profile) writeFileSync(join(process.env.BENCH_PROFILE!, `${key.replace(':', '-')}.cpuprofile`), JSON.stringify(await profile()));
        await variant.close();
        send({ closed: true });
        process.disconnect();
      })();
      return;
    }
    const { workload, concurrency, ms } = request.run;
    const w = WORKLOADS[workload]!;
    runLoad(() => variant.run(w), concurrency, ms).then(
      (r) => send({ sample: { opsPerSec: r.opsPerSec, cpuPerOpUs: r.cpuPerOpUs, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), errors: r.errors } }),
      (error: unknown) => send({ failed: String(error) }),
    );
  });
  send({ ready: true });
}

/** A V8 CPU profile of the queries only (the variant's boot is not in it); the returned function stops it. */
async function startProfile(): Promise<() => Promise<object>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return async () => (await session.post('Profiler.stop')).profile;
}

main().catch((error: unknown) => {
  process.send?.({ failed: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
});
