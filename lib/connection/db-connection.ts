import { inspect, type InspectOptions } from 'node:util';
import { Logger } from '@nestjs/common';
import { type EntityManager, MikroORM } from '@mikro-orm/core';
import type { ConnectionConfig, DatabaseType } from '../config/config.types';
import { initOrmSync, keepOurErrorsThroughTheOrm, openBeforeQueries } from '../drivers/adapters/mikro-orm';
import type { DbDriver, DriverSession } from '../drivers/driver';
import { driverFor } from '../drivers/registry';
import { ConnectionClosedError, DbManagerError, NotMongoDatabaseError, NotSqlDatabaseError, QueryBuilderUnavailableError } from '../errors';
import { mikroOrm } from '../mikro-orm-version';
import type { KnexQueryBuilder, KyselyQueryBuilder } from '../query-builders';
import { logConnectionEvents, queryLog } from '../tracing/connection-log';
import { ConnectionTracing, type SpanOutcome } from '../tracing/connection-tracing';
import { combineQueryListeners } from '../tracing/query-listener';
import type { ConnectionEvents, ConnectionHealth, ConnectionStats, ConnectionStatus, ConnectionTarget, PoolGauges, QueryListener } from '../vocabulary';
import { drainAndClose } from './drain-session';
import { HealthProbe } from './health-probe';
import { type HandleAccessor, LazyPool } from './lazy-pool';
import { ormOptions } from './orm-options';
import { PoolCounters } from './pool-counters';
import { errorMessage, secretRedactor } from './redact';
import { StatusBook } from './status-book';

/**
 * One named database connection: a MikroORM instance whose EntityManager, query builder and native client
 * all come from one pool. Status, pool figures and health live here; retries and the health loop are the manager's.
 */
export class DbConnection {
  // A facade: opening, idling and reopening the pool are the LazyPool's, pings the HealthProbe's, status and events
  // the StatusBook's, draining the pool at close drainAndClose's; what stays here is the public API, the ORM, the
  // access paths and the order of close().

  /** The connection's name (its key in the configuration). */
  readonly name: string;
  /** Its database type. */
  readonly type: DatabaseType;
  /** Tags from the configuration, for `findByTags`. */
  readonly tags: Readonly<Record<string, string>>;
  /** Where it points, for messages and span attributes (password masked). */
  readonly target: ConnectionTarget;

  /** Status, last check and error, reconnects, and the events that tell of them. */
  private readonly book: StatusBook;
  /** The pool (the driver session): opened on demand, closed when idle, reopened on the next use. */
  private readonly pool: LazyPool;
  /** Live pings and reconnect attempts, one of each at a time. */
  private readonly probe: HealthProbe;
  /** The MikroORM instance; a lazy connection's is built on first use. */
  private ormInstance?: MikroORM;
  /** Adapter warnings already logged (each once per connection, however often the pool is reopened). */
  private readonly warned = new Set<string>();
  /** connect() attempts under way (close() cancels them and waits for them to settle). */
  private readonly inFlightConnects = new Set<Promise<void>>();
  /** Aborted by close(): cancels connects and pings in flight. */
  private readonly stopping = new AbortController();
  /** Set once the pool is being torn down: from then on every access path refuses with ConnectionClosedError. */
  private refusing = false;
  private closing?: Promise<void>;
  private readonly counters: PoolCounters;
  private readonly redact: (text: string) => string;
  private readonly logger: Logger;
  /** Spans of this connection (`enable_tracing`), else undefined. */
  private readonly tracing?: ConnectionTracing;
  /** Told about every query (tracing, query logging); undefined when both are off, so no listener is attached. */
  private readonly queries?: QueryListener;

