import { copyConnectionConfig } from '../config/hidden-secrets';
import { inspect, type InspectOptions } from 'node:util';
import { Logger } from '@nestjs/common';
import type { CheckedConfigInput, ConnectionConfig, ConnectionOptionsInput, DbManagerConfig, DbManagerConfigInput, DefaultOrm } from '../config/config.types';
import { interpolateEnv, isPlainObject } from '../config/env-interpolation';
import { parseConnection, parseDbManagerConfig } from '../config/parse-config';
import type { ConnectionHealth, ConnectionStats } from '../vocabulary';
import { DbConnection } from '../connection/db-connection';
import type { DefaultDatabase, DefaultOrmOf } from '../default-database';
import { type FeatureEntity, withFeatureEntities } from '../feature-entities';
import {
  type ConfigIssue,
  type ConnectAbortReason,
  ConnectionAbortedError,
  ConnectionClosedError,
  ConnectionFailedError,
  ConnectionNotFoundError,
  DbManagerConfigError,
  DriverNotInstalledError,
  NoDefaultConnectionError,
} from '../errors';
import { HealthLoop } from './health-loop';
import { RetryAbortedError, RetryGaveUpError, type RetryPolicy, retryWithBackoff, sleep } from './retry';

/** What `DbManager.stats()` returns. */
export interface DbManagerStats {
  totalConnections: number;
  healthyCount: number;
  unhealthyCount: number;
  connections: Record<string, ConnectionStats>;
}

/** What the manager takes beside its configuration. */
export interface DbManagerOptions {
  /** Entities `DbManagerModule.forFeature()` registered for a connection: added to its MikroORM discovery. */
  featureEntities?: (connectionName: string) => readonly FeatureEntity[];
}

/** Options of `DbManager.create()`. */
export interface DbManagerCreateOptions {
  /** Aborting it stops startup's retries at once: `create()` rejects with a `ConnectionAbortedError` and leaves nothing open. */
  signal?: AbortSignal;
}

/** Listeners told when connections come and go (metrics and tracing use it). */
export interface ConnectionLifecycleListener {
  added?(connection: DbConnection): void;
  removed?(connection: DbConnection): void;
}

/**
 * Owns every named connection: connects them in parallel with retries, hands them out by name, keeps them healthy
 * in the background, and closes them all on shutdown.
 */
export class DbManager<O extends DefaultOrm = DefaultOrm> {
  private readonly connections = new Map<string, DbConnection>();
  private defaultName?: string;
  private readonly loop: HealthLoop;
  private readonly listeners = new Set<ConnectionLifecycleListener>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** `add()` calls still connecting, by name: the name is taken, and remove() or close() can stop them. */
  private readonly adding = new Map<string, { stop: AbortController; done: Promise<unknown> }>();
  /** Aborted by close(): stops every connect still retrying (startup's and add()'s). */
  private readonly stopping = new AbortController();
  private closing?: Promise<void>;
  private readonly logger = new Logger('DbManager');

  /** Use `DbManager.create()` (scripts) or the Nest module; the constructor connects nothing. */
  constructor(
    readonly config: DbManagerConfig,
    private readonly options: DbManagerOptions = {},
  ) {
    this.defaultName = config.defaultConnection ?? Object.keys(config.connections)[0];
    this.loop = new HealthLoop(() => [...this.connections.values()], {
      intervalMs: config.healthCheckInterval,
      autoReconnect: config.enableAutoReconnect,
      retry: this.retryPolicy,
    });
  }

  /**
   * Validates the configuration, connects every connection and starts the health loop: for scripts outside Nest.
   * Aborting `signal` stops the retries at once; the promise then rejects with a `ConnectionAbortedError`.
   */
  static async create<const C extends DbManagerConfigInput>(config: C & CheckedConfigInput<NoInfer<C>>, options: DbManagerCreateOptions = {}): Promise<DbManager<DefaultOrmOf<C>>> {
    const manager = new DbManager<DefaultOrmOf<C>>(parseDbManagerConfig(config));
    await manager.connectAll(options.signal);
    return manager;
  }

  private get retryPolicy(): RetryPolicy {
    return { attempts: this.config.retryAttempts, baseDelayMs: this.config.retryDelay, maxDelayMs: this.config.retryMaxDelay };
  }

