import { createRequire } from 'node:module';
import type { MikroORM } from '@mikro-orm/core';
import type { PoolGauges } from '../../vocabulary';
import { connectWithDriverOptions, currentTransaction } from '../adapters/mikro-orm';
import { SOCKET_UNREACHABLE, SocketTracker, socketOf } from '../adapters/pg';
import { idleClientTrimmer, interceptConnect, isPgPoolTimeout, type PgPool, type PgPoolClient, takeBack, waitingRejecter } from '../adapters/pg-pool';
import { BoundedPing } from '../bounded-ping';
import { ConnectionLedger } from '../connection-ledger';
import type { DriverSession, SessionContext, TornDown } from '../driver';
import { AcquireTimeoutError } from '../../errors';
import { connectRetryDelay, FOREVER } from '../pool-timing';
import { type PgClientClass, type PgClientLike, sessionClientClass, type StatementBound } from './pg-client-class';
import { RefusedCallers } from './refused-callers';
import { identifyTransactionClient, kyselyOf } from '../adapters/kysely';

const noop = (): void => undefined;

/** What the PostgreSQL driver file adds to a pg pool's options: the client settings a connection's config becomes. */
export interface PgSettings {
  /** node-postgres' client settings on top of the user's own; its sockets come from `sockets`. */
  connectionSettings(user: Record<string, unknown>, sockets: SocketTracker): Record<string, unknown>;
  /** True for connect errors a retry cannot fix (the driver's own rule). */
  isPermanentError(error: unknown): boolean;
  /** Bounds each statement of a client from the client side (query_timeout behind a pooler), when the server cannot. */
  statementTimeout?: StatementBound;
  /** The view of a lent native client a caller gets (one that refuses what a pooler breaks). */
  nativeClientView?<T extends object>(client: T): T;
}

/** The `pg` package as @mikro-orm/postgresql resolves it: the pool it builds makes clients of its `Client` class. */
function pgClientBase(): PgClientClass {
  return (createRequire(require.resolve('@mikro-orm/postgresql'))('pg') as { Client: PgClientClass }).Client;
}

/**
 * The pg-pool of a PostgreSQL connection on MikroORM 7, shared by the EntityManager, `kysely()` and the native client:
 * MikroORM builds it from options bound to this session (a pg `Client` subclass of ours, tracked sockets, the limits),
 * reports it through `onPoolCreated`, and this session watches it through its public events.
 */
export class PgPoolSession implements DriverSession {
  private pool?: PgPool;
  private readonly ledger: ConnectionLedger<PgPoolClient>;
  private readonly sockets = new SocketTracker();
  private readonly clients: ReturnType<typeof sessionClientClass>;
  /** Health pings: on a pooled connection, or on one of their own while every pooled one is busy. */
  private readonly pinger = new BoundedPing({
    saturated: () => this.saturated(),
    pooled: ({ onGiveUp }) => this.pooledPing(onGiveUp),
    ownConnection: ({ onGiveUp }) => this.ownClientPing(onGiveUp),
  });
  /** pg-pool's own connect(), for health pings: they report a failed connect at once instead of waiting out retries. */
  private rawConnect!: () => Promise<PgPoolClient>;
  /**
   * Callers waiting for a client: in pg-pool's queue, waiting for a client being connected for them, or refused and
   * waiting to try again (pg-pool's own waitingCount sees only the first). Health pings are not callers.
   */
  private waiting = 0;
  /** Callers whose connect was refused, waiting for a client to come back or their backoff. */
  private readonly refused = new RefusedCallers();
  /** Fails the callers waiting for a client (shutdown), when this pg-pool version lets us. */
  private rejectWaiting?: (error: Error) => void;
  /** The last failed connect since the last success, for an acquire timeout to name as its cause. */
  private lastConnectFailure: unknown;
  /** The driver's rule for connect errors a retry cannot fix. */
  private readonly permanent: (error: unknown) => boolean;

  private constructor(
    private readonly orm: MikroORM,
    private readonly context: SessionContext,
    private readonly settings: PgSettings,
  ) {
    const { config } = context;
    this.permanent = settings.isPermanentError;
    this.ledger = new ConnectionLedger({ idleMs: config.connMaxIdleTime || FOREVER, lifetimeMs: config.connMaxLifetime });
    this.clients = sessionClientClass(pgClientBase(), config.connectTimeout, context.queries, settings.statementTimeout);
  }

