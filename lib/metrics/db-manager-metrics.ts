import type { FactoryProvider, OnApplicationShutdown } from '@nestjs/common';
import type { Counter, Gauge, Histogram, Metric } from 'prom-client';
import type { DbConnection } from '../connection/db-connection';
import { DbManager } from '../manager/db-manager';
import { METRIC, POOL_STATES, RECONNECT_RESULTS } from './metric-names';
import { AcquireTally } from './acquire-tally';
import { type GaugeEntry, gaugeEntry, type HistogramEntry } from './adapters/prom-client';
import { adoptMetric, type GaugeReader, metricProviders, metricToken, releaseMetric, seriesAdded } from './metric-providers';

type MetricKey = keyof typeof METRIC;

/** The metric objects, by key (willsoto providers resolve them). */
export interface DbManagerMetricSet {
  connections: Gauge<string>;
  info: Gauge<string>;
  status: Gauge<string>;
  poolSize: Gauge<string>;
  waits: Counter<string>;
  waitSeconds: Counter<string>;
  reconnectAttempts: Counter<string>;
  lifetimeClosed: Counter<string>;
  idleClosed: Counter<string>;
  maxIdleClosed: Counter<string>;
  timeouts: Counter<string>;
  healthCheckDuration: Histogram<string>;
  acquireDuration: Histogram<string>;
}

interface Tracked {
  connection: DbConnection;
  labels: { name: string; type: string };
  /**
   * Its gauge series, made once: a scrape updates their values in place, and prom-client's registry formats each
   * label set once (see `shareLabels`) instead of on every scrape.
   */
  series: { info: GaugeEntry; status: GaugeEntry; pool: Record<(typeof POOL_STATES)[number], GaugeEntry> };
  acquires: AcquireTally;
  off: Array<() => void>;
  /**
   * False until the connection first opens its pool: a lazy tenant never used exports only its info and status
   * series (two, not ~40), so a thousand declared tenants cost a thousand times two.
   */
  opened: boolean;
}

/**
 * One app's pool metrics: gauges read live at scrape time, counters and histograms recorded as each pool and health
 * event happens. Connections with `enable_metrics: false` export nothing; a removed connection's series go away;
 * on shutdown the metrics leave prom-client's registry.
 */
export class DbManagerMetrics implements GaugeReader, OnApplicationShutdown {
  private readonly tracked = new Map<string, Tracked>();
  private readonly stopWatching: () => void;
  private stopped = false;

  constructor(
    manager: DbManager,
    private readonly metrics: DbManagerMetricSet,
  ) {
    for (const key of Object.keys(METRIC) as MetricKey[]) adoptMetric(metrics[key] as Metric<string>, this);
    this.stopWatching = manager.onConnections({ added: (c) => this.track(c), removed: (c) => this.untrack(c) });
  }

  readConnections(into: GaugeEntry[]): void {
    const byType = new Map<string, number>();
    for (const { labels } of this.tracked.values()) byType.set(labels.type, (byType.get(labels.type) ?? 0) + 1);
    for (const [type, count] of byType) into.push({ ...gaugeEntry({ type }), value: count });
  }

  readInfo(into: GaugeEntry[]): void {
    for (const { series } of this.tracked.values()) into.push(series.info);
  }

  readStatus(into: GaugeEntry[]): void {
    for (const { connection, series } of this.tracked.values()) {
      series.status.value = connection.status === 'up' || connection.status === 'idle' ? 1 : 0;
      into.push(series.status);
    }
  }

  readPoolSize(into: GaugeEntry[]): void {
    for (const { connection, series } of this.tracked.values()) {
      // No pool open on purpose: its sizes are all 0, and absent series sum the same.
      if (connection.status === 'idle') continue;
      const g = connection.gauges();
      const { open, in_use, idle, pending, max } = series.pool;
      open.value = g.open;
      in_use.value = g.inUse;
      idle.value = g.idle;
      pending.value = g.pending;
      max.value = g.max;
      into.push(open, in_use, idle, pending, max);
    }
  }

  publishWaits(): void {
    for (const { acquires, labels } of this.tracked.values()) {
      const { waits, seconds } = acquires.takeWaits();
      if (waits) {
        this.metrics.waits.inc(labels, waits);
        this.metrics.waitSeconds.inc(labels, seconds);
      }
    }
  }

  readAcquireDuration(into: HistogramEntry[]): void {
    for (const { acquires, labels, opened } of this.tracked.values()) if (opened) into.push(acquires.entry(labels));
  }

