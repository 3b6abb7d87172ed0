/**
 * mysql2 (the client library of @mikro-orm/mysql, and of @mikro-orm/mariadb on MikroORM 7). Its `destroy()` ends the
 * socket gracefully (it waits on a hung server), so a hung connection is torn down through its `stream`. Its pool
 * (MikroORM 7's) has public `getConnection()` / `releaseConnection()` / `end()` but no counts, no acquire timeout and
 * no way to close chosen idle connections: those need its private lists, checked when a pool opens
 * (`poolInternals`), with what stops working without them said once.
 */

/** A pooled mysql2 connection as far as the session uses it (all public but `stream`). */
export interface Mysql2Connection {
  threadId?: number | null;
  query(sql: string, callback: (error: (Error & { errno?: number }) | null, rows?: unknown) => void): unknown;
  release(): void;
  destroy(): void;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  once(event: 'end', listener: () => void): unknown;
}

/** The callback `getConnection` takes. */
export type GetConnectionCallback = (error: Error | null, connection?: Mysql2Connection) => void;

/** The public slice of a mysql2 callback `Pool`. */
export interface Mysql2Pool {
  getConnection(callback: GetConnectionCallback): void;
  releaseConnection(connection: Mysql2Connection): void;
  end(callback?: (error?: unknown) => void): void;
}

/** Tears a mysql2 connection's socket down at once; false when this mysql2 version keeps no `stream`. */
export function destroyMysql2Socket(connection: object): boolean {
  const stream = (connection as { stream?: { destroy?: unknown } }).stream;
  if (typeof stream?.destroy !== 'function') return false;
  (stream as { destroy(): void }).destroy();
  return true;
}

/** mysql2's private queue (a ring buffer in 3.x, a Denque before): what the session reads of it. */
interface PrivateQueue<T> {
  readonly length: number;
  get(index: number): T;
  removeOne(index: number): unknown;
}

interface PoolPrivate {
  _allConnections?: PrivateQueue<Mysql2Connection>;
  _freeConnections?: PrivateQueue<Mysql2Connection>;
  _connectionQueue?: PrivateQueue<GetConnectionCallback>;
}

/** What the session reads of a mysql2 pool's private lists. */
export interface PoolInternals {
  /** Connections open or opening, idle ones, and callers queued for one. */
  counts(): { all: number; free: number; queued: number };
  /** The idle connections, longest idle first. */
  freeOldestFirst(): Mysql2Connection[];
  /** Every connection, open or opening. */
  allConnections(): Mysql2Connection[];
  /** Takes a queued caller out of the queue (its acquire timed out); false when it was not queued. */
  unqueue(callback: GetConnectionCallback): boolean;
}

const isQueue = (value: unknown): value is PrivateQueue<never> =>
  typeof (value as PrivateQueue<never> | undefined)?.length === 'number' &&
  typeof (value as PrivateQueue<never>).get === 'function' &&
  typeof (value as PrivateQueue<never>).removeOne === 'function';

/**
 * The pool's private lists, or the sentence saying what degrades without them: pool figures then come from the
 * session's own count, max_idle_conns and conn_max_idle_time are not enforced, and a caller whose acquire timed out
 * stays in mysql2's queue (the connection it gets later goes straight back).
 */
export function poolInternals(pool: Mysql2Pool): PoolInternals | string {
  const { _allConnections: all, _freeConnections: free, _connectionQueue: queue } = pool as unknown as PoolPrivate;
  if (!isQueue(all) || !isQueue(free) || !isQueue(queue)) {
    return 'this mysql2 version keeps its pool lists elsewhere: max_idle_conns and conn_max_idle_time are not enforced, pool figures count only what passed through the library, and a timed-out acquire stays queued in mysql2';
  }
  const items = <T>(q: PrivateQueue<T>): T[] => Array.from({ length: q.length }, (_, i) => q.get(i));
  return {
    counts: () => ({ all: all.length, free: free.length, queued: queue.length }),
    // Released connections are pushed at the back and lent from the back: the front has been idle longest.
    freeOldestFirst: () => items(free),
    allConnections: () => items(all),
    unqueue(callback) {
      for (let i = 0; i < queue.length; i++) {
        if (queue.get(i) !== callback) continue;
        queue.removeOne(i);
        return true;
      }
      return false;
    },
  };
}
