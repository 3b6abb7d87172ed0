import { Logger, type Provider } from '@nestjs/common';
import { getToken, makeCounterProvider, makeGaugeProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';
import { type Counter, type Gauge, type Histogram, type Metric, register } from 'prom-client';
import { type GaugeEntry, type HistogramEntry, replaceGaugeEntries, replaceHistogramEntries, shareLabels } from './adapters/prom-client';
import { unprefixed } from './adapters/willsoto';
import { ACQUIRE_BUCKETS, CONNECTION_LABELS, HEALTH_CHECK_BUCKETS, INFO_LABELS, METRIC } from './metric-names';

/** What a scrape asks of each app's metrics (one `DbManagerMetrics` per app). */
export interface GaugeReader {
  readConnections(into: GaugeEntry[]): void;
  readInfo(into: GaugeEntry[]): void;
  readStatus(into: GaugeEntry[]): void;
  readPoolSize(into: GaugeEntry[]): void;
  /** Adds the acquires counted since the last scrape to the wait counters. */
  publishWaits(): void;
  /** One histogram entry per connection, from its acquire tally. */
  readAcquireDuration(into: HistogramEntry[]): void;
}

/**
 * Who reads each gauge. prom-client's registry is global and willsoto hands back an already registered metric by
 * name, collect function and all: so a gauge's collect asks its current readers, never a closure over the first app.
 */
const readers = new WeakMap<object, Set<GaugeReader>>();

/** `reader` starts answering `metric`'s scrapes. */
export function adoptMetric(metric: Metric<string>, reader: GaugeReader): void {
  const set = readers.get(metric) ?? new Set<GaugeReader>();
  set.add(reader);
  readers.set(metric, set);
}

/** `reader` stops; the last one out unregisters the metric from prom-client's registry, so the next app starts clean. */
export function releaseMetric(metric: Metric<string>, name: string, reader: GaugeReader): void {
  const set = readers.get(metric);
  set?.delete(reader);
  if (set?.size) return;
  if (register.getSingleMetric(name) === metric) register.removeSingleMetric(name);
}

function gauge(name: string, help: string, labelNames: readonly string[], read: (reader: GaugeReader, into: GaugeEntry[]) => void): Provider {
  return unprefixed(
    makeGaugeProvider({
      name,
      help,
      labelNames: [...labelNames],
      collect(this: Gauge<string>) {
        const entries: GaugeEntry[] = [];
        for (const reader of readers.get(this) ?? []) read(reader, entries);
        if (replaceGaugeEntries(this, entries)) return;
        if (!gaugesWarned) {
          gaugesWarned = true;
          new Logger('DbManager').warn(
            'this prom-client version keeps its series elsewhere: gauges are set the public way and label sets formatted on every scrape (the same /metrics, only slower)',
          );
        }
        this.reset();
        for (const { labels, value } of entries) this.set(labels, value);
      },
    }),
  );
}

/** Bumped whenever series are added (a connection tracked), so counters share the new series' labels once. */
let seriesGeneration = 0;
const sharedAt = new WeakMap<object, number>();

/** New counter series exist (their labels are shared at the next scrape). */
export function seriesAdded(): void {
  seriesGeneration++;
}

function counter(name: string, help: string, labelNames: readonly string[] = CONNECTION_LABELS, publish?: (this: Counter<string>) => void): Provider {
  return unprefixed(
    makeCounterProvider({
      name,
      help,
      labelNames: [...labelNames],
      collect(this: Counter<string>) {
        publish?.call(this);
        // Only after new series appeared: every series of ours is made when its connection is tracked.
        if (sharedAt.get(this) === seriesGeneration) return;
        shareLabels(this);
        sharedAt.set(this, seriesGeneration);
      },
    }),
  );
}

function histogram(name: string, help: string, buckets: number[], collect?: (this: Histogram<string>) => void): Provider {
  return unprefixed(makeHistogramProvider({ name, help, labelNames: [...CONNECTION_LABELS], buckets, ...(collect ? { collect } : {}) }));
}

/** Said once per process: a prom-client whose private maps are elsewhere (see adapters/prom-client.ts). */
let histogramWarned = false;
let gaugesWarned = false;

/** The wait counters are published from the acquire tallies at scrape time; whichever is read first publishes both. */
function publishWaits(metric: Metric<string>): void {
  for (const reader of readers.get(metric) ?? []) reader.publishWaits();
}

/** The injection token of one of our metrics (willsoto's `getToken`, so `@InjectMetric(name)` finds it too). */
export const metricToken = (name: string): string => getToken(name);

/** Every metric of the contract, as willsoto providers (registered in prom-client's default registry). */
export const metricProviders: Provider[] = [
  gauge(METRIC.connections, 'Connections registered, by database type (those with enable_metrics)', ['type'], (r, into) => r.readConnections(into)),
  gauge(METRIC.info, 'Always 1 per connection; its critical label lets alerts join on critical connections only', INFO_LABELS, (r, into) => r.readInfo(into)),
  gauge(METRIC.status, 'Connection health: 1 when up, 0 otherwise', CONNECTION_LABELS, (r, into) => r.readStatus(into)),
  gauge(METRIC.poolSize, 'Pool connections by state: open, in_use, idle, pending (callers waiting), max', [...CONNECTION_LABELS, 'state'], (r, into) => r.readPoolSize(into)),
  counter(METRIC.waits, 'Acquires that waited because every pooled connection was busy', CONNECTION_LABELS, function () {
    publishWaits(this);
  }),
  counter(METRIC.waitSeconds, 'Total time acquires waited for a pooled connection, in seconds', CONNECTION_LABELS, function () {
    publishWaits(this);
  }),
  counter(METRIC.reconnectAttempts, 'Attempts to bring a down connection back, by result', [...CONNECTION_LABELS, 'result']),
  counter(METRIC.lifetimeClosed, 'Connections closed for reaching conn_max_lifetime'),
  counter(METRIC.idleClosed, 'Connections closed for being idle longer than conn_max_idle_time'),
  counter(METRIC.maxIdleClosed, 'Connections closed because more than max_idle_conns were idle'),
  counter(METRIC.timeouts, 'Acquires that gave up after acquire_timeout'),
  histogram(METRIC.healthCheckDuration, 'Health check (ping) duration in seconds', HEALTH_CHECK_BUCKETS),
  histogram(METRIC.acquireDuration, 'Time to get a pooled connection, in seconds', ACQUIRE_BUCKETS, function () {
    const entries: HistogramEntry[] = [];
    for (const reader of readers.get(this) ?? []) reader.readAcquireDuration(entries);
    if (!replaceHistogramEntries(this, entries, (entry) => `${entry.labels.name}|${entry.labels.type}`) && !histogramWarned) {
      histogramWarned = true;
      new Logger('DbManager').warn(`this prom-client version keeps histogram entries elsewhere: ${METRIC.acquireDuration} stays empty`);
    }
  }),
];
