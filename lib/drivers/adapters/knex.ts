import { createRequire } from 'node:module';
import type { MikroORM } from '@mikro-orm/core';
import type { TarnPool } from './tarn';

/**
 * knex, MikroORM 6's SQL layer. Its client methods below (`acquireConnection`, `query`, `acquireRawConnection`, …) are
 * what every knex dialect is built on but are not documented API, so `checkedKnex` verifies them when a pool opens.
 */

/** A raw driver connection as knex's pool holds it (a `pg.Client`, a sqlite3 `Database`, a tedious `Connection`…). */
export type RawConnection = object;

/** The slice of a knex client this library uses. */
export interface KnexClient {
  pool?: TarnPool<RawConnection>;
  acquireConnection(): Promise<RawConnection>;
  releaseConnection(connection: RawConnection): Promise<void>;
  /** Runs one statement on a given connection without emitting knex's query events (health pings stay untraced). */
  query(connection: RawConnection, query: { sql: string; bindings: unknown[]; options: object }): Promise<unknown>;
  acquireRawConnection?(): Promise<RawConnection>;
  destroyRawConnection?(connection: RawConnection): Promise<void>;
}

/** A knex instance as far as this library uses it: its client and its (public) query events. */
export interface KnexInstance {
  client: KnexClient;
  on(event: 'query', listener: (query: KnexQueryEvent) => void): unknown;
  on(event: 'query-response', listener: (response: unknown, query: KnexQueryEvent) => void): unknown;
  on(event: 'query-error', listener: (error: unknown, query: KnexQueryEvent) => void): unknown;
}

/** A knex query event's payload: `__knexQueryUid` (documented with the events) is set on builder and `raw` queries. */
export interface KnexQueryEvent {
  __knexQueryUid?: string;
  sql?: unknown;
}

/** The knex instance of a MikroORM 6 SQL connection (`em.getKnex()`, public there). */
export function knexOf(orm: MikroORM): KnexInstance {
  return (orm.em as unknown as { getKnex(): KnexInstance }).getKnex();
}

/** A knex instance whose client was checked: it has its pool and the methods every access path needs. */
export type CheckedKnex = KnexInstance & { client: KnexClient & { pool: TarnPool<RawConnection> } };

/** The knex client of a pool that just opened, its essential methods checked; `warn` hears what degrades. */
export function checkedKnex(knex: KnexInstance, warn: (message: string) => void): CheckedKnex {
  const client = knex.client as Partial<KnexClient> | undefined;
  const missing = (['acquireConnection', 'releaseConnection', 'query'] as const).filter((name) => typeof client?.[name] !== 'function');
  if (!client?.pool || missing.length) {
    throw new Error(`this knex version lacks ${[...(client?.pool ? [] : ['its pool']), ...missing].join(', ')}: install the knex that MikroORM 6.6 depends on`);
  }
  if (typeof client.acquireRawConnection !== 'function' || typeof client.destroyRawConnection !== 'function') {
    warn('this knex version has no acquireRawConnection()/destroyRawConnection(): a health ping cannot open its own connection while every pooled one is busy');
  }
  return knex as CheckedKnex;
}

/**
 * The connection a knex transaction runs on (its client lends that one connection). Fails closed: without it a lent
 * connection would run outside the caller's transaction (and on a one-connection pool wait for it forever).
 */
export function transactionConnection(transaction: unknown, connectionName: string): Promise<RawConnection> {
  const client = (transaction as { client?: Partial<KnexClient> }).client;
  if (typeof client?.acquireConnection === 'function') return client.acquireConnection();
  return Promise.reject(
    new Error(
      `Connection "${connectionName}": this knex version's transaction has no client.acquireConnection(), so withNativeClient() cannot lend the transaction's own connection inside em.transactional and refuses rather than lend one outside it`,
    ),
  );
}

/**
 * Guards `client.acquireConnection()`, the one door of the EntityManager, the query builder and the native client to
 * the pool: `refuse()` may refuse before acquiring (a closed connection), and every error passes through `map`. A
 * rejection handler, not an async wrapper: no extra tick when it succeeds.
 */
export function guardAcquire(client: KnexClient, refuse: () => Error | undefined, map: (error: unknown) => unknown): void {
  const acquire = client.acquireConnection.bind(client);
  client.acquireConnection = () => {
    const refused = refuse();
    if (refused) return Promise.reject(refused);
    return acquire().catch((error: unknown) => Promise.reject(map(error)));
  };
}

/** Makes `client.destroyRawConnection` resolve at once for connections `isGone` says are already closed. */
export function skipDestroyOfClosed(client: KnexClient, isGone: (connection: RawConnection) => boolean): void {
  const destroy = client.destroyRawConnection?.bind(client);
  if (!destroy) return;
  client.destroyRawConnection = (connection) => (isGone(connection) ? Promise.resolve() : destroy(connection));
}

/** True for the timeout tarn raises when a caller waited `acquireTimeoutMillis` (its exported `TimeoutError`). */
export function isPoolTimeout(error: unknown): boolean {
  const TimeoutError = tarnTimeoutError();
  return TimeoutError ? error instanceof TimeoutError : (error as Error | undefined)?.constructor?.name === 'TimeoutError';
}

let timeoutClass: (new () => Error) | null | undefined;

/** tarn's TimeoutError as knex resolves it (undefined when knex is not installed: MikroORM 7). */
function tarnTimeoutError(): (new () => Error) | undefined {
  if (timeoutClass === undefined) {
    try {
      const fromMikroOrm = createRequire(require.resolve('@mikro-orm/knex'));
      const fromKnex = createRequire(fromMikroOrm.resolve('knex'));
      timeoutClass = (fromKnex('tarn') as { TimeoutError: new () => Error }).TimeoutError;
    } catch {
      timeoutClass = null;
    }
  }
  return timeoutClass ?? undefined;
}
