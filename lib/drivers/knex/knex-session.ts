import type { MikroORM } from '@mikro-orm/core';
import type { PoolGauges } from '../../vocabulary';
import type { DriverSession, SessionContext } from '../driver';
import { type CheckedKnex, checkedKnex, knexOf, mapAcquireErrors, type RawConnection, transactionConnection } from '../adapters/knex';
import { currentTransaction } from '../adapters/mikro-orm';
import { idleTrimmer } from '../adapters/tarn';
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
    const trimmer = idleTrimmer(knex.client.pool);
    if (typeof trimmer === 'string') context.warn(trimmer);
    watch.listen(knex.client.pool, typeof trimmer === 'string' ? undefined : trimmer);
    mapAcquireErrors(knex.client, (error) => nameAcquireTimeout(error, config.name, config.acquireTimeout, knex.client.pool.max));
    dialect.adaptClient?.(knex.client);
    if (context.queries) reportKnexQueries(knex, context.queries);
    return new KnexSession(orm, context, dialect, knex, watch);
  }

  gauges(): PoolGauges {
    return this.watch.gauges();
  }

  ping(timeoutMs: number): Promise<void> {
    return this.pinger.run(timeoutMs);
  }

  knex(): unknown {
    return this.knexInstance;
  }

  /**
   * Lends the raw driver connection from the shared pool and takes it back after `fn`. Inside `em.transactional` it
   * lends the transaction's own connection, so a one-connection pool cannot deadlock.
   */
  async withNativeClient<T>(fn: (client: unknown) => Promise<T> | T): Promise<T> {
    const { queries } = this.context;
    const lend = queries && this.dialect.watchNativeClient ? (c: RawConnection) => fn(this.dialect.watchNativeClient!(c, queries)) : fn;
    const inTransaction = transactionConnection(currentTransaction(this.context.config.name, this.orm.em));
    if (inTransaction) return lend(await inTransaction);
    const { client } = this.knexInstance;
    const connection = await client.acquireConnection();
    try {
      return await lend(connection);
    } finally {
      await client.releaseConnection(connection);
    }
  }

  /**
   * Shutdown's last resort once shutdown_timeout is spent: tears down what would keep the pool from closing —
   * connections still lent out (hung queries, open transactions; those fail) and connects still under way (a pending
   * create or a ping's own connection waits for connect_timeout otherwise). Returns how many there were.
   */
  abort(): number {
    const lent = this.watch.ledger.inUse();
    for (const connection of lent) {
      this.watch.ledger.writeOff(connection);
      this.dialect.destroySocket(connection);
    }
    const connecting = this.knexInstance.client.pool.numPendingCreates() + (this.pinger.connecting ? 1 : 0);
    if (connecting) this.dialect.destroyAllSockets?.();
    return lent.length + connecting;
  }

  /** Closes the pool; a ping's own connection is not the pool's, so closing waits for it too. */
  async close(): Promise<void> {
    await this.orm.close(true);
    await this.pinger.settled();
  }
}

/**
 * Knex's acquire timeout says only "the pool is probably full": every access path (EM, Knex, native) gets an error
 * that names the connection and says what to do instead.
 */
function nameAcquireTimeout(error: unknown, name: string, acquireTimeoutMs: number, max: number): unknown {
  if ((error as Error | undefined)?.name === 'KnexTimeoutError') {
    (error as Error).message =
      `Connection "${name}": timed out after ${acquireTimeoutMs} ms (acquire_timeout) waiting for a pooled connection, ` +
      `all ${max} being in use. Raise max_open_conns or acquire_timeout, or find what holds ` +
      'connections (long transactions, a query run outside the transaction it waits for).';
  }
  return error;
}
