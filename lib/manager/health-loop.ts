import { Logger } from '@nestjs/common';
import type { DbConnection } from '../connection/db-connection';
import { type RetryPolicy, backoffDelay, sleep } from './retry';

/** Settings of the background loop (the manager's health and retry fields). */
export interface HealthLoopSettings {
  intervalMs: number;
  autoReconnect: boolean;
  retry: RetryPolicy;
}

/**
 * Every `intervalMs`, checks all connections in parallel (each bounded by its own timeout, one ping in flight per
 * connection). A connection that is down gets its own reconnect loop: attempts with exponential backoff and full
 * jitter capped at retry_max_delay, without limit, until it is up or closed. A pool error triggers a check at once.
 */
export class HealthLoop {
  private timer?: NodeJS.Timeout;
  private readonly stopping = new AbortController();
  private readonly reconnecting = new Map<string, Promise<void>>();
  private readonly unsubscribe = new Map<string, () => void>();
  private readonly logger = new Logger('DbManager');

  constructor(
    private readonly connections: () => DbConnection[],
    private readonly settings: HealthLoopSettings,
  ) {}

  start(): void {
    for (const connection of this.connections()) this.watch(connection);
    if (this.settings.intervalMs > 0) {
      this.timer = setInterval(() => void this.tick(), this.settings.intervalMs);
      this.timer.unref();
    }
  }

  /** Starts watching a connection added at runtime (and brings it back if it is down). */
  watch(connection: DbConnection): void {
    if (this.stopping.signal.aborted || this.unsubscribe.has(connection.name)) return;
    const offStatus = connection.on('status', (status) => {
      if (status === 'down') this.bringBack(connection);
    });
    const offError = connection.on('connectionError', () => {
      if (connection.status === 'up') void connection.healthCheck();
    });
    this.unsubscribe.set(connection.name, () => {
      offStatus();
      offError();
    });
    if (connection.status === 'down') this.bringBack(connection);
  }

  /** Stops watching a removed connection. */
  unwatch(name: string): void {
    this.unsubscribe.get(name)?.();
    this.unsubscribe.delete(name);
  }

  /**
   * One pass over every connection; resolves when all checks are done. A down one is tried too (as a reconnect
   * attempt when auto-reconnect is on), so its status catches up within one interval whatever the backoff says.
   */
  async tick(): Promise<void> {
    await Promise.all(
      this.connections().map((connection) => {
        if (connection.status === 'up') return connection.healthCheck();
        if (connection.status !== 'down') return undefined;
        return this.settings.autoReconnect ? connection.reconnect() : connection.healthCheck();
      }),
    );
  }

  /** Stops the timer and every reconnect loop; resolves when they have ended. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.timer);
    for (const off of this.unsubscribe.values()) off();
    this.unsubscribe.clear();
    await Promise.allSettled(this.reconnecting.values());
  }

  private bringBack(connection: DbConnection): void {
    if (!this.settings.autoReconnect || this.stopping.signal.aborted || this.reconnecting.has(connection.name)) return;
    const loop = (async () => {
      for (let attempt = 0; !this.stopping.signal.aborted; attempt++) {
        // A background wait: it must not keep the process alive.
        await sleep(backoffDelay(attempt, this.settings.retry), this.stopping.signal, { background: true });
        if (this.stopping.signal.aborted || connection.status !== 'down') return;
        if (await connection.reconnect()) return;
      }
    })()
      .catch((error: unknown) => this.logger.error(`reconnect loop of "${connection.name}" failed: ${String(error)}`))
      .finally(() => this.reconnecting.delete(connection.name));
    this.reconnecting.set(connection.name, loop);
  }
}