  private constructor(
    /** The validated configuration (holds the password: never log it). */
    private readonly config: ConnectionConfig,
    private readonly driver: DbDriver,
    /** The MikroORM instance (its pool is (re)opened by connect()), or how to build it on first use (lazy). */
    orm: MikroORM | (() => MikroORM),
    counters: PoolCounters,
  ) {
    this.name = config.name;
    this.type = config.type;
    this.tags = Object.freeze({ ...config.tags });
    this.target = driver.target(config);
    this.redact = secretRedactor(config);
    this.logger = new Logger(`DbManager:${config.name}`);
    this.counters = counters;
    this.tracing = config.enableTracing ? new ConnectionTracing(config.name, this.target) : undefined;
    this.queries = combineQueryListeners(this.tracing?.startQuery, config.enableLogging ? queryLog(this.logger, this.target.dbSystem) : undefined);
    this.book = new StatusBook(config.name, config.lazy ? 'idle' : 'connecting', this.logger);
    this.pool = new LazyPool(config, this.book, {
      orm: () => this.orm,
      openDriverSession: (orm) => this.openDriverSession(orm),
      connect: () => this.connect(),
      busy: () => this.probe.busy || this.inFlightConnects.size > 0,
      redact: this.redact,
    }, this.logger);
    this.probe = new HealthProbe(config.healthCheckTimeout, this.book, {
      openPool: () => this.pool.openPool(),
      stopping: this.stopping.signal,
      traced: (name, fn, outcome) => this.traced(name, fn, outcome),
      recordSuccess: () => this.recordSuccess(),
      recordFailure: (error) => this.recordFailure(error),
    });
    if (typeof orm === 'function') this.buildOrm = orm;
    else this.adoptOrm(orm);
  }

  /** Builds a lazy connection's MikroORM instance on first use; undefined once built (or never lazy). */
  private buildOrm?: () => MikroORM;

  /** The MikroORM instance (a lazy connection's is built on first use). */
  get orm(): MikroORM {
    if (!this.ormInstance) {
      const build = this.buildOrm!;
      this.buildOrm = undefined;
      this.adoptOrm(build());
    }
    return this.ormInstance!;
  }

  /**
   * False for a lazy connection whose MikroORM instance is not built yet (nothing used it).
   * @internal
   */
  get ormBuilt(): boolean {
    return this.ormInstance !== undefined;
  }

  /** Takes the ORM built for this connection: our errors pass through it, and its queries open an idle pool first. */
  private adoptOrm(orm: MikroORM): void {
    this.ormInstance = orm;
    keepOurErrorsThroughTheOrm(orm, (error) => error instanceof DbManagerError, (cause) => this.closedError(cause), (m) => this.warnOnce(m));
    openBeforeQueries(orm, () => this.pool.beforeQuery(), (m) => this.warnOnce(m));
  }

  /**
   * Builds the MikroORM instance without touching the server; `connect()` opens the pool.
   * @internal
   */
  static async create(config: ConnectionConfig): Promise<DbConnection> {
    const driver = driverFor(config.type);
    const ormDriver = await driver.loadOrmDriver(config.name);
    let self: DbConnection | undefined;
    const counters = new PoolCounters({
      acquired: (waitMs, waited) => self?.emit('acquire', waitMs, waited),
      acquireTimedOut: (waitMs) => self?.emit('acquireTimeout', waitMs),
      closed: (reason) => self?.emit('closed', reason),
      connectionError: (error) => self?.emit('connectionError', error),
    });
    const { notApplicable } = driver.ormOptions(config);
    // A lazy connection builds its ORM on first use: a thousand tenants cost a thousand ORMs only once all are used.
    const orm = config.lazy ? () => initOrmSync(ormOptions(config, driver, ormDriver)) : await MikroORM.init(ormOptions(config, driver, ormDriver));
    self = new DbConnection(config, driver, orm, counters);
    if (config.enableLogging) logConnectionEvents(self, self.logger);
    for (const line of notApplicable) self.logger.warn(line);
    return self;
  }

  /** `connecting`, `up`, `down`, `idle` or `closed`. */
  get status(): ConnectionStatus {
    return this.book.status;
  }