  /**
   * Connects all configured connections in parallel, each with its own retry. A critical connection that fails stops
   * startup with one error, after closing what was opened; a non-critical one starts down and heals in the background.
   * Aborting `signal` (or close()) stops the retries at once.
   * @internal
   */
  async connectAll(signal?: AbortSignal): Promise<void> {
    const stop = signal ? AbortSignal.any([signal, this.stopping.signal]) : this.stopping.signal;
    // Built in parallel but registered in configuration order, so names() and the error listings follow the config.
    const created = await Promise.allSettled(Object.values(this.config.connections).map((config) => this.createConnection(config)));
    for (const result of created) if (result.status === 'fulfilled') this.register(result.value);
    const results = created.some((r) => r.status === 'rejected') ? created : await Promise.allSettled(this.all().map((c) => this.connectWithRetry(c, stop)));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (failures.length) {
      await this.close();
      if (failures.length > 1) for (const failure of failures.slice(1)) this.logger.error(failure.message);
      throw failures[0];
    }
    this.loop.start();
  }

  /** Builds a connection's MikroORM instance, with the entities forFeature registered for it. */
  private createConnection(config: ConnectionConfig): Promise<DbConnection> {
    const entities = this.options.featureEntities?.(config.name) ?? [];
    return DbConnection.create(entities.length ? copyConnectionConfig(config, { mikroOrm: withFeatureEntities(config.mikroOrm, entities) }) : config);
  }

  /**
   * Connects with the startup retry policy (one attempt for a critical: false connection); rejects for critical
   * failures, and for every connection when `signal` aborts.
   */
  private async connectWithRetry(connection: DbConnection, signal: AbortSignal): Promise<void> {
    // Lazy: no pool until first use, nothing to verify now.
    if (connection.status === 'idle') return;
    const attempts = connection.critical ? this.config.retryAttempts : 1;
    const isPermanent = (error: unknown) => error instanceof DriverNotInstalledError || connection.isPermanentError(error);
    try {
      await retryWithBackoff(() => connection.connect(), { ...this.retryPolicy, attempts }, {
        isPermanent,
        signal,
        onRetry: (error, index, delay) =>
          this.logger.warn(`"${connection.name}" attempt ${index + 1} failed (${connection.describeError(error)}); retrying in ${delay} ms`),
      });
      this.logger.log(`"${connection.name}" connected (${connection.target.display})`);
    } catch (error) {
      if (error instanceof RetryAbortedError) {
        const why = abortReason(error.reason);
        const last = error.lastError === undefined ? undefined : connection.describeError(error.lastError);
        // The cause is the last real connect error; before any attempt ended, the caller's own abort reason.
        const cause = error.lastError ?? (why === 'signal' ? error.reason : undefined);
        throw new ConnectionAbortedError(connection.name, connection.target.display, why, error.attemptsMade, cause, last);
      }
      const made = error instanceof RetryGaveUpError ? error.attemptsMade : 1;
      const cause = error instanceof RetryGaveUpError ? error.lastError : error;
      const reason = connection.describeError(cause);
      const failure = new ConnectionFailedError(connection.name, connection.target.display, made, cause, reason, !isPermanent(cause));
      if (connection.critical) throw failure;
      this.logger.warn(
        `Connection "${connection.name}" (${connection.target.display}) failed after ${made} attempt${made === 1 ? '' : 's'}: ${reason}; ` +
          'starting without it (critical: false), retrying in the background',
      );
    }
  }

  private register(connection: DbConnection): void {
    this.connections.set(connection.name, connection);
    for (const listener of this.listeners) listener.added?.(connection);
  }

  /** The connection with this name. */
  get(name: string): DbConnection {
    const connection = this.connections.get(name);
    if (!connection) throw new ConnectionNotFoundError(name, this.names());
    return connection;
  }

  /** True when a connection with this name is registered. */
  has(name: string): boolean {
    return this.connections.has(name);
  }

  /** The default connection (`default_connection`, else the first configured). */
  getDefault(): DbConnection {
    if (!this.defaultName || !this.connections.has(this.defaultName)) throw new NoDefaultConnectionError();
    return this.connections.get(this.defaultName)!;
  }

  /** The name of the default connection, if there is one. */
  get defaultConnectionName(): string | undefined {
    return this.defaultName;
  }

