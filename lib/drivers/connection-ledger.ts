import type { CloseReason } from '../vocabulary';

/** A close this close to a limit counts as caused by it (the pool's clocks and ours differ by microseconds). */
const LIMIT_SLACK_MS = 1;

/**
 * What a session knows of each pooled connection — when it was made, whether it is lent out or since when it is
 * free, whether the session wrote it off or trimmed it — so it can tell why the pool closed one without putting marks
 * on the connection object. Fed by the pool's public events.
 */
export class ConnectionLedger<C extends object> {
  private readonly lent = new Set<C>();
  private readonly createdAt = new WeakMap<C, number>();
  private readonly freeSince = new WeakMap<C, number>();
  private readonly writtenOff = new WeakSet<C>();
  private readonly trimmed = new WeakSet<C>();
  private closing = false;

  constructor(private readonly limits: { idleMs: number; lifetimeMs: number }) {}

  /** A connection was made (its age starts). */
  created(connection: C): void {
    const now = performance.now();
    this.createdAt.set(connection, now);
    this.freeSince.set(connection, now);
  }

  /** The pool lent it out. */
  lentOut(connection: C): void {
    this.lent.add(connection);
  }

  /** It came back to the pool (idle from now). */
  returned(connection: C): void {
    this.lent.delete(connection);
    this.freeSince.set(connection, performance.now());
  }

  /** The session gave up on it (a timed-out ping's, a failed one, one aborted at shutdown): never lend it again. */
  writeOff(connection: C): void {
    this.writtenOff.add(connection);
  }

  isWrittenOff(connection: C): boolean {
    return this.writtenOff.has(connection);
  }

  /** The session is closing it for being idle beyond max_idle_conns. */
  trim(connection: C): void {
    this.trimmed.add(connection);
  }

  /** The whole pool is shutting down: every close from now on is a shutdown close. */
  shuttingDown(): void {
    this.closing = true;
  }

  /** Connections lent out right now (in-flight queries, open transactions, native clients). */
  inUse(): C[] {
    return [...this.lent];
  }

  /** Why the pool closed `connection` (and forgets it is lent out). */
  closed(connection: C): CloseReason {
    const reason = this.reasonFor(connection);
    this.lent.delete(connection);
    return reason;
  }

  private reasonFor(connection: C): CloseReason {
    if (this.trimmed.has(connection)) return 'max_idle';
    if (this.closing) return 'shutdown';
    if (this.writtenOff.has(connection)) return 'broken';
    const now = performance.now();
    // The reaper closes a connection free for idle time; a lifetime close happens on acquire, so it was free for less.
    const free = this.freeSince.get(connection);
    if (free !== undefined && !this.lent.has(connection) && now - free >= this.limits.idleMs - LIMIT_SLACK_MS) return 'idle';
    const created = this.createdAt.get(connection);
    if (this.limits.lifetimeMs > 0 && created !== undefined && now - created >= this.limits.lifetimeMs - LIMIT_SLACK_MS) return 'lifetime';
    // The pool discards a connection whose socket failed (the server closed it, the network dropped).
    return 'broken';
  }
}
