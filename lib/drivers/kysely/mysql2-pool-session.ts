import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import type { MikroORM } from '@mikro-orm/core';
import { AcquireTimeoutError } from '../../errors';
import type { PoolGauges } from '../../vocabulary';
import { identifyTransactionClient, kyselyOf, nativeClientOf } from '../adapters/kysely';
import { connectWithDriverOptions, currentTransaction } from '../adapters/mikro-orm';
import { type GetConnectionCallback, type Mysql2Connection, type Mysql2Pool, type PoolInternals, poolInternals } from '../adapters/mysql2';
import { BoundedPing } from '../bounded-ping';
import { ConnectionLedger } from '../connection-ledger';
import type { DriverSession, SessionContext, TornDown } from '../driver';
import { connectRetryDelay, FOREVER } from '../pool-timing';
import { watchQueryMethod } from '../native-watch';

const noop = (): void => undefined;

/** What the MySQL-family driver file gives a session on MikroORM 7 (the same rules its MikroORM 6 pool follows). */
export interface MySqlSettings {
  /** mysql2's connection settings on top of the user's own (timeouts, TLS, connect attributes). */
  connectionSettings(user: Record<string, unknown>): Record<string, unknown>;
  /** Session settings a new connection needs before its first use (the statement time limit). */
  prepareConnection(connection: Mysql2Connection): Promise<void>;
  /** True for connect errors a retry cannot fix (the driver's own rule). */
  isPermanentError(error: unknown): boolean;
  /** Tears a connection's socket down at once. */
  destroySocket(connection: Mysql2Connection): void;
}

/** An answer mysql2 gives a query that returns no rows (the probe is never sent). */
const NOT_SENT: unknown[] = [];

/**
 * The mysql2 pool of a MySQL or MariaDB connection on MikroORM 7, shared by the EntityManager, `kysely()` and the
 * native client. MikroORM builds it from options bound to this session; every acquire passes through the pool's
 * `getConnection()`, which the session fronts: it refuses when closed, times the wait, bounds it by acquire_timeout
 * (mysql2 has no such bound), retries a connect that failed for a reason that can pass, prepares new connections
 * (the statement time limit) and replaces those past their lifetime. Idle and max-idle closing are the session's too,
 * so each close is counted with its reason.
 */
export class Mysql2PoolSession implements DriverSession {
  private pool?: Mysql2Pool;
  private internals?: PoolInternals;
  /** mysql2's own getConnection, for health pings (a failed connect is their answer) and what the door forwards to. */
  private rawGet!: (callback: GetConnectionCallback) => void;
  private readonly ledger: ConnectionLedger<Mysql2Connection>;
  /** Connections seen open, until they close; prepared ones only once their session settings are in place. */
  private readonly open = new Set<Mysql2Connection>();
  private readonly prepared = new WeakSet<Mysql2Connection>();
  private readonly bornAt = new WeakMap<Mysql2Connection, number>();
  private readonly freeSince = new WeakMap<Mysql2Connection, number>();
  /** Callbacks of the session's own waiters, which mysql2 may hand back to getConnection(). */
  private readonly ownCallbacks = new WeakSet<GetConnectionCallback>();
  /** The view of each connection handed out: its queries reported, probes answered (cached, so Kysely sees one object). */
  private readonly views = new WeakMap<Mysql2Connection, Mysql2Connection>();
  private readonly probe = new AsyncLocalStorage<{ connection?: Mysql2Connection }>();
  private waiting = 0;
  private ended?: Promise<void>;
  /** Health pings: on a pooled connection, or on one of their own while every pooled one is busy. */
  private readonly pinger = new BoundedPing({
    saturated: () => this.saturated(),
    pooled: ({ onGiveUp }) => this.pooledPing(onGiveUp),
    ownConnection: ({ onGiveUp }) => this.ownConnectionPing(onGiveUp),
  });
  private reaper?: NodeJS.Timeout;
  /** The last failed connect since the last success, for an acquire timeout to name as its cause. */
  private lastConnectFailure: unknown;
  private readonly limits: { max: number; maxIdle: number; idleMs: number; lifetimeMs: number };
  private readonly watch?: (original: (this: unknown, ...args: unknown[]) => unknown) => (this: unknown, ...args: unknown[]) => unknown;