  static async open(orm: MikroORM, context: SessionContext, settings: PgSettings): Promise<PgPoolSession> {
    const session = new PgPoolSession(orm, context, settings);
    await connectWithDriverOptions(orm, session.poolOptions(settings));
    if (!session.pool) throw new Error('MikroORM did not report its pg pool (onPoolCreated): this @mikro-orm/postgresql version is not supported');
    return session;
  }

  /** pg-pool's options (MikroORM merges them over its own): the user's driver options, ours on top. */
  private poolOptions(settings: PgSettings): Record<string, unknown> {
    const { config } = this.context;
    const user = (config.mikroOrm.driverOptions ?? {}) as Record<string, unknown>;
    return {
      ...settings.connectionSettings(user, this.sockets),
      Client: this.clients.Client,
      onPoolCreated: (pool: PgPool) => this.adopt(pool),
      min: 0,
      max: config.maxOpenConns,
      // 0 disables pg-pool's idle timer and lifetime, as it does ours.
      idleTimeoutMillis: config.connMaxIdleTime,
      maxLifetimeSeconds: config.connMaxLifetime / 1000,
      // pg-pool's bound on waiting for a client; each client's own connect is bounded by connect_timeout.
      connectionTimeoutMillis: config.acquireTimeout,
    };
  }

  /** Starts watching the pool MikroORM just built from our options. */
  private adopt(pool: PgPool): void {
    this.pool = pool;
    const { observer, config } = this.context;
    const { ledger } = this;
    const trimmer = idleClientTrimmer(pool);
    if (typeof trimmer === 'string') this.context.warn(trimmer);
    const rejecter = waitingRejecter(pool);
    if (typeof rejecter === 'string') this.context.warn(rejecter);
    else this.rejectWaiting = rejecter;
    // The first client shows whether its socket can be reached (for tearing a hung ping or query down).
    pool.once('connect', (client) => {
      if (!socketOf(client)) this.context.warn(SOCKET_UNREACHABLE);
    });
    pool.on('connect', (client) => {
      ledger.created(client);
      client.on('error', (error) => observer.connectionError(error));
    });
    pool.on('acquire', (client) => ledger.lentOut(client));
    pool.on('release', (_error, client) => {
      ledger.returned(client);
      if (typeof trimmer !== 'string' && pool.idleCount + 1 > config.maxIdleConns) {
        queueMicrotask(() => trimmer.trim(config.maxIdleConns, (c) => ledger.trim(c)));
      }
      // Once pg-pool has put it back (after its own queue had first pick), an idle client goes to a refused caller.
      // Asked first: a microtask per release would cost every query something for a case that is almost never there.
      if (this.refused.any) {
        queueMicrotask(() => {
          if (pool.idleCount > 0) this.refused.wakeFirst();
        });
      }
    });
    pool.on('remove', (client) => observer.closed(ledger.closed(client)));
    // pg-pool re-emits an idle client's error on the pool, and the client's own listener above has reported it
    // already (checked-out clients' errors come only there): told twice, a user would count two errors per dead
    // connection. A listener stays, so an error event never goes unheard (MikroORM adds one too).
    pool.on('error', noop);
    this.rawConnect = interceptConnect(pool, (connect) => this.acquire(connect));
  }

  /**
   * One acquire, timed (a wait is one that found every client busy, or had to try again). A connect that fails for a
   * reason that can pass (the server's connection limit, a refused or timed-out connect) does not fail the caller: it
   * waits for a client to come back or its backoff, and tries again until acquire_timeout, then fails with an
   * `AcquireTimeoutError` naming that failure; a permanent one (wrong password, unknown database) fails at once. A
   * closed connection refuses with its `ConnectionClosedError`. Every query passes here, so the first try is a plain
   * `then` (no async frame of its own); the retries live in `retryAcquire`.
   */
  private acquire(connect: () => Promise<PgPoolClient>): Promise<PgPoolClient> {
    const refused = this.context.closedError();
    if (refused) return Promise.reject(refused);
    const started = performance.now();
    const saturated = this.saturated();
    this.waiting++;
    return connect().then(
      (client) => {
        this.waiting--;
        this.lastConnectFailure = undefined;
        this.context.observer.acquired(performance.now() - started, saturated);
        return client;
      },
      (error: unknown) => this.retryAcquire(connect, error, started).finally(() => this.waiting--),
    );
  }

