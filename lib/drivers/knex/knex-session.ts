import type { MikroORM } from '@mikro-orm/core';
import type { PoolGauges } from '../../vocabulary';
import type { DriverSession, SessionContext, TornDown } from '../driver';
import { type CheckedKnex, checkedKnex, guardAcquire, knexOf, type RawConnection, transactionConnection } from '../adapters/knex';
import { currentTransaction } from '../adapters/mikro-orm';
import { idleTrimmer, missingInternals } from '../adapters/tarn';
import { AcquireTimeoutError } from '../../errors';
import { CreateRetries } from './create-retries';
import type { KnexDialect } from './dialect';
import { KnexPing } from './ping';
import { knexDriverOptions, poolLimits } from './pool-options';
import { PoolWatch } from './pool-watch';
import { reportKnexQueries } from './query-events';

/**
 * One knex pool of a MikroORM 6 SQL connection, shared by the EntityManager, `knex()` and the native client. It is
 * built from options bound to this session, so everything the pool tells (new connections, acquires, closes) lands
 * here; a reconnect that rebuilds the pool opens a new session.
 */
export class KnexSession implements DriverSession {
  private readonly pinger: KnexPing;

  private constructor(
    private readonly orm: MikroORM,
    private readonly context: SessionContext,
    private readonly dialect: KnexDialect,
    private readonly knexInstance: CheckedKnex,
    private readonly watch: PoolWatch,
  ) {
    this.pinger = new KnexPing(knexInstance.client, knexInstance.client.pool, dialect, (c) => watch.ledger.writeOff(c));
  }

  /** Builds the pool from options bound to a new session and starts watching it. */
  static async open(orm: MikroORM, context: SessionContext, dialect: KnexDialect): Promise<KnexSession> {
    const { config } = context;
    const watch = new PoolWatch(context.observer, poolLimits(config, dialect));
    orm.config.set('driverOptions', knexDriverOptions(config, dialect, watch) as never);
    await orm.em.getDriver().connect();
    const knex = checkedKnex(knexOf(orm), context.warn);
    const pool = knex.client.pool;
    for (const missing of missingInternals(pool)) context.warn(missing);
    watch.listen(pool, idleTrimmer(pool));
    const creates = new CreateRetries(pool, dialect.isPermanentError);
    // An acquire timeout names the connection (with the connect error that kept the pool from growing as its cause);
    // a closed connection refuses with its ConnectionClosedError.
    guardAcquire(
      knex.client,
      () => context.closedError(),
      (error) => {
        const closed = context.closedError(error);
        if (closed) return closed;
        if ((error as Error | undefined)?.name !== 'KnexTimeoutError') return error;
        const cause = creates.lastFailure();
        return new AcquireTimeoutError(config.name, config.acquireTimeout, pool.max, cause === undefined ? undefined : { error: cause, message: context.describeError(cause) });
      },
    );
    dialect.adaptClient?.(knex.client);
    if (context.queries) reportKnexQueries(knex, context.queries);
    return new KnexSession(orm, context, dialect, knex, watch);
  }

  gauges(): PoolGauges {
    return this.watch.gauges();
  }

  ping(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.pinger.run(timeoutMs, signal);
  }

  knex(): unknown {
    return this.knexInstance;
  }

  /**
   * Lends the raw driver connection from the shared pool and takes it back after `fn`. Inside `em.transactional` it
   * lends the transaction's own connection, so a one-connection pool cannot deadlock.
   */
  withNativeClient<T>(fn: (client: unknown) => Promise<T> | T): Promise<T> {
    const { queries } = this.context;
    const { nativeClientView, watchNativeClient } = this.dialect;
    const lend = (connection: RawConnection) => {
      const view = nativeClientView ? nativeClientView(connection) : connection;
      return fn(queries && watchNativeClient ? watchNativeClient(view, queries) : view);
    };
    const transaction = currentTransaction(this.context.config.name, this.orm.em);
    if (transaction) return transactionConnection(transaction, this.context.config.name).then(lend);
    // Not async: every native query passes here, and an async frame would cost it a promise and a tick of its own.
    const { client } = this.knexInstance;
    return client.acquireConnection().then(async (connection) => {
      try {
        return await lend(connection);
      } finally {
        await client.releaseConnection(connection);
      }
    });
  }

  /**
   * Shutdown's last resort once shutdown_timeout is spent: tears down what would keep the pool from closing —
   * connections still lent out (hung queries, open transactions; those fail) and connects still under way (a pending
   * create or a ping's own connection waits for connect_timeout otherwise). Nothing torn down leaves the pool to close
   * gracefully.
   */
  abort(): TornDown {
    const pool = this.knexInstance.client.pool;
    const lent = this.watch.ledger.inUse();
    for (const connection of lent) {
      this.watch.ledger.writeOff(connection);
      this.dialect.destroySocket(connection);
      // Taken back now: tarn's destroy() waits for every lent connection, and a holder that never returns (a native
      // client callback awaiting something else) would hold close() forever. Its own release later is a no-op.
      pool.release(connection);
    }
    const connecting = pool.numPendingCreates() + (this.pinger.connecting ? 1 : 0);
    if (connecting) this.dialect.destroyAllSockets?.();
    return { inUse: lent.length, connecting };
  }

  /** Closes the pool; a ping's own connection is not the pool's, so closing waits for it too. */
  async close(): Promise<void> {
    await this.orm.close(true);
    await this.pinger.settled();
  }
}
