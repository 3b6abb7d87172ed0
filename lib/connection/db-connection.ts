import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { inspect, type InspectOptions } from 'node:util';
import { Logger } from '@nestjs/common';
import { type EntityManager, MikroORM, type Options } from '@mikro-orm/core';
import type { ConnectionConfig, DatabaseType } from '../config/config.types';
import { initOrmSync, keepOurErrorsThroughTheOrm, openBeforeQueries } from '../drivers/adapters/mikro-orm';
import type { DbDriver, DriverSession, OrmDriverClass } from '../drivers/driver';
import { driverFor } from '../drivers/registry';
import { ConnectionClosedError, DbManagerError, NotMongoDatabaseError, NotSqlDatabaseError, QueryBuilderUnavailableError } from '../errors';
import { mikroOrm } from '../mikro-orm-version';
import type { KnexQueryBuilder, KyselyQueryBuilder } from '../query-builders';
import { logConnectionEvents, queryLog } from '../tracing/connection-log';
import { ConnectionTracing, type SpanOutcome } from '../tracing/connection-tracing';
import { combineQueryListeners } from '../tracing/query-listener';
import type { ConnectionEvents, ConnectionHealth, ConnectionStats, ConnectionStatus, ConnectionTarget, PoolGauges, QueryListener } from '../vocabulary';
import { IdlePoolTimer } from './idle-pool-timer';
import { openingHandle } from './opening-handle';
import { PoolCounters } from './pool-counters';
import { errorMessage, secretRedactor } from './redact';

/**
 * One named database connection: a MikroORM instance whose EntityManager, query builder and native client
 * all come from one pool. Status, pool figures and health live here; retries and the health loop are the manager's.
 */
export class DbConnection {
  /** The connection's name (its key in the configuration). */
  readonly name: string;
  /** Its database type. */
  readonly type: DatabaseType;
  /** Tags from the configuration, for `findByTags`. */
  readonly tags: Readonly<Record<string, string>>;
  /** Where it points, for messages and span attributes (password masked). */
  readonly target: ConnectionTarget;

