/** Metric names: part of the public contract (never prefixed, never renamed). */
export const METRIC = {
  connectionsTotal: 'dbmanager_connections_total',
  status: 'dbmanager_connection_status',
  poolSize: 'dbmanager_connection_pool_size',
  waitCount: 'dbmanager_connection_wait_count',
  waitDuration: 'dbmanager_connection_wait_duration_seconds',
  reconnectAttempts: 'dbmanager_reconnect_attempts_total',
  lifetimeClosed: 'dbmanager_connection_lifetime_closed_total',
  idleClosed: 'dbmanager_connection_idle_closed_total',
  maxIdleClosed: 'dbmanager_connection_max_idle_closed_total',
  timeouts: 'dbmanager_connection_timeouts_total',
  healthCheckDuration: 'dbmanager_health_check_duration_seconds',
  acquireDuration: 'dbmanager_connection_acquire_seconds',
} as const;

/** Histogram buckets in seconds (1 ms … 10 s). */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** Labels of every per-connection series. */
export const CONNECTION_LABELS = ['name', 'type'] as const;

/** `state` values of `dbmanager_connection_pool_size`. */
export const POOL_STATES = ['open', 'in_use', 'idle', 'pending', 'max'] as const;

/** `result` values of `dbmanager_reconnect_attempts_total`. */
export const RECONNECT_RESULTS = ['success', 'failure'] as const;
