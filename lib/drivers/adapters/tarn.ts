/**
 * tarn, the pool inside knex (MikroORM 6) and inside Kysely's SQL Server dialect. Its public API (counts, events,
 * `acquire()` with `abort()`, `release()`) is typed here; the one private part we use — closing chosen free
 * connections, for max_idle_conns, which tarn has no option for — is checked when a pool opens.
 */

/** The public slice of a tarn `Pool` (tarn 3). */
export interface TarnPool<R = unknown> {
  readonly max: number;
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
  acquire(): { promise: Promise<R>; abort(): void };
  release(resource: R): boolean;
  on(event: 'acquireRequest', listener: (eventId: number) => void): void;
  on(event: 'acquireSuccess', listener: (eventId: number, resource: R) => void): void;
  on(event: 'acquireFail', listener: (eventId: number, error: Error) => void): void;
  on(event: 'release', listener: (resource: R) => void): void;
  on(event: 'createSuccess', listener: (eventId: number, resource: R) => void): void;
  on(event: 'createFail', listener: (eventId: number, error: Error) => void): void;
  on(event: 'destroyRequest', listener: (eventId: number, resource: R) => void): void;
  on(event: 'poolDestroyRequest', listener: (eventId: number) => void): void;
}

/** tarn's private free list: a free resource, oldest first. `settle()` exists from tarn 3.1 on. */
interface FreeEntry<R> {
  resource: R;
  settle?(): void;
}

interface TarnPrivate<R> {
  free?: FreeEntry<R>[];
  _destroy?(resource: R): Promise<unknown>;
}

/** Closes free connections beyond a limit, or says why it cannot. */
export interface IdleTrimmer<R> {
  /** Closes the longest-idle free connections beyond `keep`; `closing` hears of each before it goes. */
  trim(keep: number, closing: (resource: R) => void): void;
}

/**
 * The free-connection trimmer for a pool, or the reason it cannot be had: tarn keeps free connections in a private
 * array and destroys one through a private method. Missing either, max_idle_conns is not enforced (idle connections
 * still close after conn_max_idle_time).
 */
export function idleTrimmer<R>(pool: TarnPool<R>): IdleTrimmer<R> | string {
  const internals = pool as unknown as TarnPrivate<R>;
  if (!Array.isArray(internals.free) || typeof internals._destroy !== 'function') {
    return 'this tarn version has no free list and _destroy(): max_idle_conns is not enforced (idle connections still close after conn_max_idle_time)';
  }
  return {
    trim(keep, closing) {
      const free = internals.free!;
      while (free.length > keep) {
        const oldest = free.shift()!;
        // tarn ≥ 3.1 resolves a free resource's promise before destroying it (pool.destroy() waits on it); 3.0 has none.
        oldest.settle?.();
        closing(oldest.resource);
        void internals._destroy!(oldest.resource);
      }
    },
  };
}

/** True when every pooled connection is lent out or being opened, so a new caller must wait. */
export function isSaturated(pool: TarnPool): boolean {
  return pool.numFree() === 0 && pool.numUsed() + pool.numPendingCreates() >= pool.max;
}
