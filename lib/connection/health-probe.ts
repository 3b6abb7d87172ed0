import type { DriverSession } from '../drivers/driver';
import type { SpanOutcome } from '../tracing/connection-tracing';
import type { ConnectionHealth } from '../vocabulary';
import type { StatusBook } from './status-book';

/**
 * Live pings of one connection, for the health loop, /health and reconnects: at most one ping in flight, shared by
 * concurrent callers, each of whom still answers within its own timeout; a return from down to up counts as a reconnect.
 */
export class HealthProbe {
  private inFlightPing?: Promise<ConnectionHealth>;
  private inFlightReconnect?: Promise<boolean>;

  constructor(
    /** health_check_timeout, the bound of a ping whose caller names none. */
    private readonly defaultTimeoutMs: number,
    private readonly book: StatusBook,
    private readonly host: HealthProbeHost,
  ) {}

  /** True while a ping or a reconnect runs. */
  get busy(): boolean {
    return this.inFlightPing !== undefined || this.inFlightReconnect !== undefined;
  }

  /** The ping and reconnect under way, for close() to wait on. */
  inFlight(): Array<Promise<unknown> | undefined> {
    return [this.inFlightPing, this.inFlightReconnect];
  }

  /** `DbConnection.healthCheck()`: never throws. */
  async healthCheck(options: { timeout?: number } = {}): Promise<ConnectionHealth> {
    if (this.book.status === 'closed') return { status: 'down', responseTimeMs: 0, error: 'connection is closed' };
    // No pool open on purpose: a ping would open one (and keep it from going idle). Reported up, marked idle.
    if (this.book.status === 'idle') return { status: 'up', responseTimeMs: 0, idle: true };
    const timeout = options.timeout ?? this.defaultTimeoutMs;
    this.inFlightPing ??= this.host.traced('dbmanager.health_check', () => this.runPing(timeout), healthOutcome).finally(() => (this.inFlightPing = undefined));
    const shared = this.inFlightPing;
    if (!timeout) return shared;
    // A caller who joins a ping started earlier (by the loop, with another bound) still answers within its own timeout.
    let timer: NodeJS.Timeout | undefined;
    const own = new Promise<ConnectionHealth>((resolve) => {
      timer = setTimeout(() => resolve({ status: 'down', responseTimeMs: timeout, error: `ping timed out after ${timeout} ms` }), timeout + OWN_TIMEOUT_SLACK_MS);
      timer.unref();
    });
    try {
      return await Promise.race([shared, own]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async runPing(timeout: number): Promise<ConnectionHealth> {
    const started = performance.now();
    const before = this.book.status;
    let result: ConnectionHealth;
    try {
      const session = await this.host.openPool();
      await session.ping(timeout, this.host.stopping);
      result = { status: 'up', responseTimeMs: round(performance.now() - started) };
      this.host.recordSuccess();
      // Whoever pinged (the loop, a reconnect attempt, /health), coming back from down is one reconnect.
      if (before === 'down' && this.book.status === 'up') this.book.countReconnect();
    } catch (error) {
      result = { status: 'down', responseTimeMs: round(performance.now() - started), error: this.host.recordFailure(error) };
    }
    this.book.emit('healthCheck', result);
    return result;
  }

  /** `DbConnection.reconnect()`: one attempt at a time; resolves true when up. */
  async reconnect(): Promise<boolean> {
    if (this.book.status === 'closed') return false;
    if (this.book.status === 'idle') return true;
    this.inFlightReconnect ??= this.host.traced('dbmanager.reconnect', async () => {
      const health = await this.healthCheck();
      const ok = health.status === 'up';
      if (this.book.status !== 'closed') this.book.emit('reconnect', ok ? 'success' : 'failure');
      return ok;
    }, (ok) => ({ attributes: { 'dbmanager.reconnect.result': ok ? 'success' : 'failure' }, error: ok ? undefined : this.book.lastFailure ?? 'still down' })).finally(
      () => (this.inFlightReconnect = undefined),
    );
    return this.inFlightReconnect;
  }
}

/** What the probe asks of the connection that holds it. */
export interface HealthProbeHost {
  /** The open session, opening the pool first when there is none. */
  openPool(): Promise<DriverSession>;
  /** Aborted when the connection closes: cancels a ping in flight. */
  readonly stopping: AbortSignal;
  /** Runs `fn` in a span when tracing is on. */
  traced<T>(name: string, fn: () => Promise<T>, outcome?: (result: T) => SpanOutcome): Promise<T>;
  /** The server answered. */
  recordSuccess(): void;
  /** The server could not be reached; returns the message recorded (secrets masked). */
  recordFailure(error: unknown): string;
}

function healthOutcome(result: ConnectionHealth): SpanOutcome {
  return { attributes: { 'dbmanager.health.status': result.status }, error: result.error };
}

/** Lets a shared ping that started with the same bound answer first (it also records the status). */
const OWN_TIMEOUT_SLACK_MS = 5;

/** Milliseconds to two decimals, as stats and health report them. */
function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
