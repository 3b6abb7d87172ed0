import type { KnexClient, RawConnection } from '../adapters/knex';
import { isSaturated, type TarnPool } from '../adapters/tarn';
import { BoundedPing, type PingControl } from '../bounded-ping';
import type { KnexDialect } from './dialect';

const noop = (): void => undefined;

/**
 * The health ping of a tarn pool built by knex (or by Kysely's SQL Server dialect): it borrows a pooled connection
 * when one can be had (opening one if the pool has room), or — when every connection is busy — opens one short-lived
 * connection of its own (BoundedPing). On timeout the pending acquire is aborted and a hung connection's socket
 * destroyed.
 */
export class KnexPing {
  private readonly bounded = new BoundedPing({
    saturated: () => isSaturated(this.pool),
    pooled: (control) => this.pooled(control),
    ownConnection: (control) => this.ownConnectionPing(control),
  });

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
    return this.bounded.connecting;
  }

  /** Resolves once a ping's own connection, if any, has closed. */
  settled(): Promise<void> {
    return this.bounded.settled();
  }

  /** Pings within `timeoutMs`; aborting `signal` (the connection is closing) cancels it as a timeout would. */
  run(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.bounded.run(timeoutMs, signal);
  }

  private async pooled({ onGiveUp, fail }: PingControl): Promise<void> {
    const pending = this.pool.acquire();
    onGiveUp(() => pending.abort());
    // The pool retries a failed connect for its waiting callers; a ping reports the first failure instead.
    const onCreateFail = (_eventId: number, error: unknown) => fail(error instanceof Error ? error : new Error(String(error)));
    this.pool.on('createFail', onCreateFail);
    const connection = await pending.promise.finally(() => this.pool.removeListener('createFail', onCreateFail));
    onGiveUp(() => {
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

  private async ownConnectionPing({ onGiveUp }: PingControl): Promise<void> {
    if (!this.client.acquireRawConnection || !this.client.destroyRawConnection) {
      throw new Error('every pooled connection is busy (this knex version cannot open a connection for the ping)');
    }
    const connecting = this.client.acquireRawConnection();
    // An opening socket cannot be reached: it is destroyed as soon as it is there.
    onGiveUp(() => void connecting.then((c) => this.dialect.destroySocket(c), noop));
    const connection = await connecting;
    onGiveUp(() => this.dialect.destroySocket(connection));
    try {
      await this.query(connection);
    } finally {
      await this.client.destroyRawConnection(connection).catch(noop);
    }
  }

  private query(connection: RawConnection): Promise<unknown> {
    return this.client.query(connection, { sql: this.dialect.pingSql ?? 'select 1', bindings: [], options: {} });
  }
}
