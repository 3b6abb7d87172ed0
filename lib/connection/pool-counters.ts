import type { CloseReason, PoolObserver } from '../vocabulary';

/** Cumulative pool figures, fed by the driver's pool events; `forward` passes each event on (metrics, health). */
export class PoolCounters implements PoolObserver {
  waitCount = 0;
  waitDurationMs = 0;
  timeouts = 0;
  lifetimeClosed = 0;
  idleClosed = 0;
  maxIdleClosed = 0;

  constructor(private readonly forward: PoolObserver) {}

  acquired(waitMs: number, waited: boolean): void {
    if (waited) {
      this.waitCount++;
      this.waitDurationMs += waitMs;
    }
    this.forward.acquired(waitMs, waited);
  }

  /** A caller that gave up after acquire_timeout also waited: it counts as a wait, as in Go's sql.DBStats. */
  acquireTimedOut(waitMs: number): void {
    this.timeouts++;
    this.waitCount++;
    this.waitDurationMs += waitMs;
    this.forward.acquireTimedOut(waitMs);
  }

  closed(reason: CloseReason): void {
    if (reason === 'lifetime') this.lifetimeClosed++;
    else if (reason === 'idle') this.idleClosed++;
    else if (reason === 'max_idle') this.maxIdleClosed++;
    this.forward.closed(reason);
  }

  connectionError(error: unknown): void {
    this.forward.connectionError(error);
  }
}
