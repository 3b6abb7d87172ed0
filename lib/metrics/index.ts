export { DbManagerMetrics, dbManagerMetricsProviders, type DbManagerMetricSet } from './db-manager-metrics';
export { CONNECTION_LABELS, DURATION_BUCKETS, METRIC, POOL_STATES, RECONNECT_RESULTS } from './metric-names';