  /** Makes another connection the default for `getDefault()` (what was injected at startup does not move). */
  setDefault(name: string): void {
    this.get(name);
    this.defaultName = name;
  }

  /**
   * The default connection's handle chosen by its `default_orm`: its EntityManager, its Knex, or its native client
   * lender. Typed by `O`: from the config literal with `DbManager.create()`, or declared (`DbManager<'orm'>`).
   */
  getDefaultDatabase(): DefaultDatabase<O> {
    const connection = this.getDefault();
    switch (connection.defaultOrm) {
      case 'kysely':
        return connection.kysely() as DefaultDatabase<O>;
      case 'knex':
        return connection.knex() as DefaultDatabase<O>;
      case 'native':
        return connection.withNativeClient.bind(connection) as DefaultDatabase<O>;
      default:
        return connection.em as DefaultDatabase<O>;
    }
  }

  /** Connection names in configuration (then insertion) order. */
  names(): string[] {
    return [...this.connections.keys()];
  }

  /** Every connection, in order. */
  all(): DbConnection[] {
    return [...this.connections.values()];
  }

  /** Connections whose tags include every given key/value. */
  findByTags(tags: Record<string, string>): DbConnection[] {
    return this.all().filter((c) => Object.entries(tags).every(([k, v]) => c.tags[k] === v));
  }

  /**
   * Adds and connects a connection at runtime (same retry as startup). Resolves when it is usable; with
   * `critical: false` it may resolve down and heal in the background; a `lazy` one resolves at once, idle. A name in use (or being added) is a
   * `DbManagerConfigError`; after close() it is a `ConnectionClosedError`. `remove(name)` or close() while it is
   * still retrying stops it: it then rejects with a `ConnectionAbortedError`.
   */
  async add(name: string, input: ConnectionOptionsInput): Promise<DbConnection> {
    if (this.closing) throw new ConnectionClosedError(name, 'manager');
    if (this.connections.has(name) || this.adding.has(name)) {
      throw new DbManagerConfigError([{ path: `connections.${name}`, message: 'is already registered; remove() it first or pick another name' }], name);
    }
    const issues: ConfigIssue[] = [];
    const raw = isPlainObject(input) ? interpolateEnv(input, process.env, `connections.${name}`, issues) : input;
    const config = parseConnection(name, raw, this.config.poolDefaults, issues, (m) => this.logger.warn(m));
    if (!config || issues.length) throw new DbManagerConfigError(issues, name);
    // The name is taken from here on (synchronously, so a concurrent add() of it is refused above).
    const stop = new AbortController();
    const work = this.open(config, AbortSignal.any([stop.signal, this.stopping.signal]));
    this.adding.set(name, { stop, done: work.catch(() => undefined) });
    this.track(work);
    try {
      const connection = await work;
      this.defaultName ??= name;
      this.loop.watch(connection);
      return connection;
    } finally {
      this.adding.delete(name);
    }
  }

  /** Creates, registers and connects one connection; on failure (or abort) forgets and closes it, then rejects. */
  private async open(config: DbManagerConfig['connections'][string], signal: AbortSignal): Promise<DbConnection> {
    const connection = await this.createConnection(config);
    this.config.connections[config.name] = config;
    this.register(connection);
    try {
      await this.connectWithRetry(connection, signal);
    } catch (error) {
      await this.forget(config.name);
      throw error;
    }
    return connection;
  }

  /**
   * Closes and forgets a connection. Removing the default is refused until another default is set. A connection that
   * `add()` is still connecting is stopped (that `add()` rejects with a `ConnectionAbortedError`).
   */
  async remove(name: string): Promise<void> {
    const pending = this.adding.get(name);
    if (pending) {
      pending.stop.abort(REMOVED);
      await pending.done;
      // Unless it had just connected (too late to stop), the aborted add() has forgotten and closed it.
      if (!this.connections.has(name)) return;
    }
    const connection = this.get(name);
    if (name === this.defaultName && this.connections.size > 1) {
      throw new DbManagerConfigError(
        [{ path: `connections.${name}`, message: 'is the default connection; call setDefault() with another name before removing it' }],
        name,
      );
    }
    await this.track(this.forget(name));
    await connection.close();
  }

