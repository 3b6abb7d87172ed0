export { DbManagerMetrics, dbManagerMetricsProviders, type DbManagerMetricSet } from './db-manager-metrics';
export { ACQUIRE_BUCKETS, CONNECTION_LABELS, HEALTH_CHECK_BUCKETS, INFO_LABELS, METRIC, POOL_STATES, RECONNECT_RESULTS } from './metric-names';