  /** Stops recording and unregisters the metrics (the last app out removes them from prom-client's registry). */
  onApplicationShutdown(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopWatching();
    for (const { connection } of [...this.tracked.values()]) this.untrack(connection);
    for (const key of Object.keys(METRIC) as MetricKey[]) releaseMetric(this.metrics[key] as Metric<string>, METRIC[key], this);
  }

  private track(connection: DbConnection): void {
    if (this.stopped || !connection.metricsEnabled || this.tracked.has(connection.name)) return;
    const labels = { name: connection.name, type: connection.type };
    const m = this.metrics;
    const acquires = new AcquireTally();
    const series: Tracked['series'] = {
      info: { ...gaugeEntry({ ...labels, critical: String(connection.critical) }), value: 1 },
      status: gaugeEntry({ ...labels }),
      pool: Object.fromEntries(POOL_STATES.map((state) => [state, gaugeEntry({ ...labels, state })])) as unknown as Tracked['series']['pool'],
    };
    const tracked: Tracked = { connection, labels, series, acquires, off: [], opened: false };
    const opened = () => {
      if (tracked.opened) return;
      tracked.opened = true;
      // Counters start from what the connection counted before we were listening (startup), so they match stats().
      const stats = connection.stats();
      m.waits.inc(labels, stats.waitCount);
      m.waitSeconds.inc(labels, stats.waitDurationMs / 1000);
      m.timeouts.inc(labels, stats.timeouts);
      m.lifetimeClosed.inc(labels, stats.lifetimeClosed);
      m.idleClosed.inc(labels, stats.idleClosed);
      m.maxIdleClosed.inc(labels, stats.maxIdleClosed);
      for (const result of RECONNECT_RESULTS) m.reconnectAttempts.inc({ ...labels, result }, 0);
      m.healthCheckDuration.zero(labels);
      seriesAdded();
    };
    if (connection.status !== 'idle') opened();

    const off = [
      // The hot path: plain arithmetic, published to prom-client at scrape time.
      connection.on('acquire', (waitMs, waited) => acquires.record(waitMs / 1000, waited)),
      connection.on('acquireTimeout', (waitMs) => {
        m.timeouts.inc(labels);
        m.waits.inc(labels);
        m.waitSeconds.inc(labels, waitMs / 1000);
      }),
      connection.on('closed', (reason) => {
        if (reason === 'lifetime') m.lifetimeClosed.inc(labels);
        else if (reason === 'idle') m.idleClosed.inc(labels);
        else if (reason === 'max_idle') m.maxIdleClosed.inc(labels);
      }),
      connection.on('healthCheck', (result) => m.healthCheckDuration.observe(labels, result.responseTimeMs / 1000)),
      connection.on('reconnect', (result) => m.reconnectAttempts.inc({ ...labels, result })),
      connection.on('status', (status) => {
        if (status !== 'idle') opened();
      }),
    ];
    tracked.off = off;
    this.tracked.set(connection.name, tracked);
    seriesAdded();
  }

  private untrack(connection: DbConnection): void {
    const tracked = this.tracked.get(connection.name);
    if (!tracked || tracked.connection !== connection) return;
    this.tracked.delete(connection.name);
    for (const off of tracked.off) off();
    const m = this.metrics;
    const { labels } = tracked;
    // A last publish of its waits is not needed: its series go away with it.
    for (const metric of [m.waits, m.waitSeconds, m.lifetimeClosed, m.idleClosed, m.maxIdleClosed, m.timeouts, m.healthCheckDuration]) {
      metric.remove(labels);
    }
    for (const result of RECONNECT_RESULTS) m.reconnectAttempts.remove({ ...labels, result });
  }
}

/** The metric providers and the `DbManagerMetrics` that feeds them, for `DbManagerModule`. */
export function dbManagerMetricsProviders(): Array<FactoryProvider | (typeof metricProviders)[number]> {
  const keys = Object.keys(METRIC) as MetricKey[];
  const service: FactoryProvider = {
    provide: DbManagerMetrics,
    useFactory: (manager: DbManager, ...resolved: Metric<string>[]) =>
      new DbManagerMetrics(manager, Object.fromEntries(keys.map((key, i) => [key, resolved[i]])) as unknown as DbManagerMetricSet),
    inject: [DbManager, ...keys.map((key) => metricToken(METRIC[key]))],
  };
  return [...metricProviders, service];
}
