import type { HistogramEntry } from './adapters/prom-client';
import { ACQUIRE_BUCKETS } from './metric-names';

/**
 * Acquires of one connection, counted with plain arithmetic when they happen and published at scrape time. Feeding
 * prom-client on every acquire (a label hash per call) cost ~1 µs per query, measurable against a bare pool.
 */
export class AcquireTally {
  count = 0;
  sumSeconds = 0;
  waits = 0;
  waitSeconds = 0;
  private readonly perBucket: number[] = ACQUIRE_BUCKETS.map(() => 0);
  private publishedWaits = 0;
  private exported?: HistogramEntry;
  private publishedWaitSeconds = 0;

  record(seconds: number, waited: boolean): void {
    this.count++;
    this.sumSeconds += seconds;
    // As prom-client: the first bucket whose bound holds the value; beyond the last one only +Inf (count) has it.
    for (let i = 0; i < ACQUIRE_BUCKETS.length; i++) {
      if (seconds <= ACQUIRE_BUCKETS[i]) {
        this.perBucket[i]++;
        break;
      }
    }
    if (waited) {
      this.waits++;
      this.waitSeconds += seconds;
    }
  }

  /** The histogram entry of these acquires: one object per tally, updated at each scrape. */
  entry(labels: Record<string, string>): HistogramEntry {
    const entry = (this.exported ??= { labels, bucketValues: {}, sum: 0, count: 0 });
    entry.labels = labels;
    for (let i = 0; i < ACQUIRE_BUCKETS.length; i++) entry.bucketValues[ACQUIRE_BUCKETS[i]!] = this.perBucket[i]!;
    entry.sum = this.sumSeconds;
    entry.count = this.count;
    return entry;
  }

  /** Waits recorded since the last call, for the wait counters. */
  takeWaits(): { waits: number; seconds: number } {
    const delta = { waits: this.waits - this.publishedWaits, seconds: this.waitSeconds - this.publishedWaitSeconds };
    this.publishedWaits = this.waits;
    this.publishedWaitSeconds = this.waitSeconds;
    return delta;
  }
}
