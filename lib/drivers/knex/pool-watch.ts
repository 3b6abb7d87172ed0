import type { PoolGauges, PoolObserver } from '../../vocabulary';
import { isPoolTimeout, type RawConnection } from '../adapters/knex';
import { type IdleTrimmer, isSaturated, type TarnPool } from '../adapters/tarn';
import { ConnectionLedger } from '../connection-ledger';

/**
 * Watches one tarn pool through its public events: times every acquire (waits, timeouts), keeps the ledger of its
 * connections (so it can tell why each one closed), and trims idle connections beyond max_idle_conns on release.
 */
export class PoolWatch {
  readonly ledger: ConnectionLedger<RawConnection>;
  private readonly started = new Map<number, { at: number; saturated: boolean }>();
  private pool?: TarnPool<RawConnection>;

  constructor(
    private readonly observer: PoolObserver,
    private readonly limits: { max: number; maxIdle: number; idleMs: number; lifetimeMs: number },
  ) {
    this.ledger = new ConnectionLedger(limits);
  }

  /** Starts listening to the pool built from this session's options; `trimmer` closes idle connections beyond max_idle_conns. */
  listen(pool: TarnPool<RawConnection>, trimmer: IdleTrimmer<RawConnection> | undefined): void {
    this.pool = pool;
    const { observer, limits, ledger } = this;
    pool.on('acquireRequest', (eventId) => this.started.set(eventId, { at: performance.now(), saturated: isSaturated(pool) }));
    pool.on('acquireSuccess', (eventId, connection) => {
      ledger.lentOut(connection);
      const start = this.started.get(eventId);
      this.started.delete(eventId);
      if (start) observer.acquired(performance.now() - start.at, start.saturated);
    });
    pool.on('acquireFail', (eventId, error) => {
      const start = this.started.get(eventId);
      this.started.delete(eventId);
      if (isPoolTimeout(error)) observer.acquireTimedOut(start ? performance.now() - start.at : 0);
    });
    pool.on('release', (connection) => {
      ledger.returned(connection);
      if (trimmer && pool.numFree() + 1 > limits.maxIdle) queueMicrotask(() => trimmer.trim(limits.maxIdle, (c) => ledger.trim(c)));
    });
    pool.on('destroyRequest', (_eventId, connection) => observer.closed(ledger.closed(connection)));
    pool.on('poolDestroyRequest', () => ledger.shuttingDown());
  }

  /** A connection was created (the pool's afterCreate): its age starts, and its own failures are reported. */
  created(connection: RawConnection): void {
    this.ledger.created(connection);
    (connection as { on?(event: 'error', listener: (error: unknown) => void): unknown }).on?.('error', (error) => this.observer.connectionError(error));
  }

  /** False for a connection the session wrote off (the pool's validate): tarn then destroys it instead of lending it. */
  usable(connection: RawConnection): boolean {
    return !this.ledger.isWrittenOff(connection);
  }

  gauges(): PoolGauges {
    const pool = this.pool;
    if (!pool) return { open: 0, inUse: 0, idle: 0, pending: 0, max: this.limits.max };
    const inUse = pool.numUsed();
    const idle = pool.numFree();
    return { open: inUse + idle, inUse, idle, pending: pool.numPendingAcquires(), max: this.limits.max };
  }
}
