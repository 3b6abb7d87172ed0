import { type Attributes, context, type Span, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { ConnectionTarget, QueryListener } from '../vocabulary';
import { errorType } from './query-listener';
import { type SanitizeOptions, sanitizeOptionsFor, summarizeSql } from './sql-summary';

/** The instrumentation scope of every span this library makes. */
export const TRACER_NAME = 'nestjs-dbmanager';

/** How a traced operation ended, for its span (messages must already be free of secrets). */
export interface SpanOutcome {
  error?: string;
  attributes?: Attributes;
}

/**
 * Spans of one connection (`enable_tracing`), through `@opentelemetry/api` only: the app's registered tracer
 * provider decides where they go (none registered = no-op). Attributes never carry bound values or credentials.
 */
export class ConnectionTracing {
  private readonly base: Attributes;
  private readonly dialect: SanitizeOptions;

  constructor(connectionName: string, target: ConnectionTarget) {
    this.base = { 'db.system.name': target.dbSystem, 'dbmanager.connection.name': connectionName };
    if (target.namespace !== undefined) this.base['db.namespace'] = target.namespace;
    if (target.address !== undefined) this.base['server.address'] = target.address;
    if (target.port !== undefined) this.base['server.port'] = target.port;
    this.dialect = sanitizeOptionsFor(target.dbSystem);
  }

  // Looked up per span, so a tracer provider registered after the connection was made is still used.
  private get tracer(): Tracer {
    return trace.getTracer(TRACER_NAME);
  }

  /**
   * Runs `fn` in an active span `name` (so spans it causes nest under it). A throw marks the span failed with
   * `redact`ed message; `outcome` describes a result that is a failure without throwing (a health check that is down).
   */
  async span<T>(name: string, fn: () => Promise<T>, redact: (e: unknown) => string, outcome?: (result: T) => SpanOutcome): Promise<T> {
    return this.tracer.startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes: this.base }, async (span: Span) => {
      try {
        const result = await fn();
        const described = outcome?.(result);
        if (described?.attributes) span.setAttributes(described.attributes);
        if (described?.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: described.error });
        return result;
      } catch (error) {
        span.setAttribute('error.type', errorType(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: redact(error) });
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /** One CLIENT span per query, named after its operation; a failure records only its error code, never its message (which may quote values). */
  readonly startQuery: QueryListener = (sql) => {
    const { operation, summary } = summarizeSql(sql, this.dialect);
    const span = this.tracer.startSpan(
      operation,
      { kind: SpanKind.CLIENT, attributes: { ...this.base, 'db.operation.name': operation, 'db.query.summary': summary } },
      context.active(),
    );
    return (error) => {
      if (error !== undefined) {
        const type = errorType(error);
        span.setAttribute('error.type', type);
        if (/^(?=.*\d)[0-9A-Z]{5}$/.test(type)) span.setAttribute('db.response.status_code', type);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    };
  };
}
