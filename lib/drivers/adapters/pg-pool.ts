/**
 * pg-pool (node-postgres' pool), the pool of a PostgreSQL connection on MikroORM 7: MikroORM builds it and hands it to
 * Kysely. Its public API (counts, events, `connect()`, the `Client` option) is typed here; the private part we use —
 * closing chosen idle clients, for max_idle_conns, which pg-pool has no option for — is checked when a pool opens.
 */

/** A pg client as the pool lends it. */
export interface PgPoolClient {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  release(error?: unknown): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** The public slice of a pg-pool `Pool` (pg 8). */
export interface PgPool {
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
  readonly options: { max?: number } & Record<string, unknown>;
  /** True once `end()` was called (a second call rejects). */
  readonly ending?: boolean;
  connect(): Promise<PgPoolClient>;
  end(): Promise<void>;
  on(event: 'connect' | 'acquire' | 'remove', listener: (client: PgPoolClient) => void): unknown;
  once(event: 'connect', listener: (client: PgPoolClient) => void): unknown;
  on(event: 'release', listener: (error: unknown, client: PgPoolClient) => void): unknown;
  on(event: 'error', listener: (error: Error, client: PgPoolClient) => void): unknown;
}

interface PgPoolPrivate {
  _idle?: Array<{ client?: PgPoolClient }>;
  _remove?(client: PgPoolClient): void;
  _pendingQueue?: Array<{ callback?: (error: Error) => void }>;
}

/**
 * Puts `around` in front of the pool's `connect()`, the one door through which the EntityManager, Kysely and the
 * native client all get a connection (Kysely calls it per query), so acquires can be timed and their errors named.
 * Returns pg-pool's own `connect()`, which goes around it.
 */
export function interceptConnect(pool: PgPool, around: (connect: () => Promise<PgPoolClient>) => Promise<PgPoolClient>): () => Promise<PgPoolClient> {
  const connect = pool.connect.bind(pool) as () => Promise<PgPoolClient>;
  (pool as { connect: () => Promise<PgPoolClient> }).connect = () => around(connect);
  return connect;
}

/** Closes idle clients beyond a limit, or says why it cannot. */
export interface IdleClientTrimmer {
  /** Closes the longest-idle clients beyond `keep`; `closing` hears of each before it goes. */
  trim(keep: number, closing: (client: PgPoolClient) => void): void;
}

/**
 * The idle-client trimmer for a pool, or the reason it cannot be had: pg-pool keeps idle clients in a private array
 * (oldest first) and removes one through a private method. Missing either, max_idle_conns is not enforced.
 */
export function idleClientTrimmer(pool: PgPool): IdleClientTrimmer | string {
  const internals = pool as unknown as PgPoolPrivate;
  if (!Array.isArray(internals._idle) || typeof internals._remove !== 'function') {
    return 'this pg-pool version has no idle list and _remove(): max_idle_conns is not enforced (idle connections still close after conn_max_idle_time)';
  }
  return {
    trim(keep, closing) {
      const idle = internals._idle!;
      while (idle.length > keep) {
        const oldest = idle[0]?.client;
        if (!oldest) return;
        closing(oldest);
        internals._remove!(oldest);
      }
    },
  };
}

/**
 * Takes a lent client back at once (shutdown's last resort): released with `error`, pg-pool removes it and its end()
 * stops waiting for it. The holder's own release later does nothing (pg-pool's `release`, set on the client at each
 * checkout, would throw on a second call and mask the error the holder's query got).
 */
export function takeBack(client: PgPoolClient, error: Error): void {
  client.release(error);
  (client as { release: (error?: unknown) => void }).release = () => undefined;
}

/**
 * Fails every caller waiting for a client, or says why it cannot: pg-pool's end() leaves its private queue of waiters
 * alone (each waits out connectionTimeoutMillis, acquire_timeout), and a waiter's callback clears its own timer.
 */
export function waitingRejecter(pool: PgPool): ((error: Error) => void) | string {
  const internals = pool as unknown as PgPoolPrivate;
  if (!Array.isArray(internals._pendingQueue)) {
    return 'this pg-pool version has no queue of waiters: at shutdown, callers still waiting for a connection fail only after acquire_timeout';
  }
  return (error) => {
    for (const waiter of internals._pendingQueue!.splice(0)) waiter.callback?.(error);
  };
}

/** True for the error pg-pool raises when a caller waited `connectionTimeoutMillis` for a client. */
export function isPgPoolTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'timeout exceeded when trying to connect';
}