  /** Must be up for the app to start and for /health to be 200. */
  get critical(): boolean {
    return this.config.critical;
  }

  /** `enable_metrics`: whether this connection exports Prometheus series. */
  get metricsEnabled(): boolean {
    return this.config.enableMetrics;
  }

  /** What `getDefaultDatabase()` hands out for this connection. */
  get defaultOrm(): ConnectionConfig['defaultOrm'] {
    return this.config.defaultOrm;
  }

  /** The validated configuration, with the password and DSN masked. */
  get settings(): Readonly<ConnectionConfig> {
    return { ...this.config, password: this.config.password ? '***' : undefined, dsn: this.config.dsn ? this.target.display : undefined };
  }

  /**
   * The EntityManager: inside a request it resolves to that request's fork; outside one, use `em.fork()`. Its first
   * query opens an idle pool.
   */
  get em(): EntityManager {
    this.assertOpen();
    return this.orm.em;
  }

  /** The Knex query builder on this connection's pool: SQL connections on MikroORM 6 (on 7, use `kysely()`). */
  knex<K = KnexQueryBuilder>(): K {
    if (this.pool.mayIdle) return this.idleHandle('sql', 'knex()', (session) => session.knex?.()) as K;
    const session = this.openSession('sql', 'knex()');
    if (!session.knex) throw new QueryBuilderUnavailableError(this.name, 'knex()', mikroOrm().version);
    return session.knex() as K;
  }

  /**
   * The Kysely query builder on this connection's pool: SQL connections on MikroORM 7 (on 6, use `knex()`). Pass your
   * database interface for typed queries: `kysely<Database>().selectFrom('users')…`.
   */
  kysely<DB = any>(): KyselyQueryBuilder<DB> {
    if (this.pool.mayIdle) return this.idleHandle('sql', 'kysely()', (session) => session.kysely?.()) as KyselyQueryBuilder<DB>;
    const session = this.openSession('sql', 'kysely()');
    if (!session.kysely) throw new QueryBuilderUnavailableError(this.name, 'kysely()', mikroOrm().version);
    return session.kysely() as KyselyQueryBuilder<DB>;
  }

  /** The MongoClient (MongoDB only). */
  mongo<M = unknown>(): M {
    if (this.pool.mayIdle) return this.idleHandle('mongo', 'mongo()', (session) => session.mongo?.()) as M;
    return this.openSession('mongo', 'mongo()').mongo!() as M;
  }

