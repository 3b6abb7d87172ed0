export { ConnectionTracing, TRACER_NAME, type SpanOutcome } from './connection-tracing';
export { logConnectionEvents, queryLog } from './connection-log';
export { combineQueryListeners, errorType } from './query-listener';
export { sanitizeSql, summarizeSql, type SanitizeOptions, type SqlSummary } from './sql-summary';