  private constructor(
    private readonly orm: MikroORM,
    private readonly context: SessionContext,
    private readonly settings: MySqlSettings,
    private readonly mysql2: { createConnection(options: Record<string, unknown>): Mysql2Connection & { connect(cb: (error: Error | null) => void): void } },
  ) {
    const { config } = context;
    this.limits = { max: config.maxOpenConns, maxIdle: config.maxIdleConns, idleMs: config.connMaxIdleTime || FOREVER, lifetimeMs: config.connMaxLifetime };
    this.ledger = new ConnectionLedger(this.limits);
    this.watch = context.queries ? watchQueryMethod(context.queries, false) : undefined;
  }

  /** Opens MikroORM's connection on this session's pool options; `packageName` is the MikroORM driver (for mysql2's resolution). */
  static async open(orm: MikroORM, context: SessionContext, settings: MySqlSettings, packageName: string): Promise<Mysql2PoolSession> {
    const fromDriver = createRequire(require.resolve(packageName));
    // @mikro-orm/mariadb is built on @mikro-orm/mysql: both use the mysql2 that @mikro-orm/mysql depends on.
    const mysql2 = createRequire(fromDriver.resolve('@mikro-orm/mysql'))('mysql2') as Mysql2PoolSession['mysql2'];
    const session = new Mysql2PoolSession(orm, context, settings, mysql2);
    await connectWithDriverOptions(orm, session.poolOptions());
    // MikroORM's public getNativeClient(): the mysql2 pool it built (no connection is open yet).
    session.adopt((await nativeClientOf(orm)) as Mysql2Pool);
    return session;
  }

  private user(): Record<string, unknown> {
    return (this.context.config.mikroOrm.driverOptions ?? {}) as Record<string, unknown>;
  }

  /** mysql2's pool options (MikroORM merges them over its own): the connection settings and the pool's limits. */
  private poolOptions(): Record<string, unknown> {
    const { max } = this.limits;
    return {
      ...this.settings.connectionSettings(this.user()),
      connectionLimit: max,
      // mysql2 closes idle connections only when maxIdle < connectionLimit: off, as the session closes them itself.
      maxIdle: max,
      waitForConnections: true,
      queueLimit: 0,
    };
  }

  /** Starts fronting the pool MikroORM just built. */
  private adopt(pool: Mysql2Pool): void {
    this.pool = pool;
    const internals = poolInternals(pool);
    if (typeof internals === 'string') this.context.warn(internals);
    else this.internals = internals;
    this.rawGet = pool.getConnection.bind(pool);
    // The one door of the EntityManager, Kysely and the native client (and of mysql2's own pool.query()).
    (pool as { getConnection: Mysql2Pool['getConnection'] }).getConnection = (callback) => {
      // A waiter of the session's that mysql2 re-dispatches (after a connection was removed) goes straight through.
      if (this.ownCallbacks.has(callback)) return this.rawGet(callback);
      // Called outside the promise chain, as mysql2 calls it: a callback that throws is not swallowed as a rejection.
      this.acquire().then(
        (connection) => process.nextTick(callback, null, connection),
        (error: Error) => process.nextTick(callback, error),
      );
    };
    const release = pool.releaseConnection.bind(pool);
    (pool as { releaseConnection: Mysql2Pool['releaseConnection'] }).releaseConnection = (connection) => {
      this.ledger.returned(connection);
      this.freeSince.set(connection, performance.now());
      release(connection);
      if (this.internals && this.internals.counts().free > this.limits.maxIdle) queueMicrotask(() => this.trimIdle());
    };
    const end = pool.end.bind(pool);
    (pool as { end: Mysql2Pool['end'] }).end = (callback) => {
      if (this.ended) return void this.ended.then(() => callback?.());
      this.ended = new Promise<void>((resolve) =>
        end((error) => {
          resolve();
          callback?.(error);
        }),
      );
    };
    if (this.internals && this.limits.idleMs < FOREVER) {
      this.reaper = setInterval(() => this.reapIdle(), Math.max(50, Math.min(1_000, Math.floor(this.limits.idleMs / 4))));
      this.reaper.unref();
    }
  }

