import type { CloseReason } from './driver';

/** A raw driver connection as knex's pool holds it, with the marks we put on it. */
export interface PooledConnection {
  __knex__disposed?: unknown;
  __dbmCreatedAt?: number;
  __dbmClose?: CloseReason;
  on?(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** A caller's acquire still waiting in tarn's queue. */
interface PendingAcquire {
  reject(error: unknown): void;
}

/** The slice of tarn's pool this library reads (tarn 3 / knex 3): its public methods, and the internals below. */
export interface TarnPool {
  min: number;
  max: number;
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
  acquire(): { promise: Promise<PooledConnection>; abort(): void };
  release(resource: PooledConnection): boolean;
  check(): void;
  destroy(): Promise<unknown>;
  on(event: string, listener: (...args: never[]) => void): void;
  removeListener(event: string, listener: (...args: never[]) => void): void;
  // Internals: tarn has no public API for these.
  free: { resource: PooledConnection; settle(): void }[];
  used: { resource: PooledConnection }[];
  _destroy(resource: PooledConnection): Promise<unknown>;
  /** Callers waiting for a connection, oldest first. */
  pendingAcquires: PendingAcquire[];
  /** How long tarn waits before it retries a failed create; read at each failure. */
  createRetryIntervalMillis: number;
}

/** The internals of tarn's pool this library relies on, and what each one is for. */
const INTERNALS: Record<string, { kind: 'array' | 'function' | 'number'; without: string }> = {
  free: { kind: 'array', without: 'max_idle_conns is not enforced' },
  used: { kind: 'array', without: 'connections lent out are not torn down at shutdown_timeout' },
  _destroy: { kind: 'function', without: 'max_idle_conns is not enforced' },
  pendingAcquires: { kind: 'array', without: 'a permanent connect error (wrong password, unknown database) fails waiting callers only at acquire_timeout' },
  createRetryIntervalMillis: { kind: 'number', without: 'failed connects are retried every 200 ms instead of with backoff' },
};

/**
 * The internals of `pool` that are missing or changed shape (a tarn release other than 3.x), each with what stops
 * working without it. Empty when the pool is the tarn 3 this library was built against.
 */
export function missingTarnInternals(pool: object): string[] {
  const record = pool as Record<string, unknown>;
  return Object.entries(INTERNALS).flatMap(([name, { kind, without }]) => {
    const value = record[name];
    const ok = kind === 'array' ? Array.isArray(value) : typeof value === kind;
    return ok ? [] : [`tarn's pool.${name} (${without})`];
  });
}

/** Rejects every caller waiting for a connection with `error` (tarn does it for one caller per failed create at most). */
export function rejectPendingAcquires(pool: TarnPool, error: unknown): void {
  if (!Array.isArray(pool.pendingAcquires)) return;
  // Each rejection removes itself from the queue (asynchronously): iterate over a copy.
  for (const pending of [...pool.pendingAcquires]) pending.reject(error);
}

/** Sets how long tarn waits before it retries a failed create (it reads the field at each failure). */
export function setCreateRetryDelay(pool: TarnPool, ms: number): void {
  if (typeof pool.createRetryIntervalMillis === 'number') pool.createRetryIntervalMillis = ms;
}