  /**
   * Lends the raw driver client (a `pg.Client`, a sqlite3 `Database`, …) from the shared pool and gives it back
   * after `fn`. Inside `em.transactional` it lends the transaction's connection. Do not end or release it yourself.
   * An idle pool is opened first.
   */
  withNativeClient<T, C = unknown>(fn: (client: C) => Promise<T> | T): Promise<T> {
    // Not async: a second async frame around the session's would cost every native query a promise and a tick.
    const lend = (): Promise<T> => this.openSession('sql', 'withNativeClient()').withNativeClient(fn as (client: unknown) => Promise<T> | T);
    try {
      if (!this.pool.mayIdle) return lend();
      this.checkFamily('sql', 'withNativeClient()');
      return this.open().then(lend);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Opens the pool now if it is idle (a `lazy` connection not used yet, or one idle_pool_timeout closed); resolves at
   * once when it is open. Queries do this by themselves: call it before reading a synchronous result (`compile()`)
   * off `kysely()` or `knex()`. Rejects with the connect error, leaving the connection down (the health loop brings it
   * back).
   */
  open(): Promise<void> {
    return this.pool.open();
  }

  /** The handle an accessor gives out while the pool may be closed on purpose: it opens the pool on first use. */
  private idleHandle(family: 'sql' | 'mongo', what: HandleAccessor, live: (session: DriverSession) => unknown): unknown {
    this.checkFamily(family, what);
    return this.pool.handle(what, live);
  }

  private checkFamily(family: 'sql' | 'mongo', what: string): void {
    if (this.driver.accessFamily !== family) {
      throw family === 'sql' ? new NotSqlDatabaseError(this.name, this.type, what) : new NotMongoDatabaseError(this.name, this.type);
    }
  }

  /** The session behind an access path of `family`, or the error that says why there is none. */
  private openSession(family: 'sql' | 'mongo', what: string): DriverSession {
    this.assertOpen();
    this.checkFamily(family, what);
    this.pool.touch();
    const session = this.pool.session;
    if (!session) {
      const pool = family === 'mongo' ? 'the MongoDB client' : 'the connection pool';
      throw new Error(
        `Connection "${this.name}": ${pool} is not open, as the server has not been reachable yet` +
          `${this.book.lastFailure ? ` (${this.book.lastFailure})` : ''}. Wait until the connection is up (its status, or healthCheck()).`,
      );
    }
    return session;
  }

  /**
   * One attempt to open the pool and reach the server, bounded by connect_timeout.
   * Throws the driver's error (the manager decides whether to retry).
   * @internal
   */
  async connect(): Promise<void> {
    const attempt = this.traced('dbmanager.connect', () => this.connectOnce());
    this.inFlightConnects.add(attempt);
    try {
      return await attempt;
    } finally {
      this.inFlightConnects.delete(attempt);
    }
  }

  private async connectOnce(): Promise<void> {
    this.assertOpen();
    try {
      // Inside the try: MongoDB reaches the server while opening its pool, and that failure is a "down" too.
      const session = await this.pool.openPool();
      await session.ping(this.config.connectTimeout || this.config.healthCheckTimeout, this.stopping.signal);
    } catch (error) {
      this.recordFailure(error);
      throw error;
    }
    this.recordSuccess();
  }

  /**
   * True for errors a retry cannot fix (bad password, unknown database, missing driver).
   * @internal
   */
  isPermanentError(error: unknown): boolean {
    return this.driver.isPermanentError(error);
  }

  /**
   * Pings the server live, bounded by `timeoutMs` (default health_check_timeout). Never throws.
   * At most one ping is in flight: concurrent callers share it.
   */
  healthCheck(options: { timeout?: number } = {}): Promise<ConnectionHealth> {
    return this.probe.healthCheck(options);
  }

  /**
   * Brings a down connection back: a fresh ping through the pool (which replaces dead connections by itself);
   * the pool is rebuilt only when it is not open. One reconnect at a time; resolves true when up.
   * Each call is one attempt (the `reconnect` event); `stats().reconnects` counts every return from down to up.
   */
  reconnect(): Promise<boolean> {
    return this.probe.reconnect();
  }

  /** Live pool gauges. */
  gauges(): PoolGauges {
    const session = this.pool.session;
    if (!session || this.book.status === 'closed') {
      return { open: 0, inUse: 0, idle: 0, pending: 0, max: this.config.maxOpenConns };
    }
    return session.gauges();
  }

  /** Pool figures and health. */
  stats(): ConnectionStats {
    const c = this.counters;
    return {
      name: this.name,
      type: this.type,
      status: this.book.status,
      lastHealthCheck: this.book.lastCheck?.toISOString() ?? null,
      lastError: this.book.lastFailure,
      ...this.gauges(),
      waitCount: c.waitCount,
      waitDurationMs: round(c.waitDurationMs),
      timeouts: c.timeouts,
      lifetimeClosed: c.lifetimeClosed,
      idleClosed: c.idleClosed,
      maxIdleClosed: c.maxIdleClosed,
      reconnects: this.book.reconnects,
    };
  }

  /** What `JSON.stringify` and JSON loggers show: where it points (password masked), never the config or the ORM. */
  toJSON(): { name: string; type: DatabaseType; status: ConnectionStatus; critical: boolean; target: string; tags: Readonly<Record<string, string>> } {
    return { name: this.name, type: this.type, status: this.book.status, critical: this.critical, target: this.target.display, tags: this.tags };
  }

  /** What `console.log`, `util.inspect` and Nest's `Logger` show: the same summary (the MikroORM instance inside holds the password). */
  [inspect.custom](_depth: number, options: InspectOptions): string {
    return `DbConnection ${inspect(this.toJSON(), options)}`;
  }

  /** Subscribes to pool and health events (used by metrics and tracing). */
  on<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): () => void {
    return this.book.on(event, listener);
  }

  /**
   * Closes the pool. New work is refused at once; a running ping or reconnect settles first; connections lent out
   * (in-flight queries, open transactions) get up to `drainMs` (0 = no wait) to come back, then are torn down.
   * Idempotent: later calls return the first call's promise.
   * @internal
   */
  close(options: { drainMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(options.drainMs ?? 0);
    return this.closing;
  }

  private async shutdown(drainMs: number): Promise<void> {
    const started = performance.now();
    this.book.set('closed');
    await this.pool.stop();
    // Connects and pings in flight are the connection's own work: cancelled at once, not waited for.
    this.stopping.abort();
    await Promise.allSettled([...this.probe.inFlight(), ...this.inFlightConnects]);
    // A macrotask turn: the acquires those cancelled pings left in the pool's queue are gone once it has passed.
    await new Promise((resolve) => setImmediate(resolve));
    const session = this.pool.session;
    if (session) {
      const detach = () => {
        this.pool.detach();
        this.refusing = true;
      };
      await drainAndClose(session, { drainMs, startedAt: started, detach, logger: this.logger, redact: this.redact });
    }
    this.refusing = true;
    this.book.removeAllListeners();
  }

  /** Once the pool is being torn down, the error every access path gets; undefined before. */
  private closedError(cause?: unknown): ConnectionClosedError | undefined {
    return this.refusing ? new ConnectionClosedError(this.name, 'connection', cause === undefined ? undefined : { cause }) : undefined;
  }

  /**
   * An error's message as one line, with what to do about it when the driver knows (a pooler refusing a setting), and
   * this connection's secrets masked.
   * @internal
   */
  describeError(error: unknown): string {
    const advice = this.driver.explainError?.(error, this.config);
    return this.redact(advice ? `${errorMessage(error)}: ${advice}` : errorMessage(error));
  }

  /**
   * Masks this connection's secrets in a text.
   * @internal
   */
  redactSecrets(text: string): string {
    return this.redact(text);
  }

  /** Runs `fn` in a span when tracing is on; `outcome` marks a result that is a failure without a throw. */
  private traced<T>(name: string, fn: () => Promise<T>, outcome?: (result: T) => SpanOutcome): Promise<T> {
    return this.tracing ? this.tracing.span(name, fn, (error) => this.redact(errorMessage(error)), outcome) : fn();
  }

  /** Opens the driver's session (the pool) on `orm`, for the LazyPool. */
  private openDriverSession(orm: MikroORM): Promise<DriverSession> {
    return this.driver.open(orm, {
      config: this.config,
      observer: this.counters,
      queries: this.queries,
      closedError: (cause) => this.closedError(cause),
      describeError: (error) => this.describeError(error),
      warn: (message) => this.warnOnce(message),
    });
  }

  /** A dependency lacks a shape an adapter needs: said once per connection, however often the pool is reopened. */
  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.logger.warn(message);
  }

  private recordSuccess(): void {
    this.book.recordSuccess();
    this.pool.startIdleTimer();
  }

  private recordFailure(error: unknown): string {
    const message = this.describeError(error);
    this.book.recordFailure(message);
    return message;
  }

  private emit<E extends keyof ConnectionEvents>(event: E, ...args: ConnectionEvents[E]): void {
    this.book.emit(event, ...args);
  }

  private assertOpen(): void {
    this.book.assertOpen();
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
