/**
 * Metric names: part of the public contract (never prefixed, never renamed). Each passes `promtool check metrics`:
 * counters end `_total`, gauges do not, units are base units (seconds).
 */
export const METRIC = {
  connections: 'dbmanager_connections',
  info: 'dbmanager_connection_info',
  status: 'dbmanager_connection_status',
  poolSize: 'dbmanager_connection_pool_size',
  waits: 'dbmanager_connection_waits_total',
  waitSeconds: 'dbmanager_connection_wait_seconds_total',
  reconnectAttempts: 'dbmanager_reconnect_attempts_total',
  lifetimeClosed: 'dbmanager_connection_lifetime_closed_total',
  idleClosed: 'dbmanager_connection_idle_closed_total',
  maxIdleClosed: 'dbmanager_connection_max_idle_closed_total',
  timeouts: 'dbmanager_connection_timeouts_total',
  healthCheckDuration: 'dbmanager_health_check_duration_seconds',
  acquireDuration: 'dbmanager_connection_acquire_seconds',
} as const;

/**
 * Acquire-time buckets in seconds: half-decade steps from 100 µs to 10 s. A warm pool lends a connection in ~10 µs,
 * so the lowest bound separates "free connection" from "waited"; 11 bounds (14 series) keep thousands of
 * connections affordable.
 */
export const ACQUIRE_BUCKETS = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];

/** Health-check buckets in seconds (1 ms … 10 s): a ping is a round trip, and its timeout defaults to 5 s. */
export const HEALTH_CHECK_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** Labels of every per-connection series. */
export const CONNECTION_LABELS = ['name', 'type'] as const;

/** Labels of `dbmanager_connection_info`: the per-connection labels and `critical` (`true`/`false`). */
export const INFO_LABELS = [...CONNECTION_LABELS, 'critical'] as const;

/** `state` values of `dbmanager_connection_pool_size`. */
export const POOL_STATES = ['open', 'in_use', 'idle', 'pending', 'max'] as const;

/** `result` values of `dbmanager_reconnect_attempts_total`. */
export const RECONNECT_RESULTS = ['success', 'failure'] as const;