  /** The first connect failed with `error`: fails the caller, or waits and tries again until acquire_timeout. */
  private async retryAcquire(connect: () => Promise<PgPoolClient>, error: unknown, started: number): Promise<PgPoolClient> {
    const { observer, config } = this.context;
    const deadline = config.acquireTimeout ? started + config.acquireTimeout : Infinity;
    const timedOut = () => {
      observer.acquireTimedOut(performance.now() - started);
      return this.acquireTimeout();
    };
    for (let failures = 1; ; failures++) {
      const closed = this.context.closedError(error);
      if (closed) throw closed;
      if (isPgPoolTimeout(error) || error === DEADLINE) throw timedOut();
      if (this.permanent(error)) throw error;
      this.lastConnectFailure = error;
      await this.refused.wait(Math.min(connectRetryDelay(failures - 1), deadline - performance.now()));
      if (performance.now() >= deadline) throw timedOut();
      const refused = this.context.closedError();
      if (refused) throw refused;
      try {
        const client = await withinDeadline(connect(), deadline);
        this.lastConnectFailure = undefined;
        observer.acquired(performance.now() - started, true);
        return client;
      } catch (next) {
        error = next;
      }
    }
  }

  /** The acquire timeout, with the connect failure that kept the pool from growing as its cause. */
  private acquireTimeout(): AcquireTimeoutError {
    const { config } = this.context;
    const cause = this.lastConnectFailure;
    return new AcquireTimeoutError(config.name, config.acquireTimeout, this.max, cause === undefined ? undefined : { error: cause, message: this.context.describeError(cause) });
  }

  /**
   * True when a new caller would have to wait: the callers already queued claim every idle client and every client the
   * pool may still open. (pg-pool hands an idle client to a queued caller a tick later, so idleCount alone lags.)
   */
  private saturated(): boolean {
    const pool = this.pool!;
    return pool.waitingCount >= pool.idleCount + Math.max(0, this.max - pool.totalCount);
  }

  private get max(): number {
    return this.context.config.maxOpenConns;
  }

  gauges(): PoolGauges {
    const pool = this.pool;
    if (!pool) return { open: 0, inUse: 0, idle: 0, pending: 0, max: this.max };
    // pg-pool counts a client still connecting among its clients; it is neither open nor in use yet (as in tarn's
    // figures on MikroORM 6), or shutdown would wait for a connect to a black hole as for a caller's query.
    const idle = pool.idleCount;
    const inUse = Math.min(this.ledger.inUse().length, pool.totalCount - idle);
    return { open: idle + inUse, inUse, idle, pending: this.waiting, max: this.max };
  }

  kysely(): unknown {
    return kyselyOf(this.orm);
  }

  /**
   * Lends a pooled `pg` client and releases it after `fn`. Inside `em.transactional` it lends the transaction's own
   * client, so a one-connection pool cannot deadlock.
   */
  withNativeClient<T>(fn: (client: unknown) => Promise<T> | T): Promise<T> {
    const transaction = currentTransaction(this.context.config.name, this.orm.em);
    if (transaction) return this.lendTransactionClient(transaction, fn);
    // Not async, and the client goes back the moment fn settles: no frame, promise or tick beyond the pool's own.
    return this.pool!.connect().then((client) => {
      let result: Promise<T> | T;
      try {
        result = fn(this.lent(client));
      } catch (error) {
        client.release();
        throw error;
      }
      if (!isThenable(result)) {
        client.release();
        return result;
      }
      return result.then(
        (value) => {
          client.release();
          return value;
        },
        (error: unknown) => {
          client.release();
          throw error;
        },
      );
    });
  }

