import type { QueryDone, QueryListener } from '../../vocabulary';
import type { KnexInstance, KnexQueryEvent } from '../adapters/knex';

/** Queries whose end never comes (a knex timeout without cancel emits nothing) are ended after this many newer ones. */
const MAX_RUNNING_QUERIES = 1_000;

/** Ends a query span whose result knex never reported. */
class QueryOutcomeUnknownError extends Error {
  override name = 'QueryOutcomeUnknownError';
}

/**
 * Reports each query run through a knex instance (EntityManager and query builder alike) to `listener`, from knex's
 * `query` / `query-response` / `query-error` events. Health pings run beside the events, so they stay out.
 */
export function reportKnexQueries(knex: KnexInstance, listener: QueryListener): void {
  const running = new Map<string, QueryDone>();
  const end = (query: KnexQueryEvent | undefined, error?: unknown) => {
    const id = query?.__knexQueryUid;
    const done = id === undefined ? undefined : running.get(id);
    if (!done) return;
    running.delete(id!);
    done(error);
  };
  knex.on('query', (query) => {
    if (typeof query?.__knexQueryUid !== 'string' || typeof query.sql !== 'string') return;
    if (running.size >= MAX_RUNNING_QUERIES) {
      const [oldest, done] = running.entries().next().value!;
      running.delete(oldest);
      done(new QueryOutcomeUnknownError());
    }
    running.set(query.__knexQueryUid, listener(query.sql));
  });
  knex.on('query-response', (_response, query) => end(query));
  knex.on('query-error', (error, query) => end(query, error ?? new Error('query failed')));
}
