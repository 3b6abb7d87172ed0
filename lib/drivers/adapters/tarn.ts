/**
 * tarn, the pool inside knex (MikroORM 6) and inside Kysely's SQL Server dialect. Its public API (counts, events,
 * `acquire()` with `abort()`, `release()`) is typed here; the private parts we use, each checked when a pool opens
 * (`missingInternals` says what stops working without each one):
 * - closing chosen free connections (max_idle_conns, which tarn has no option for);
 * - failing every waiting caller at once on a permanent connect error (tarn fails at most one per failed create);
 * - the delay before tarn retries a failed connect (fixed 200 ms otherwise), so retries back off.
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
  removeListener(event: 'createFail', listener: (eventId: number, error: Error) => void): void;
}

/** The internals of a tarn pool this library relies on, and what stops working without each one. */
const INTERNALS: Record<string, { kind: 'array' | 'function' | 'number'; without: string }> = {
  free: { kind: 'array', without: 'max_idle_conns is not enforced' },
  _destroy: { kind: 'function', without: 'max_idle_conns is not enforced' },
  pendingAcquires: { kind: 'array', without: 'a permanent connect error (wrong password, unknown database) fails waiting callers only at acquire_timeout' },
  createRetryIntervalMillis: { kind: 'number', without: 'failed connects are retried every 200 ms instead of with backoff' },
};

/** One sentence per internal this pool lacks (a tarn release other than 3.x), each with what stops working; empty when all are there. */
export function missingInternals(pool: object): string[] {
  const record = pool as Record<string, unknown>;
  return Object.entries(INTERNALS).flatMap(([name, { kind, without }]) => {
    const value = record[name];
    const present = kind === 'array' ? Array.isArray(value) : typeof value === kind;
    return present ? [] : [`this tarn version has no pool.${name}: ${without}`];
  });
}

/** Rejects every caller waiting for a connection with `error` (each rejection takes itself out of tarn's queue). */
export function rejectPendingAcquires(pool: TarnPool, error: unknown): void {
  const pending = (pool as unknown as { pendingAcquires?: Array<{ reject(error: unknown): void }> }).pendingAcquires;
  if (Array.isArray(pending)) for (const acquire of [...pending]) acquire.reject(error);
}

/** Sets how long tarn waits before it retries a failed connect (it reads the field at each failure). */
export function setCreateRetryDelay(pool: TarnPool, ms: number): void {
  const internals = pool as unknown as { createRetryIntervalMillis?: unknown };
  if (typeof internals.createRetryIntervalMillis === 'number') internals.createRetryIntervalMillis = ms;
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
 * The free-connection trimmer for a pool, undefined when it cannot be had: tarn keeps free connections in a private
 * array and destroys one through a private method (`missingInternals` then says max_idle_conns is not enforced).
 */
export function idleTrimmer<R>(pool: TarnPool<R>): IdleTrimmer<R> | undefined {
  const internals = pool as unknown as TarnPrivate<R>;
  if (!Array.isArray(internals.free) || typeof internals._destroy !== 'function') return undefined;
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
