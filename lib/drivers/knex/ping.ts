import type { KnexClient, RawConnection } from '../adapters/knex';
import { isSaturated, type TarnPool } from '../adapters/tarn';
import type { KnexDialect } from './dialect';

const noop = (): void => undefined;

/**
 * A health ping that cannot pile up: it borrows a pooled connection when one can be had (opening one if the pool has
 * room), or — when every connection is busy — opens one short-lived connection of its own. On timeout the pending
 * acquire is aborted and a hung connection's socket destroyed, so nothing stays queued and the server sees at most
 * max + 1.
 */
export class KnexPing {
  /** A ping's own connection until it has closed (it may outlive a timed-out ping until connect_timeout). */
  private ownConnection?: Promise<void>;

  constructor(
    // Only what the ping uses, so the tarn pool of SQL Server on MikroORM 7 (no knex there) is pinged the same way.
    private readonly client: Pick<KnexClient, 'query' | 'acquireRawConnection' | 'destroyRawConnection'>,
    private readonly pool: TarnPool<RawConnection>,
    private readonly dialect: Pick<KnexDialect, 'pingSql' | 'destroySocket'>,
    /** Writes off a pooled connection the ping gave up on, so the pool never lends it again. */
    private readonly writeOff: (connection: RawConnection) => void,
  ) {}

  /** True while a ping's own connection is open or opening. */
  get connecting(): boolean {
    return this.ownConnection !== undefined;
  }

  /** Resolves once a ping's own connection, if any, has closed. */
  settled(): Promise<void> {
    return this.ownConnection ?? Promise.resolve();
  }

  /** Pings within `timeoutMs`; aborting `signal` (the connection is closing) cancels it as a timeout would. */
  async run(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new Error('ping cancelled: the connection is closing');
    let timer: NodeJS.Timeout | undefined;
    let onTimeout: () => void = noop;
    let stop: (error: Error) => void = noop;
    const timeout = new Promise<never>((_, reject) => {
      stop = (error) => {
        onTimeout();
        reject(error);
      };
      if (!timeoutMs) return;
      timer = setTimeout(() => stop(new Error(`ping timed out after ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
    });
    const onAbort = () => stop(new Error('ping cancelled: the connection is closing'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const setOnTimeout = (fn: () => void) => (onTimeout = fn);
    let ping: Promise<void>;
    if (!isSaturated(this.pool)) ping = this.pooled(setOnTimeout, stop);
    else if (this.ownConnection) {
      ping = Promise.reject(new Error("every pooled connection is busy and the previous ping's own connection is still waiting for the server"));
    } else if (!this.client.acquireRawConnection || !this.client.destroyRawConnection) {
      ping = Promise.reject(new Error('every pooled connection is busy (this knex version cannot open a connection for the ping)'));
    } else {
      ping = this.ownConnectionPing(setOnTimeout);
      // One at a time, so the server sees at most max + 1; close() waits for it.
      this.ownConnection = ping.then(noop, noop).finally(() => (this.ownConnection = undefined));
    }
    try {
      await Promise.race([ping, timeout]);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ping.catch(noop);
    }
  }

  private async pooled(setOnTimeout: (fn: () => void) => void, stop: (error: Error) => void): Promise<void> {
    const pending = this.pool.acquire();
    setOnTimeout(() => pending.abort());
    // The pool retries a failed connect for its waiting callers; a ping reports the first failure instead.
    const onCreateFail = (_eventId: number, error: unknown) => stop(error instanceof Error ? error : new Error(String(error)));
    this.pool.on('createFail', onCreateFail);
    const connection = await pending.promise.finally(() => this.pool.removeListener('createFail', onCreateFail));
    setOnTimeout(() => {
      this.writeOff(connection);
      this.dialect.destroySocket(connection);
    });
    try {
      await this.query(connection);
    } catch (error) {
      this.writeOff(connection);
      throw error;
    } finally {
      this.pool.release(connection);
    }
  }

  private async ownConnectionPing(setOnTimeout: (fn: () => void) => void): Promise<void> {
    const connecting = this.client.acquireRawConnection!();
    // An opening socket cannot be reached: it is destroyed as soon as it is there.
    setOnTimeout(() => void connecting.then((c) => this.dialect.destroySocket(c), noop));
    const connection = await connecting;
    setOnTimeout(() => this.dialect.destroySocket(connection));
    try {
      await this.query(connection);
    } finally {
      await this.client.destroyRawConnection!(connection).catch(noop);
    }
  }

  private query(connection: RawConnection): Promise<unknown> {
    return this.client.query(connection, { sql: this.dialect.pingSql ?? 'select 1', bindings: [], options: {} });
  }
}