  private async forget(name: string): Promise<void> {
    const connection = this.connections.get(name);
    if (!connection) return;
    this.loop.unwatch(name);
    this.connections.delete(name);
    delete this.config.connections[name];
    if (this.defaultName === name) this.defaultName = undefined;
    for (const listener of this.listeners) listener.removed?.(connection);
    await connection.close({ drainMs: this.shutdownBudgetMs });
  }

  /** Pings every connection live, in parallel, each bounded by its own timeout. Never throws. */
  async healthCheck(options: { timeout?: number } = {}): Promise<Record<string, ConnectionHealth>> {
    const all = this.all();
    const results = await Promise.all(all.map((c) => c.healthCheck(options)));
    return Object.fromEntries(all.map((c, i) => [c.name, results[i]]));
  }

  /** Pool figures and health for every connection. */
  stats(): DbManagerStats {
    const connections = Object.fromEntries(this.all().map((c) => [c.name, c.stats()]));
    // Idle is healthy: no pool open on purpose, the next use opens it.
    const healthyCount = Object.values(connections).filter((s) => s.status === 'up' || s.status === 'idle').length;
    return { totalConnections: this.connections.size, healthyCount, unhealthyCount: this.connections.size - healthyCount, connections };
  }

  /**
   * Registers a listener for connections added and removed (called at once for those already there).
   * @internal
   */
    onConnections(listener: ConnectionLifecycleListener): () => void {
    this.listeners.add(listener);
    for (const connection of this.connections.values()) listener.added?.(connection);
    return () => this.listeners.delete(listener);
  }

  /**
   * Keeps shutdown waiting for `work` (up to shutdown_timeout).
   * @internal
   */
    track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work)).catch(() => undefined);
    return work;
  }

  /**
   * Stops the health loop, then waits up to shutdown_timeout for tracked work and for every pool's in-flight queries
   * (connections lent out) to finish, then closes every pool (tearing down what is still in use).
   * Idempotent: a second call returns the first call's promise.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const deadline = performance.now() + this.shutdownBudgetMs;
      const left = () => Math.max(0, deadline - performance.now());
      // Connects still retrying (startup's, add()'s) stop at once: they would only be torn down.
      this.stopping.abort(CLOSED);
      // The loop starts nothing new from here; a reconnect attempt it has under way is the connection's own ping,
      // which closing the connection cancels at once (awaited first, it would hold close() for health_check_timeout).
      const loopStopped = this.loop.stop();
      if (this.inFlight.size) {
        const settled = Promise.allSettled([...this.inFlight]);
        const budget = new AbortController();
        await (Number.isFinite(deadline) ? Promise.race([settled, sleep(left(), budget.signal)]) : settled);
        budget.abort();
      }
      const all = this.all();
      // Each pool gets what is left of shutdown_timeout for its in-flight queries, then is closed.
      await Promise.allSettled(all.map((c) => c.close({ drainMs: left() })));
      await loopStopped;
      for (const connection of all) for (const listener of this.listeners) listener.removed?.(connection);
      this.connections.clear();
      this.listeners.clear();
    })();
    return this.closing;
  }

  /** shutdown_timeout in ms; 0 disables the bound (wait for in-flight work however long it takes). */
  private get shutdownBudgetMs(): number {
    return this.config.shutdownTimeout || Number.POSITIVE_INFINITY;
  }

  /** What `JSON.stringify` and JSON loggers show: each connection's summary, never a credential. */
  toJSON(): { defaultConnection?: string; closed: boolean; connections: Array<ReturnType<DbConnection['toJSON']>> } {
    return { defaultConnection: this.defaultName, closed: this.closed, connections: this.all().map((c) => c.toJSON()) };
  }

  /** What `console.log`, `util.inspect` and Nest's `Logger` show: the same summary. */
  [inspect.custom](_depth: number, options: InspectOptions): string {
    return `DbManager ${inspect(this.toJSON(), options)}`;
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }
}

/** Abort reasons of the manager's own signals; any other reason is the caller's signal to create(). */
const REMOVED = Symbol('removed');
const CLOSED = Symbol('closed');

function abortReason(reason: unknown): ConnectAbortReason {
  if (reason === REMOVED) return 'removed';
  if (reason === CLOSED) return 'closed';
  return 'signal';
}

