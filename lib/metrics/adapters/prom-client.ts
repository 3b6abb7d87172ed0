import type { Histogram } from 'prom-client';

/** One label set of a prom-client histogram, as it keeps it (buckets not cumulative, keyed by upper bound). */
export interface HistogramEntry {
  labels: Record<string, string>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * prom-client. A histogram exports `Object.values(hashMap)`, its private map of label sets: the acquire histogram is
 * rebuilt there from plain tallies at each scrape, because feeding prom-client on every acquire (a label hash per
 * call) cost ~1 µs per query. Returns false, so the caller can say once that the histogram is empty, when this
 * prom-client keeps its entries elsewhere.
 */
export function replaceHistogramEntries(histogram: Histogram<string>, entries: HistogramEntry[], key: (entry: HistogramEntry) => string): boolean {
  const internals = histogram as unknown as { hashMap?: unknown };
  if (typeof internals.hashMap !== 'object' || internals.hashMap === null) return false;
  internals.hashMap = Object.fromEntries(entries.map((entry) => [key(entry), entry]));
  return true;
}
