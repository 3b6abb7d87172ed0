import type { CloseReason, PoolGauges, PoolObserver } from '../../vocabulary';
import { isPoolTimeout, type RawConnection } from '../adapters/knex';
import { type IdleTrimmer, isSaturated, type TarnPool } from '../adapters/tarn';

/** A destroy this close to a limit counts as caused by it (the pool's clocks and ours differ by microseconds). */
const LIMIT_SLACK_MS = 1;

/**
 * Watches one tarn pool through its public events: times every acquire (waits, timeouts), keeps which connections are
 * lent out, and tells why each connection closed — from what it knows of that connection (written off, trimmed,
 * old, idle), never from marks on the connection object. Trims idle connections beyond max_idle_conns on release.
 */
export class PoolWatch {
  private readonly started = new Map<number, { at: number; saturated: boolean }>();
  private readonly lent = new Set<RawConnection>();
  private readonly createdAt = new WeakMap<RawConnection, number>();
  private readonly freeSince = new WeakMap<RawConnection, number>();
  private readonly writtenOff = new WeakSet<RawConnection>();
  private readonly trimmed = new WeakSet<RawConnection>();
  private destroying = false;

  private pool?: TarnPool<RawConnection>;

  constructor(
    private readonly observer: PoolObserver,
    private readonly limits: { max: number; maxIdle: number; idleMs: number; lifetimeMs: number },
  ) {}

  /** Starts listening to the pool built from this session's options; `trimmer` closes idle connections beyond max_idle_conns. */
  listen(pool: TarnPool<RawConnection>, trimmer: IdleTrimmer<RawConnection> | undefined): void {
    this.pool = pool;
    const { observer, limits } = this;
    pool.on('acquireRequest', (eventId) => this.started.set(eventId, { at: performance.now(), saturated: isSaturated(pool) }));
    pool.on('acquireSuccess', (eventId, connection) => {
      this.lent.add(connection);
      const start = this.started.get(eventId);
      this.started.delete(eventId);
      if (start) observer.acquired(performance.now() - start.at, start.saturated);
    });
    pool.on('acquireFail', (eventId, error) => {
      const start = this.started.get(eventId);
      this.started.delete(eventId);
      if (isPoolTimeout(error)) observer.acquireTimedOut(start ? performance.now() - start.at : 0);
    });
    pool.on('createSuccess', (_eventId, connection) => this.freeSince.set(connection, performance.now()));
    pool.on('release', (connection) => {
      this.lent.delete(connection);
      this.freeSince.set(connection, performance.now());
      if (trimmer && pool.numFree() + 1 > limits.maxIdle) queueMicrotask(() => trimmer.trim(limits.maxIdle, (c) => this.trimmed.add(c)));
    });
    pool.on('destroyRequest', (_eventId, connection) => {
      observer.closed(this.closeReason(connection));
      this.lent.delete(connection);
    });
    pool.on('poolDestroyRequest', () => (this.destroying = true));
  }

  /** A connection was created (the pool's afterCreate): its age starts, and its own failures are reported. */
  created(connection: RawConnection): void {
    this.createdAt.set(connection, performance.now());
    (connection as { on?(event: 'error', listener: (error: unknown) => void): unknown }).on?.('error', (error) => this.observer.connectionError(error));
  }

  /** The session gave up on this connection (its ping timed out, it failed, shutdown aborted it): never lend it again. */
  writeOff(connection: RawConnection): void {
    this.writtenOff.add(connection);
  }

  /** False for a written-off connection (the pool's validate): tarn then destroys it instead of lending it. */
  usable(connection: RawConnection): boolean {
    return !this.writtenOff.has(connection);
  }

  /** Connections lent out right now (in-flight queries, open transactions, native clients). */
  lentOut(): RawConnection[] {
    return [...this.lent];
  }

  gauges(): PoolGauges {
    const pool = this.pool;
    if (!pool) return { open: 0, inUse: 0, idle: 0, pending: 0, max: this.limits.max };
    const inUse = pool.numUsed();
    const idle = pool.numFree();
    return { open: inUse + idle, inUse, idle, pending: pool.numPendingAcquires(), max: this.limits.max };
  }

  private closeReason(connection: RawConnection): CloseReason {
    if (this.trimmed.has(connection)) return 'max_idle';
    if (this.destroying) return 'shutdown';
    if (this.writtenOff.has(connection)) return 'broken';
    const now = performance.now();
    // The reaper closes a connection free for idle time; a lifetime close happens on acquire, so it was free for less.
    const free = this.freeSince.get(connection);
    if (free !== undefined && !this.lent.has(connection) && now - free >= this.limits.idleMs - LIMIT_SLACK_MS) return 'idle';
    const created = this.createdAt.get(connection);
    if (this.limits.lifetimeMs > 0 && created !== undefined && now - created >= this.limits.lifetimeMs - LIMIT_SLACK_MS) return 'lifetime';
    // Knex discards a connection whose socket failed (the server closed it, the network dropped).
    return 'broken';
  }
}
