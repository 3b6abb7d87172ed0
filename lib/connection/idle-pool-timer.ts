/**
 * idle_pool_timeout for one connection: told of every use (a cheap timestamp), it looks once the timeout could have
 * passed and asks the connection to close its pool when nothing used it for that long. One unref'd timer while the
 * pool is open (a background timer must not keep the process alive), none while it is idle.
 */
export class IdlePoolTimer {
  private lastUse = performance.now();
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly timeoutMs: number,
    /** Closes the pool if it may; true when done, false to look again later (something holds the pool). */
    private readonly closeIdle: () => boolean,
  ) {}

  /** The pool is open and up: counts from now (opening it was a use), looks when the timeout has passed. */
  start(): void {
    if (this.stopped || this.timer) return;
    this.lastUse = performance.now();
    this.arm(this.timeoutMs);
  }

  /** A use. */
  touch(): void {
    this.lastUse = performance.now();
  }

  /** The connection is closing. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.look(), Math.max(ms, MIN_LOOK_MS));
    this.timer.unref();
  }

  private look(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const quiet = performance.now() - this.lastUse;
    if (quiet < this.timeoutMs) return this.arm(this.timeoutMs - quiet);
    // In use or busy opening: look again after a fraction of the timeout (a pool held that long is not idle anyway).
    if (!this.closeIdle()) this.arm(this.timeoutMs / 4);
  }
}

/** Shortest wait between two looks (a use just before the timeout must not make the timer spin). */
const MIN_LOOK_MS = 50;