  private currentStatus: ConnectionStatus;
  /** The open pool and everything that depends on it; undefined until the first open succeeds, and while idle. */
  private session?: DriverSession;
  /** The MikroORM instance; a lazy connection's is built on first use. */
  private ormInstance?: MikroORM;
  /** The pool being opened (startup, a reconnect, a first use): concurrent openers share it. */
  private openingPool?: Promise<DriverSession>;
  /** A first use reopening an idle pool: concurrent users share it. */
  private reopening?: Promise<void>;
  /** An idle pool being closed: a use waits for it, then opens a new one. */
  private parking?: Promise<void>;
  /** Closes the pool once unused for idle_pool_timeout; undefined when that is 0. */
  private readonly idleTimer?: IdlePoolTimer;
  /** Handles kysely()/knex()/mongo() give out when the pool may be closed on purpose (lazy, idle_pool_timeout). */
  private handles?: Map<string, unknown>;
  /** Adapter warnings already logged (each once per connection, however often the pool is reopened). */
  private readonly warned = new Set<string>();
  private lastCheck: Date | null = null;
  private lastFailure: string | null = null;
  private reconnectCount = 0;
  private inFlightPing?: Promise<ConnectionHealth>;
  private inFlightReconnect?: Promise<boolean>;
  /** connect() attempts under way (close() cancels them and waits for them to settle). */
  private readonly inFlightConnects = new Set<Promise<void>>();
  /** Aborted by close(): cancels connects and pings in flight. */
  private readonly stopping = new AbortController();
  /** Set once the pool is being torn down: from then on every access path refuses with ConnectionClosedError. */
  private refusing = false;
  /** The causes logged during the current down spell, so a new lasting cause (28P01 after 57P01) is logged once. */
  private downCauses = new Set<string>();
  private closing?: Promise<void>;
  private readonly emitter = new EventEmitter();
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
    this.emitter.setMaxListeners(50);
    this.currentStatus = config.lazy ? 'idle' : 'connecting';
    if (typeof orm === 'function') this.buildOrm = orm;
    else this.adoptOrm(orm);
    if (config.idlePoolTimeout) {
      this.idleTimer = new IdlePoolTimer(config.idlePoolTimeout, () => this.closeIdlePool());
    }
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
    openBeforeQueries(orm, () => this.beforeQuery(), (m) => this.warnOnce(m));
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
    return this.currentStatus;
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
    if (this.mayIdle) return this.handle('sql', 'knex()', (session) => session.knex?.()) as K;
    const session = this.openSession('sql', 'knex()');
    if (!session.knex) throw new QueryBuilderUnavailableError(this.name, 'knex()', mikroOrm().version);
    return session.knex() as K;
  }

  /**
   * The Kysely query builder on this connection's pool: SQL connections on MikroORM 7 (on 6, use `knex()`). Pass your
   * database interface for typed queries: `kysely<Database>().selectFrom('users')…`.
   */
  kysely<DB = any>(): KyselyQueryBuilder<DB> {
    if (this.mayIdle) return this.handle('sql', 'kysely()', (session) => session.kysely?.()) as KyselyQueryBuilder<DB>;
    const session = this.openSession('sql', 'kysely()');
    if (!session.kysely) throw new QueryBuilderUnavailableError(this.name, 'kysely()', mikroOrm().version);
    return session.kysely() as KyselyQueryBuilder<DB>;
  }

  /** The MongoClient (MongoDB only). */
  mongo<M = unknown>(): M {
    if (this.mayIdle) return this.handle('mongo', 'mongo()', (session) => session.mongo?.()) as M;
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
      if (!this.mayIdle) return lend();
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
  async open(): Promise<void> {
    this.assertOpen();
    this.idleTimer?.touch();
    if (this.session && !this.parking) return;
    // Down with no pool (never reached): the first use tries too, as the loop's reconnect does.
    this.reopening ??= this.reopen().finally(() => (this.reopening = undefined));
    return this.reopening;
  }

  private async reopen(): Promise<void> {
    await this.parking;
    if (this.session) return;
    this.assertOpen();
    if (this.currentStatus === 'idle') this.setStatus('connecting');
    await this.connect();
  }

  /** True when the pool may be closed on purpose, so the accessors hand out handles that reopen it. */
  private get mayIdle(): boolean {
    return this.config.lazy || this.config.idlePoolTimeout > 0;
  }

  /** The handle an accessor gives out (one per accessor): forwards to the live object, or opens the pool first. */
  private handle(family: 'sql' | 'mongo', what: 'kysely()' | 'knex()' | 'mongo()', live: (session: DriverSession) => unknown): unknown {
    this.checkFamily(family, what);
    this.assertOpen();
    this.handles ??= new Map();
    let handle = this.handles.get(what);
    if (!handle) {
      const liveObject = () => {
        const session = this.parking ? undefined : this.session;
        if (!session) return undefined;
        const object = live(session);
        if (object === undefined) throw new QueryBuilderUnavailableError(this.name, what as 'kysely()' | 'knex()', mikroOrm().version);
        return object as object;
      };
      // The check a plain accessor makes at once (the other major's builder): made once here too.
      if (this.session) liveObject();
      else if (what !== 'mongo()' && what !== (mikroOrm().major === 6 ? 'knex()' : 'kysely()')) throw new QueryBuilderUnavailableError(this.name, what, mikroOrm().version);
      handle = openingHandle({ live: liveObject, open: () => this.open(), touch: () => this.idleTimer?.touch() });
      this.handles.set(what, handle);
    }
    return handle;
  }

  /** Runs before every query MikroORM's EntityManagers make: counts as use, and opens an idle pool first. */
  private async beforeQuery(): Promise<void> {
    this.idleTimer?.touch();
    // MikroORM's own queries while a session opens the pool (connect-time statements) go straight through.
    if (openingSession.getStore() === this) return;
    if (this.session && !this.parking) return;
    if (this.currentStatus === 'closed') return;
    await this.open();
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
    this.idleTimer?.touch();
    if (!this.session) {
      const pool = family === 'mongo' ? 'the MongoDB client' : 'the connection pool';
      throw new Error(
        `Connection "${this.name}": ${pool} is not open, as the server has not been reachable yet` +
          `${this.lastFailure ? ` (${this.lastFailure})` : ''}. Wait until the connection is up (its status, or healthCheck()).`,
      );
    }
    return this.session;
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
      const session = await this.openPool();
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
  async healthCheck(options: { timeout?: number } = {}): Promise<ConnectionHealth> {
    if (this.currentStatus === 'closed') return { status: 'down', responseTimeMs: 0, error: 'connection is closed' };
    // No pool open on purpose: a ping would open one (and keep it from going idle). Reported up, marked idle.
    if (this.currentStatus === 'idle') return { status: 'up', responseTimeMs: 0, idle: true };
    const timeout = options.timeout ?? this.config.healthCheckTimeout;
    this.inFlightPing ??= this.traced('dbmanager.health_check', () => this.runPing(timeout), healthOutcome).finally(() => (this.inFlightPing = undefined));
    const shared = this.inFlightPing;
    if (!timeout) return shared;
    // A caller who joins a ping started earlier (by the loop, with another bound) still answers within its own timeout.
    let timer: NodeJS.Timeout | undefined;
    const own = new Promise<ConnectionHealth>((resolve) => {
      timer = setTimeout(() => resolve({ status: 'down', responseTimeMs: timeout, error: `ping timed out after ${timeout} ms` }), timeout + OWN_TIMEOUT_SLACK_MS);
      timer.unref();
    });
    try {
      return await Promise.race([shared, own]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async runPing(timeout: number): Promise<ConnectionHealth> {
    const started = performance.now();
    const wasDown = this.currentStatus === 'down';
    let result: ConnectionHealth;
    try {
      const session = await this.openPool();
      await session.ping(timeout, this.stopping.signal);
      result = { status: 'up', responseTimeMs: round(performance.now() - started) };
      this.recordSuccess();
      // Whoever pinged (the loop, a reconnect attempt, /health), coming back from down is one reconnect.
      if (wasDown && this.currentStatus === 'up') this.reconnectCount++;
    } catch (error) {
      result = { status: 'down', responseTimeMs: round(performance.now() - started), error: this.recordFailure(error) };
    }
    this.emit('healthCheck', result);
    return result;
  }

  /**
   * Brings a down connection back: a fresh ping through the pool (which replaces dead connections by itself);
   * the pool is rebuilt only when it is not open. One reconnect at a time; resolves true when up.
   * Each call is one attempt (the `reconnect` event); `stats().reconnects` counts every return from down to up.
   */
  async reconnect(): Promise<boolean> {
    if (this.currentStatus === 'closed') return false;
    if (this.currentStatus === 'idle') return true;
    this.inFlightReconnect ??= this.traced('dbmanager.reconnect', async () => {
      const health = await this.healthCheck();
      const ok = health.status === 'up';
      if (this.currentStatus !== 'closed') this.emit('reconnect', ok ? 'success' : 'failure');
      return ok;
    }, (ok) => ({ attributes: { 'dbmanager.reconnect.result': ok ? 'success' : 'failure' }, error: ok ? undefined : this.lastFailure ?? 'still down' })).finally(
      () => (this.inFlightReconnect = undefined),
    );
    return this.inFlightReconnect;
  }

  /** Live pool gauges. */
  gauges(): PoolGauges {
    if (!this.session || this.currentStatus === 'closed') {
      return { open: 0, inUse: 0, idle: 0, pending: 0, max: this.config.maxOpenConns };
    }
    return this.session.gauges();
  }

  /** Pool figures and health. */
  stats(): ConnectionStats {
    const c = this.counters;
    return {
      name: this.name,
      type: this.type,
      status: this.currentStatus,
      lastHealthCheck: this.lastCheck?.toISOString() ?? null,
      lastError: this.lastFailure,
      ...this.gauges(),
      waitCount: c.waitCount,
      waitDurationMs: round(c.waitDurationMs),
      timeouts: c.timeouts,
      lifetimeClosed: c.lifetimeClosed,
      idleClosed: c.idleClosed,
      maxIdleClosed: c.maxIdleClosed,
      reconnects: this.reconnectCount,
    };
  }

  /** What `JSON.stringify` and JSON loggers show: where it points (password masked), never the config or the ORM. */
  toJSON(): { name: string; type: DatabaseType; status: ConnectionStatus; critical: boolean; target: string; tags: Readonly<Record<string, string>> } {
    return { name: this.name, type: this.type, status: this.currentStatus, critical: this.critical, target: this.target.display, tags: this.tags };
  }

  /** What `console.log`, `util.inspect` and Nest's `Logger` show: the same summary (the MikroORM instance inside holds the password). */
  [inspect.custom](_depth: number, options: InspectOptions): string {
    return `DbConnection ${inspect(this.toJSON(), options)}`;
  }

  /** Subscribes to pool and health events (used by metrics and tracing). */
  on<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): () => void {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return () => this.emitter.off(event, listener as (...args: unknown[]) => void);
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
    this.setStatus('closed');
    this.idleTimer?.stop();
    await this.parking;
    // Connects and pings in flight are the connection's own work: cancelled at once, not waited for.
    this.stopping.abort();
    await Promise.allSettled([this.inFlightPing, this.inFlightReconnect, ...this.inFlightConnects]);
    // A macrotask turn: the acquires those cancelled pings left in the pool's queue are gone once it has passed.
    await new Promise((resolve) => setImmediate(resolve));
    const session = this.session;
    if (session) {
      await this.drain(session, drainMs);
      const { pending } = session.gauges();
      this.session = undefined;
      this.refusing = true;
      const torn = session.abort();
      // Only callers' work is worth a warning; a connect under way is torn down silently.
      if (torn.inUse || pending) {
        const waiting = pending ? `, ${pending} caller(s) still waiting for one` : '';
        this.logger.warn(
          `${torn.inUse} connection(s) still busy after ${Math.round(performance.now() - started)} ms (shutdown_timeout)${waiting}: ` +
            'torn down, their queries fail',
        );
      }
      await session.close().catch((error) => this.logger.warn(`closing the pool failed: ${this.redact(errorMessage(error))}`));
    }
    this.refusing = true;
    this.emitter.removeAllListeners();
  }

  /** Waits until no pooled connection is lent out or waited for, for at most `ms`. */
  private async drain(session: DriverSession, ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    const busy = () => {
      const gauges = session.gauges();
      return gauges.inUse + gauges.pending > 0;
    };
    while (busy()) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      // Keeps the process alive: close() awaits it.
      await new Promise((resolve) => setTimeout(resolve, Math.min(DRAIN_POLL_MS, left)));
    }
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

  /** The open session, opening the pool first when there is none (at startup, after the client could not connect, or idle). */
  private async openPool(): Promise<DriverSession> {
    if (this.session) return this.session;
    this.openingPool ??= this.openNewPool().finally(() => (this.openingPool = undefined));
    return this.openingPool;
  }

  private async openNewPool(): Promise<DriverSession> {
    await this.parking;
    if (this.session) return this.session;
    const orm = this.orm;
    try {
      const session = await openingSession.run(this, () => this.driver.open(orm, {
        config: this.config,
        observer: this.counters,
        queries: this.queries,
        closedError: (cause) => this.closedError(cause),
        describeError: (error) => this.describeError(error),
        warn: (message) => this.warnOnce(message),
      }));
      this.session = session;
      this.idleTimer?.touch();
      return session;
    } catch (error) {
      await orm.close(true).catch(() => undefined);
      throw error;
    }
  }

  /**
   * idle_pool_timeout passed with no use: closes the pool (status `idle`); the next use opens a new one. Not while
   * anything holds or waits for a pooled connection, a ping runs, or the connection is not up.
   * True when done; false when it is not the moment (the timer looks again later).
   */
  private closeIdlePool(): boolean {
    const session = this.session;
    // Not up: nothing to close now; the timer starts again when it is up.
    if (this.currentStatus !== 'up' || !session) return true;
    if (this.parking || this.reopening || this.openingPool) return false;
    const { inUse, pending } = session.gauges();
    if (inUse + pending > 0 || this.inFlightPing || this.inFlightReconnect || this.inFlightConnects.size) return false;
    this.session = undefined;
    this.setStatus('idle');
    this.logger.debug(`pool closed after ${this.config.idlePoolTimeout} ms unused (idle_pool_timeout); the next use reopens it`);
    this.parking = session
      .close()
      .catch((error) => this.logger.warn(`closing the idle pool failed: ${this.redact(errorMessage(error))}`))
      .finally(() => (this.parking = undefined));
    return true;
  }

  /** A dependency lacks a shape an adapter needs: said once per connection, however often the pool is reopened. */
  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.logger.warn(message);
  }

  private recordSuccess(): void {
    this.lastCheck = new Date();
    this.lastFailure = null;
    this.setStatus('up');
    this.idleTimer?.start();
  }

  private recordFailure(error: unknown): string {
    const message = this.describeError(error);
    this.lastCheck = new Date();
    this.lastFailure = message;
    if (this.currentStatus === 'down') this.logNewCause(message);
    else this.setStatus('down', message);
    return message;
  }

  /** While down, each new cause is logged once: the one that lasts (a rotated password) may follow another. */
  private logNewCause(message: string): void {
    if (this.downCauses.has(message) || this.downCauses.size >= MAX_LOGGED_DOWN_CAUSES) return;
    this.downCauses.add(message);
    this.logger.warn(`is still down, now: ${message}`);
  }

  private setStatus(next: ConnectionStatus, error?: string): void {
    const previous = this.currentStatus;
    if (previous === next || previous === 'closed') return;
    this.currentStatus = next;
    if (next === 'down') {
      this.downCauses = new Set([error ?? 'unknown error']);
      this.logger.warn(`is down: ${error ?? 'unknown error'}`);
    } else if (next === 'up' && previous === 'down') this.logger.log('is up again');
    this.emit('status', next, previous, error);
  }

  private emit<E extends keyof ConnectionEvents>(event: E, ...args: ConnectionEvents[E]): void {
    this.emitter.emit(event, ...args);
  }

  private assertOpen(): void {
    if (this.currentStatus === 'closed') throw new ConnectionClosedError(this.name);
  }
}

/** The connection whose session is opening its pool in this async context: MikroORM's queries meanwhile pass. */
const openingSession = new AsyncLocalStorage<DbConnection>();

/** MikroORM's options for a connection: ours over the user's `mikro_orm`, the pool opened later by its session. */
function ormOptions(config: ConnectionConfig, driver: DbDriver, ormDriver: OrmDriverClass): Options {
  const { options } = driver.ormOptions(config);
  const { mikroOrm } = config;
  const logger = new Logger(`DbManager:${config.name}`);
  return {
    ...mikroOrm,
    ...options,
    driver: ormDriver,
    contextName: config.name,
    connect: false,
    ensureDatabase: false,
    discovery: { warnWhenNoEntities: false, ...mikroOrm.discovery },
    // Queries are logged by our own listener with literals masked (MikroORM's own query log would repeat them).
    debug: mikroOrm.debug ?? (config.enableLogging ? ['info'] : false),
    logger: mikroOrm.logger ?? ((message: string) => logger.log(message)),
  } as Options;
}

function healthOutcome(result: ConnectionHealth): SpanOutcome {
  return { attributes: { 'dbmanager.health.status': result.status }, error: result.error };
}

/** Lets a shared ping that started with the same bound answer first (it also records the status). */
const OWN_TIMEOUT_SLACK_MS = 5;

/** How often close() looks whether lent-out connections came back. */
const DRAIN_POLL_MS = 10;

/** Distinct causes logged per down spell at most (a flapping error must not flood the log). */
const MAX_LOGGED_DOWN_CAUSES = 10;

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
