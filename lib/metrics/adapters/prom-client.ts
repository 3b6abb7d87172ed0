import type { Gauge, Histogram } from 'prom-client';

/** One label set of a prom-client histogram, as it keeps it (buckets not cumulative, keyed by upper bound). */
export interface HistogramEntry {
  labels: Record<string, string>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/** One series of a gauge as prom-client keeps it; `sharedLabels` is `labels` itself (see `shareLabels`). */
export interface GaugeEntry {
  labels: Record<string, string>;
  sharedLabels: Record<string, string>;
  value: number;
}

/** A gauge series made once per label set, its value updated in place at each scrape. */
export function gaugeEntry(labels: Record<string, string>): GaugeEntry {
  return { labels, sharedLabels: labels, value: 0 };
}

/**
 * Makes `entries` a gauge's series, as its private map of label sets (which its `get()` exports): `set()` would hash
 * every label set on every scrape. Returns false when this prom-client keeps its series elsewhere (the caller then
 * sets them the public way).
 */
export function replaceGaugeEntries(gauge: Gauge<string>, entries: readonly GaugeEntry[]): boolean {
  const internals = gauge as unknown as { hashMap?: unknown };
  if (typeof internals.hashMap !== 'object' || internals.hashMap === null) return false;
  // Keyed by position: only get() reads this map, and our gauges are never set() by anyone else.
  const map: Record<number, GaugeEntry> = {};
  for (let i = 0; i < entries.length; i++) map[i] = entries[i]!;
  internals.hashMap = map;
  return true;
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

/** A label set's entry in a prom-client metric's private map, as the registry reads it when it writes the text. */
interface LabelledEntry {
  labels?: object;
  sharedLabels?: object;
}

/**
 * Lets prom-client's registry write each series' labels once per label set instead of once per scrape. It formats an
 * entry's `sharedLabels` once per object (cached by identity) and skips those names in `labels`; entries without it
 * get a fresh `{}`, so every series was formatted, and a WeakMap entry made, on every scrape (a third of a scrape's
 * time with 100 connections). An entry's labels object lives as long as the entry, so sharing it is exact. Does
 * nothing when this prom-client keeps its entries elsewhere (scrapes are then as slow as before, and still correct).
 */
export function shareLabels(metric: unknown): void {
  const hashMap = (metric as { hashMap?: unknown }).hashMap;
  if (typeof hashMap !== 'object' || hashMap === null) return;
  for (const entry of Object.values(hashMap) as LabelledEntry[]) {
    if (entry.sharedLabels === undefined && entry.labels) entry.sharedLabels = entry.labels;
  }
}
