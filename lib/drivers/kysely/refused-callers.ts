/**
 * Callers whose connect the server refused for a reason that can pass (its connection limit, a refused or timed-out
 * connect), in arrival order. pg-pool queues a caller only when the pool is full; below max, each caller opens its own
 * client, so when the server allows fewer connections than max a refused caller would only get one of the open
 * clients by luck, at its next backoff tick. Here it waits for whichever comes first: its backoff, or a client coming
 * back to the pool (the longest-waiting caller is woken for it), as waiting callers are served on MikroORM 6's pool.
 */
export class RefusedCallers {
  private readonly line: Array<() => void> = [];

  /** Resolves after `ms`, or sooner when this caller is woken. The timer keeps the process alive: a caller awaits it. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        const at = this.line.indexOf(wake);
        if (at >= 0) this.line.splice(at, 1);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, ms));
      this.line.push(wake);
    });
  }

  /** True while some caller waits (the pool's release handler asks before queueing a wake-up). */
  get any(): boolean {
    return this.line.length > 0;
  }

  /** A client came back to the pool: the longest-waiting caller tries again. */
  wakeFirst(): void {
    this.line[0]?.();
  }

  /** Every caller tries again now (shutdown: they find the connection closed). */
  wakeAll(): void {
    for (const wake of [...this.line]) wake();
  }
}