  /** Inside `em.transactional`: the transaction's own client, found by a probe through its connection. */
  private async lendTransactionClient<T>(transaction: unknown, fn: (client: unknown) => Promise<T> | T): Promise<T> {
    const client = await identifyTransactionClient(transaction, (send) => this.clients.identify(send));
    if (!client) throw new Error(`Connection "${this.context.config.name}": the transaction's client could not be found to lend it`);
    return fn(this.lent(client));
  }

  private lent<T extends object>(client: T): T {
    return this.settings.nativeClientView ? this.settings.nativeClientView(client) : client;
  }

  /** A health ping that cannot pile up (BoundedPing); on timeout the connection's socket is destroyed. */
  ping(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.pinger.run(timeoutMs, signal);
  }

  private async pooledPing(setOnTimeout: (fn: () => void) => void): Promise<void> {
    // Not saturated: an idle client is lent at once, or a new one is opened, which connect_timeout bounds. pg-pool's
    // own connect(): a failed connect is the ping's answer, not something to wait out.
    const client = await this.rawConnect();
    setOnTimeout(() => {
      this.ledger.writeOff(client);
      socketOf(client)?.destroy();
    });
    try {
      await this.clients.quietQuery(client as unknown as PgClientLike, 'select 1');
      client.release();
    } catch (error) {
      this.ledger.writeOff(client);
      client.release(error);
      throw error;
    }
  }

  private async ownClientPing(setOnTimeout: (fn: () => void) => void): Promise<void> {
    const pool = this.pool!;
    const client = new this.clients.Client(pool.options) as unknown as PgClientLike & {
      connect(): Promise<void>;
      end(): Promise<void>;
      on(event: 'error', listener: (error: Error) => void): unknown;
    };
    // Not the pool's, so no listener of the pool's: a socket torn down mid-query (the ping cancelled at close) makes pg
    // emit 'error', which unheard would crash the process. The ping learns it from its own query's rejection.
    client.on('error', noop);
    setOnTimeout(() => socketOf(client)?.destroy());
    try {
      await client.connect();
      await this.clients.quietQuery(client, 'select 1');
    } finally {
      await client.end().catch(noop);
    }
  }

  /**
   * Shutdown's last resort once shutdown_timeout is spent: tears down what would keep the pool from closing — clients
   * still lent out (hung queries, open transactions; those fail) and connects still under way — and fails the callers
   * still waiting for a client with the connection's `ConnectionClosedError`.
   */
  abort(): TornDown {
    const pool = this.pool;
    const busy = this.ledger.inUse();
    const connecting = Math.max(0, pool ? pool.totalCount - pool.idleCount - busy.length : 0) + (this.pinger.connecting ? 1 : 0);
    const closed = this.context.closedError() ?? new Error(`Connection "${this.context.config.name}" is closing`);
    for (const client of busy) {
      this.ledger.writeOff(client);
      socketOf(client)?.destroy();
      // Taken back now: pg-pool's end() waits for every lent client, and a holder that never returns (a native client
      // callback awaiting something else) would hold close() forever.
      takeBack(client, closed);
    }
    this.rejectWaiting?.(closed);
    this.refused.wakeAll();
    if (connecting > 0) this.sockets.destroyAll();
    return { inUse: busy.length, connecting };
  }

  async close(): Promise<void> {
    this.ledger.shuttingDown();
    await this.orm.close(true);
    // Kysely ends the pool only if a query of its own ever ran (it takes the pool on first use): health pings and
    // native clients alone would leave it open, its clients connected to the server.
    if (this.pool && !this.pool.ending) await this.pool.end();
    await this.pinger.settled();
  }
}


function isThenable<T>(value: Promise<T> | T): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Rejection of a retried connect that outlived the acquire deadline. */
const DEADLINE = new Error('acquire deadline passed');

/** `connect` raced against the deadline; a client that comes later goes straight back to the pool. */
async function withinDeadline(connect: Promise<PgPoolClient>, deadline: number): Promise<PgPoolClient> {
  if (!Number.isFinite(deadline)) return connect;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(DEADLINE), Math.max(0, deadline - performance.now()))));
  try {
    return await Promise.race([connect, late]);
  } catch (error) {
    if (error === DEADLINE) void connect.then((client) => client.release(), noop);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