  /**
   * One acquire, timed (a wait is one that found every connection busy) and bounded by acquire_timeout. A connect that
   * fails for a reason that can pass is retried with backoff until then, and the timeout names that failure; a
   * permanent one fails at once. New connections get their session settings first; one past its lifetime is replaced.
   */
  private async acquire(): Promise<Mysql2Connection> {
    const { observer, config } = this.context;
    const refused = this.context.closedError();
    if (refused) throw refused;
    const started = performance.now();
    const saturated = this.saturated();
    const deadline = config.acquireTimeout ? started + config.acquireTimeout : Infinity;
    this.waiting++;
    try {
      for (let failures = 0; ; ) {
        try {
          const connection = await this.getWithin(deadline);
          if (this.expired(connection)) {
            this.closeConnection(connection);
            continue;
          }
          await this.prepare(connection);
          this.lastConnectFailure = undefined;
          this.ledger.lentOut(connection);
          observer.acquired(performance.now() - started, saturated);
          return this.viewOf(connection);
        } catch (error) {
          const closed = this.context.closedError(error);
          if (closed) throw closed;
          if (error !== DEADLINE && this.settings.isPermanentError(error)) throw error;
          if (error !== DEADLINE) this.lastConnectFailure = error;
          const wait = connectRetryDelay(failures++);
          if (error === DEADLINE || performance.now() + wait >= deadline) {
            observer.acquireTimedOut(performance.now() - started);
            throw this.acquireTimeout();
          }
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    } finally {
      this.waiting--;
    }
  }

  /** mysql2's getConnection raced against the deadline; a connection that comes later goes straight back. */
  private getWithin(deadline: number): Promise<Mysql2Connection> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const callback: GetConnectionCallback = (error, connection) => {
        if (settled) return connection?.release();
        settled = true;
        clearTimeout(timer);
        if (error || !connection) return reject(error ?? new Error('mysql2 lent no connection'));
        this.seen(connection);
        resolve(connection);
      };
      this.ownCallbacks.add(callback);
      if (Number.isFinite(deadline)) {
        timer = setTimeout(() => {
          settled = true;
          this.internals?.unqueue(callback);
          reject(DEADLINE);
        }, Math.max(0, deadline - performance.now()));
      }
      this.rawGet(callback);
    });
  }

  /** A connection the session meets for the first time: its age starts and its end is watched. */
  private seen(connection: Mysql2Connection): void {
    if (this.open.has(connection) || this.prepared.has(connection)) return;
    this.open.add(connection);
    this.ledger.created(connection);
    this.bornAt.set(connection, performance.now());
    connection.on('error', (error) => {
      this.context.observer.connectionError(error);
      this.closed(connection);
    });
    connection.once('end', () => this.closed(connection));
  }

  /** Session settings before a new connection's first use; a connection that cannot take them is closed. */
  private async prepare(connection: Mysql2Connection): Promise<void> {
    if (this.prepared.has(connection)) return;
    try {
      await this.settings.prepareConnection(connection);
      this.prepared.add(connection);
    } catch (error) {
      this.ledger.writeOff(connection);
      this.closeConnection(connection);
      throw error;
    }
  }

  private expired(connection: Mysql2Connection): boolean {
    const born = this.bornAt.get(connection);
    return this.limits.lifetimeMs > 0 && born !== undefined && performance.now() - born >= this.limits.lifetimeMs;
  }

  /** Closes a connection the session gave up on (lifetime, idle, max idle, written off), counted by its reason. */
  private closeConnection(connection: Mysql2Connection): void {
    this.closed(connection);
    connection.destroy();
  }

  /** A connection is gone (closed by the session, the server or the network): counted once, with its reason. */
  private closed(connection: Mysql2Connection): void {
    if (!this.open.delete(connection)) return;
    this.context.observer.closed(this.ledger.closed(connection));
  }

  /** Closes the longest-idle connections beyond max_idle_conns. */
  private trimIdle(): void {
    const free = this.internals?.freeOldestFirst() ?? [];
    for (const connection of free.slice(0, Math.max(0, free.length - this.limits.maxIdle))) {
      this.ledger.trim(connection);
      this.closeConnection(connection);
    }
  }

  /** Closes connections idle for conn_max_idle_time. */
  private reapIdle(): void {
    const now = performance.now();
    for (const connection of this.internals?.freeOldestFirst() ?? []) {
      const since = this.freeSince.get(connection) ?? this.bornAt.get(connection) ?? now;
      if (now - since >= this.limits.idleMs) this.closeConnection(connection);
    }
  }

  /** True when every connection is lent out or opening, so a new caller must wait. */
  private saturated(): boolean {
    if (!this.internals) return this.ledger.inUse().length >= this.limits.max;
    const { all, free } = this.internals.counts();
    return free === 0 && all >= this.limits.max;
  }

  private acquireTimeout(): AcquireTimeoutError {
    const { config } = this.context;
    const cause = this.lastConnectFailure;
    return new AcquireTimeoutError(config.name, config.acquireTimeout, this.limits.max, cause === undefined ? undefined : { error: cause, message: this.context.describeError(cause) });
  }

  /**
   * What callers get instead of the connection itself: the same connection, whose `query` / `execute` report each
   * statement (tracing, query logging) and answer the transaction probe without sending it. Cached per connection.
   */
  private viewOf(connection: Mysql2Connection): Mysql2Connection {
    let view = this.views.get(connection);
    if (view) return view;
    const { probe, watch } = this;
    const replaced = new Map<PropertyKey, (...args: unknown[]) => unknown>();
    for (const name of ['query', 'execute'] as const) {
      const method = (connection as unknown as Record<string, (...args: unknown[]) => unknown>)[name];
      if (typeof method !== 'function') continue;
      const original = method.bind(connection);
      const reported = watch ? watch(original) : original;
      replaced.set(name, (...args: unknown[]) => {
        const slot = probe.getStore();
        const callback = args[args.length - 1];
        if (slot && typeof callback === 'function') {
          slot.connection = connection;
          queueMicrotask(() => (callback as (error: null, rows: unknown) => void)(null, NOT_SENT));
          return undefined;
        }
        return reported(...args);
      });
    }
    view = new Proxy(connection, {
      get(target, property) {
        const own = replaced.get(property);
        if (own) return own;
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    this.views.set(connection, view);
    return view;
  }

  gauges(): PoolGauges {
    const max = this.limits.max;
    if (!this.internals) {
      const inUse = this.ledger.inUse().length;
      return { open: this.open.size, inUse, idle: Math.max(0, this.open.size - inUse), pending: this.waiting, max };
    }
    const { all, free, queued } = this.internals.counts();
    return { open: all, inUse: all - free, idle: free, pending: queued, max };
  }

  kysely(): unknown {
    return kyselyOf(this.orm);
  }

  /**
   * Lends a pooled mysql2 connection and releases it after `fn`. Inside `em.transactional` it lends the transaction's
   * own connection, so a one-connection pool cannot deadlock.
   */
  async withNativeClient<T>(fn: (client: unknown) => Promise<T> | T): Promise<T> {
    const transaction = currentTransaction(this.context.config.name, this.orm.em);
    if (transaction) {
      const connection = await identifyTransactionClient(transaction, async (send) => {
        const slot: { connection?: Mysql2Connection } = {};
        await this.probe.run(slot, send);
        return slot.connection;
      });
      if (!connection) throw new Error(`Connection "${this.context.config.name}": the transaction's connection could not be found to lend it`);
      return fn(this.viewOf(connection));
    }
    const connection = await new Promise<Mysql2Connection>((resolve, reject) => this.pool!.getConnection((error, c) => (error || !c ? reject(error) : resolve(c))));
    try {
      return await fn(connection);
    } finally {
      connection.release();
    }
  }

  /** A health ping that cannot pile up (BoundedPing); on timeout the connection's socket is destroyed. */
  ping(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.pinger.run(timeoutMs, signal);
  }

  private async pooledPing(setOnTimeout: (fn: () => void) => void): Promise<void> {
    // Not saturated: an idle connection is lent at once, or a new one is opened, which connect_timeout bounds. mysql2's
    // own getConnection: a failed connect is the ping's answer, not something to wait out.
    let abandoned = false;
    setOnTimeout(() => (abandoned = true));
    const connection = await new Promise<Mysql2Connection>((resolve, reject) =>
      this.rawGet((error, c) => {
        if (error || !c) return reject(error ?? new Error('mysql2 lent no connection'));
        // The ping gave up before the connection came: it goes back untouched.
        if (abandoned) return c.release();
        this.seen(c);
        resolve(c);
      }),
    );
    setOnTimeout(() => {
      this.ledger.writeOff(connection);
      this.settings.destroySocket(connection);
    });
    try {
      if (this.expired(connection)) throw new Error('the pooled connection passed its lifetime');
      await this.prepare(connection);
      await runQuietly(connection, 'SELECT 1');
      connection.release();
    } catch (error) {
      this.ledger.writeOff(connection);
      this.closeConnection(connection);
      throw error;
    }
  }

  private async ownConnectionPing(setOnTimeout: (fn: () => void) => void): Promise<void> {
    const options = { ...(this.orm.em.getConnection() as unknown as { getConnectionOptions(): Record<string, unknown> }).getConnectionOptions(), ...this.settings.connectionSettings(this.user()) };
    const connection = this.mysql2.createConnection(options);
    connection.on('error', noop);
    setOnTimeout(() => this.settings.destroySocket(connection));
    try {
      await new Promise<void>((resolve, reject) => connection.connect((error) => (error ? reject(error) : resolve())));
      await runQuietly(connection, 'SELECT 1');
    } finally {
      this.settings.destroySocket(connection);
    }
  }

  /**
   * Shutdown's last resort once shutdown_timeout is spent: tears down connections still lent out (their queries fail)
   * and connects still under way (mysql2's end() waits for them otherwise), so the pool closes at once.
   */
  abort(): TornDown {
    const busy = this.ledger.inUse();
    for (const connection of busy) {
      this.ledger.writeOff(connection);
      this.settings.destroySocket(connection);
    }
    // Opening connections are in mysql2's list, not yet seen by the session.
    const opening = (this.internals?.allConnections() ?? []).filter((connection) => !this.open.has(connection));
    for (const connection of opening) this.settings.destroySocket(connection);
    return { inUse: busy.length, connecting: opening.length + (this.pinger.connecting ? 1 : 0) };
  }

  /** Closes the pool (each connection says QUIT); a ping's own connection is not the pool's, so closing waits for it too. */
  async close(): Promise<void> {
    this.ledger.shuttingDown();
    clearInterval(this.reaper);
    try {
      await this.orm.close(true);
    } finally {
      // Kysely ends the pool only once a query went through it: a pool used only by pings and native clients is ended here.
      if (!this.ended) this.pool?.end();
      await this.ended;
      for (const connection of [...this.open]) this.closed(connection);
      await this.pinger.settled();
    }
  }
}

/** One statement on a connection, outside the session's view: health pings stay out of traces and logs. */
function runQuietly(connection: Mysql2Connection, sql: string): Promise<unknown> {
  return new Promise((resolve, reject) => connection.query(sql, (error, rows) => (error ? reject(error) : resolve(rows))));
}


/** Rejection of an acquire that outlived acquire_timeout. */
const DEADLINE = new Error('acquire deadline passed');
