const noop = (): void => undefined;

/** What a way of pinging is given: how to be stopped, and how to fail early. */
export interface PingControl {
  /** Sets what a timeout or a cancellation does to the ping under way (abort its acquire, destroy its socket). */
  onGiveUp(fn: () => void): void;
  /** Fails the ping at once (the pool reported that its connect failed, say). */
  fail(error: Error): void;
}

/** How one session reaches its server for a ping. */
export interface PingWays {
  /** True when every pooled connection is busy and the pool is at its max. */
  saturated(): boolean;
  /** Pings on a pooled connection: an idle one, or a new one the pool has room for. */
  pooled(control: PingControl): Promise<void>;
  /** Pings on one short-lived connection of its own, closed afterwards. */
  ownConnection(control: PingControl): Promise<void>;
}

/**
 * A health ping that cannot pile up, whatever the pool: on a pooled connection when one can be had, else — every
 * connection busy — on one short-lived connection of its own, at most one at a time, so the server sees at most
 * max + 1. A timeout or the connection closing gives up on it (the way's own give-up undoes what it started), so
 * nothing stays queued behind it.
 */
export class BoundedPing {
  /** A ping's own connection until it has closed (it may outlive a timed-out ping until connect_timeout). */
  private own?: Promise<void>;

  constructor(private readonly ways: PingWays) {}

  /** True while a ping's own connection is open or opening. */
  get connecting(): boolean {
    return this.own !== undefined;
  }

  /** Resolves once a ping's own connection, if any, has closed. */
  settled(): Promise<void> {
    return this.own ?? Promise.resolve();
  }

  /** Pings within `timeoutMs` (`0`: no bound); aborting `signal` (the connection is closing) cancels it as a timeout would. */
  async run(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new Error('ping cancelled: the connection is closing');
    let giveUp: () => void = noop;
    let timer: NodeJS.Timeout | undefined;
    let stop: (error: Error) => void = noop;
    // Armed before the ping starts: a driver's own connect timer (connect_timeout, often the same bound) is armed when
    // its connection is made, and the ping's verdict must come first.
    const timeout = new Promise<never>((_, reject) => {
      stop = (error) => {
        giveUp();
        reject(error);
      };
      if (!timeoutMs) return;
      timer = setTimeout(() => stop(new Error(`ping timed out after ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
    });
    const onAbort = () => stop(new Error('ping cancelled: the connection is closing'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const control: PingControl = { onGiveUp: (fn) => (giveUp = fn), fail: (error) => stop(error) };
    let ping: Promise<void>;
    if (!this.ways.saturated()) ping = this.ways.pooled(control);
    else if (this.own) ping = Promise.reject(new Error("every pooled connection is busy and the previous ping's own connection is still waiting for the server"));
    else {
      ping = this.ways.ownConnection(control);
      this.own = ping.then(noop, noop).finally(() => (this.own = undefined));
    }
    try {
      await Promise.race([ping, timeout]);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ping.catch(noop);
    }
  }
}
