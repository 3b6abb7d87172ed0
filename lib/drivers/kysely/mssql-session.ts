import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import type { MikroORM } from '@mikro-orm/core';
import { AcquireTimeoutError } from '../../errors';
import type { PoolGauges, QueryListener } from '../../vocabulary';
import { connectWithDriverOptions, currentTransaction } from '../adapters/mikro-orm';
import { kyselyOf, transactionConnectionOf } from '../adapters/kysely';
import { missingInternals, idleTrimmer, type TarnPool } from '../adapters/tarn';
import { closeTedious, closeTediousAndWait, isClosed, TlsWitness, type TediousConnection, watchRequests } from '../adapters/tedious';
import type { DriverSession, SessionContext, TornDown } from '../driver';
import { CreateRetries } from '../knex/create-retries';
import { KnexPing } from '../knex/ping';
import { FOREVER } from '../pool-timing';
import { PoolWatch } from '../knex/pool-watch';

const noop = (): void => undefined;

/** What the SQL Server driver file gives a session on MikroORM 7. */
export interface MssqlSettings {
  /** tedious' connection config (server, authentication, options): the user's driver options, ours on top. */
  connectionConfig(user: Record<string, unknown>): Record<string, unknown>;
  /** True for connect errors a retry cannot fix (the driver's own rule). */
  isPermanentError(error: unknown): boolean;
  /** The sslmode that requires TLS (a connection without it is refused), or undefined when plain text is allowed. */
  tlsRequiredBy?: string;
}

/** A Kysely `DatabaseConnection` of the SQL Server dialect: what the pool holds (it wraps one tedious connection privately). */
type KyselyConnection = object;

/** The slice of Kysely's `MssqlDriver` the session uses. */
interface KyselyDriver {
  acquireConnection(options?: unknown): Promise<KyselyConnection>;
  releaseConnection(connection: KyselyConnection): Promise<void>;
  destroy(): Promise<void>;
}

type TarnPoolClass = new (options: Record<string, unknown>) => TarnPool<KyselyConnection>;
type TediousConnectionClass = new (config: Record<string, unknown>) => TediousConnection;

/** The packages exactly as @mikro-orm/mssql resolves them: Kysely's dialect, tarn (its pool) and tedious. */
interface MssqlModules {
  MssqlDialect: new (config: Record<string, unknown>) => { createDriver(): KyselyDriver };
  Tarn: { Pool: TarnPoolClass; TimeoutError: new () => Error };
  Tedious: Record<string, unknown> & { Connection: TediousConnectionClass; Request: new (sql: string, callback: (error?: Error | null) => void) => object };
}

function mssqlModules(): MssqlModules {
  const fromMikroOrm = createRequire(require.resolve('@mikro-orm/mssql'));
  return {
    MssqlDialect: (fromMikroOrm('kysely') as Pick<MssqlModules, 'MssqlDialect'>).MssqlDialect,
    Tarn: fromMikroOrm('tarn') as MssqlModules['Tarn'],
    Tedious: fromMikroOrm('tedious') as MssqlModules['Tedious'],
  };
}

/** A refused connection's error: tedious' own code for encryption trouble, which the driver treats as permanent. */
class TlsRefusedError extends Error {
  override name = 'TlsRefusedError';
  readonly code = 'EENCRYPT';
}

/**
 * The tarn pool of a SQL Server connection on MikroORM 7, shared by the EntityManager, `kysely()` and the native tedious
 * connection. MikroORM takes a Kysely dialect through `driverOptions`: this session hands it Kysely's own SQL Server
 * dialect built on the session's pieces, all public in Kysely's dialect config — a tarn `Pool` subclass (so the session
 * holds the pool and listens to its events), tedious with a `connectionFactory` (so the session sees each tedious
 * connection before it connects: TLS check, query reporting) and an acquire that refuses when closed and names its
 * timeouts.
 */
export class MssqlSession implements DriverSession {
  private pool?: TarnPool<KyselyConnection>;
  private driver?: KyselyDriver;
  /** The pool's destroy, once begun (Kysely skips it when no query ever went through Kysely: close() then calls it). */
  private destroyed?: Promise<void>;
  private creates?: CreateRetries;
  private readonly watch: PoolWatch;
  /** The bounded health ping (tarn's, as on MikroORM 6), once the pool exists. */
  private pinger?: KnexPing;
  private readonly tls = new TlsWitness();
  /** Each pooled Kysely connection's tedious connection (Kysely keeps it private). */
  private readonly tediousOf = new WeakMap<KyselyConnection, TediousConnection>();
  private readonly bornAt = new WeakMap<KyselyConnection, number>();
  /** tedious connections still connecting (shutdown's last resort closes them). */
  private readonly connecting = new Set<TediousConnection>();
  /** Lets the connection factory tell the pool's create which tedious connection it made. */
  private readonly createScope = new AsyncLocalStorage<{ connection?: TediousConnection }>();
  /** Set while the session runs a statement of its own (health pings), which queries must not report. */
  private readonly quiet = new AsyncLocalStorage<true>();
  private readonly Connection: TediousConnectionClass;
  private readonly tediousConfig: Record<string, unknown>;
  private readonly limits: { max: number; maxIdle: number; idleMs: number; lifetimeMs: number };

  private constructor(
    private readonly orm: MikroORM,
    private readonly context: SessionContext,
    private readonly settings: MssqlSettings,
    private readonly modules: MssqlModules,
  ) {
    const { config } = context;
    this.limits = { max: config.maxOpenConns, maxIdle: config.maxIdleConns, idleMs: config.connMaxIdleTime || FOREVER, lifetimeMs: config.connMaxLifetime };
    this.watch = new PoolWatch(context.observer, this.limits);
    this.tediousConfig = settings.connectionConfig((config.mikroOrm.driverOptions ?? {}) as Record<string, unknown>);
    this.Connection = reportingConnectionClass(modules.Tedious.Connection, context.queries, this.quiet);
  }

  static async open(orm: MikroORM, context: SessionContext, settings: MssqlSettings): Promise<MssqlSession> {
    const session = new MssqlSession(orm, context, settings, mssqlModules());
    await connectWithDriverOptions(orm, session.dialect());
    if (!session.pool || !session.driver) throw new Error('MikroORM did not build its Kysely client on the dialect given in driverOptions: this @mikro-orm/mssql version is not supported');
    return session;
  }

  /** Kysely's SQL Server dialect on this session's pool, tedious factory and acquire. */
  private dialect(): object {
    const session = this;
    const { Tarn, Tedious, MssqlDialect } = this.modules;
    const userHooks = this.orm.config as unknown as { get(key: string): unknown };
    const onCreate = userHooks.get('onCreateConnection') as ((connection: unknown) => Promise<void>) | undefined;
    const onReserve = userHooks.get('onReserveConnection') as ((connection: unknown) => Promise<void>) | undefined;

    class SessionPool extends Tarn.Pool {
      constructor(options: Record<string, unknown>) {
        const create = options.create as () => Promise<KyselyConnection>;
        // Kysely's own validate (a `select 1` round trip on every acquire) is off; this one costs nothing.
        super({ ...options, create: () => session.create(create), validate: (connection: KyselyConnection) => session.usable(connection) });
        session.adopt(this);
      }
    }

    class SessionDialect extends MssqlDialect {
      override createDriver(): KyselyDriver {
        const driver = super.createDriver();
        const acquire = driver.acquireConnection.bind(driver);
        driver.acquireConnection = async (options) => {
          const connection = await session.acquire(() => acquire(options));
          await onReserve?.(connection);
          return connection;
        };
        const destroy = driver.destroy.bind(driver);
        driver.destroy = () => (session.destroyed ??= destroy());
        session.driver = driver;
        return driver;
      }
    }

    return new SessionDialect({
      validateConnections: false,
      tarn: { Pool: SessionPool, options: this.tarnOptions() },
      tedious: {
        ...Tedious,
        connectionFactory: async () => {
          const connection = this.newConnection();
          const slot = this.createScope.getStore();
          if (slot) slot.connection = connection;
          await onCreate?.(connection);
          return connection;
        },
      },
    });
  }

  /** tarn's options (Kysely adds create, destroy and validate). */
  private tarnOptions(): Record<string, unknown> {
    const { config } = this.context;
    const { max, idleMs } = this.limits;
    return {
      min: 0,
      max,
      idleTimeoutMillis: idleMs,
      // Idle connections close between idle time and idle time + reap interval.
      reapIntervalMillis: Math.max(50, Math.min(1_000, Math.floor(idleMs / 4))),
      acquireTimeoutMillis: config.acquireTimeout || FOREVER,
      createTimeoutMillis: config.connectTimeout ? config.connectTimeout + 1_000 : FOREVER,
      // A failed connect does not fail a waiting caller: the pool retries with backoff (CreateRetries) while callers
      // wait up to acquire_timeout, and a permanent error fails them all at once.
      propagateCreateError: false,
    };
  }

  /** Starts watching the pool Kysely just built from this session's options. */
  private adopt(pool: TarnPool<KyselyConnection>): void {
    this.pool = pool;
    for (const missing of missingInternals(pool)) this.context.warn(missing);
    this.watch.listen(pool, idleTrimmer(pool));
    this.creates = new CreateRetries(pool, this.settings.isPermanentError);
    this.pinger = new KnexPing(
      {
        query: (connection, { sql }) => this.quietly(this.tediousOfAny(connection), sql),
        acquireRawConnection: () => this.connectOwn(),
        destroyRawConnection: (connection) => closeTediousAndWait(connection),
      },
      pool,
      { destroySocket: (connection) => closeTedious(this.tediousOfAny(connection)) },
      (connection) => this.watch.ledger.writeOff(connection),
    );
  }

  /** A tedious connection of this session (not connected yet): TLS is watched from its first byte. */
  private newConnection(): TediousConnection {
    const connection = new this.Connection(this.tediousConfig);
    this.tls.listen(connection);
    this.connecting.add(connection);
    const settled = () => this.connecting.delete(connection);
    connection.once('connect', settled);
    connection.once('end', settled);
    return connection;
  }

  /** The pool's create: Kysely's (which calls our factory, then connects), then the TLS check. */
  private async create(kyselyCreate: () => Promise<KyselyConnection>): Promise<KyselyConnection> {
    const slot: { connection?: TediousConnection } = {};
    const connection = await this.createScope.run(slot, kyselyCreate);
    const tedious = slot.connection;
    if (!tedious) {
      // Without the tedious connection there is no TLS check and no native client: refuse rather than run unchecked.
      throw new Error('this kysely version does not build SQL Server connections through the tedious connectionFactory: install the kysely that @mikro-orm/mssql depends on');
    }
    this.refuseWithoutTls(tedious);
    this.tediousOf.set(connection, tedious);
    this.bornAt.set(connection, performance.now());
    this.watch.created(connection);
    tedious.on('error', (error) => this.context.observer.connectionError(error));
    return connection;
  }

  /** tedious with encrypt: true goes on in plain text when the server answers "encryption not supported": refuse that. */
  private refuseWithoutTls(connection: TediousConnection): void {
    const mode = this.settings.tlsRequiredBy;
    if (!mode || this.tls.sawTls(connection) || (this.tediousConfig.options as { encrypt?: unknown })?.encrypt === 'strict') return;
    closeTedious(connection);
    throw new TlsRefusedError(`sslmode is "${mode}" but the server does not support encryption; use sslmode: disable to connect without TLS`);
  }

  /** False for a connection the pool must not lend: written off, over its lifetime, or closed by the server. */
  private usable(connection: KyselyConnection): boolean {
    const tedious = this.tediousOf.get(connection);
    const born = this.bornAt.get(connection) ?? 0;
    const expired = this.limits.lifetimeMs > 0 && performance.now() - born >= this.limits.lifetimeMs;
    return this.watch.usable(connection) && !expired && !!tedious && !isClosed(tedious);
  }

  /**
   * Every acquire (EntityManager, Kysely, native client): a closed connection refuses with its ConnectionClosedError;
   * a pool timeout becomes an AcquireTimeoutError naming the connect failure that kept the pool from growing.
   */
  private async acquire(acquire: () => Promise<KyselyConnection>): Promise<KyselyConnection> {
    const { config } = this.context;
    const refused = this.context.closedError();
    if (refused) throw refused;
    try {
      return await acquire();
    } catch (error) {
      const closed = this.context.closedError(error);
      if (closed) throw closed;
      if (!(error instanceof this.modules.Tarn.TimeoutError)) throw error;
      const cause = this.creates?.lastFailure();
      throw new AcquireTimeoutError(config.name, config.acquireTimeout, this.limits.max, cause === undefined ? undefined : { error: cause, message: this.context.describeError(cause) });
    }
  }

  /** A connection for the ping alone, outside the pool (TLS checked as for pooled ones). */
  private async connectOwn(): Promise<TediousConnection> {
    const connection = this.newConnection();
    // Errors after connect go to the ping's request; without a listener an `error` event would crash the process.
    connection.on('error', noop);
    await new Promise<void>((resolve, reject) => connection.connect((error) => (error ? reject(error) : resolve())));
    this.refuseWithoutTls(connection);
    return connection;
  }

  private tediousOfAny(connection: object): TediousConnection {
    return this.tediousOf.get(connection) ?? (connection as TediousConnection);
  }

  /** Runs one statement on a tedious connection, unreported (health pings stay out of traces and logs). */
  private quietly(connection: TediousConnection, sql: string): Promise<unknown> {
    const { Request } = this.modules.Tedious;
    return this.quiet.run(true, () => new Promise((resolve, reject) => (connection as unknown as { execSql(r: object): void }).execSql(new Request(sql, (error) => (error ? reject(error) : resolve(undefined))))));
  }

  gauges(): PoolGauges {
    return this.watch.gauges();
  }

  ping(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.pinger!.run(timeoutMs, signal);
  }

  kysely(): unknown {
    return kyselyOf(this.orm);
  }

  /**
   * Lends a pooled tedious connection and takes it back after `fn`. Inside `em.transactional` it lends the
   * transaction's own connection, so a one-connection pool cannot deadlock.
   */
  async withNativeClient<T>(fn: (client: unknown) => Promise<T> | T): Promise<T> {
    const transaction = currentTransaction(this.context.config.name, this.orm.em);
    if (transaction) {
      const connection = await transactionConnectionOf(transaction);
      const tedious = connection && this.tediousOf.get(connection);
      if (!tedious) throw new Error(`Connection "${this.context.config.name}": the transaction's tedious connection could not be found to lend it`);
      return fn(tedious);
    }
    const driver = this.driver!;
    const connection = await driver.acquireConnection();
    try {
      return await fn(this.tediousOf.get(connection));
    } finally {
      await driver.releaseConnection(connection);
    }
  }

  /**
   * Shutdown's last resort once shutdown_timeout is spent: tears down connections still lent out (their requests fail
   * with ECLOSE) and connects still under way, so the pool closes at once.
   */
  abort(): TornDown {
    const pool = this.pool!;
    const lent = this.watch.ledger.inUse();
    for (const connection of lent) {
      this.watch.ledger.writeOff(connection);
      closeTedious(this.tediousOfAny(connection));
      // Taken back now: tarn's destroy() waits for every lent connection; the holder's own release later is a no-op.
      pool.release(connection);
    }
    const connecting = pool.numPendingCreates() + (this.pinger?.connecting ? 1 : 0);
    if (connecting) for (const connection of this.connecting) closeTedious(connection);
    return { inUse: lent.length, connecting };
  }

  /** Closes the pool; a ping's own connection is not the pool's, so closing waits for it too. */
  async close(): Promise<void> {
    try {
      await this.orm.close(true);
    } finally {
      // Kysely destroys its driver only once a query went through it: the EntityManager's and kysely()'s do, but a pool
      // used only by pings and native clients would stay open.
      await this.driver?.destroy();
      await this.pinger?.settled();
    }
  }
}

/**
 * tedious' `Connection` with every request reported to `queries` (tracing, query logging), but for the session's own
 * (run inside `quiet`). Without a listener the class is tedious' own.
 */
function reportingConnectionClass(Base: TediousConnectionClass, queries: QueryListener | undefined, quiet: AsyncLocalStorage<true>): TediousConnectionClass {
  if (!queries) return Base;
  const watch = watchRequests(queries);
  const proto = Base.prototype as unknown as Record<string, (this: unknown, ...args: unknown[]) => unknown>;
  const Reporting = class extends (Base as new (config: Record<string, unknown>) => object) {};
  for (const name of ['execSql', 'execSqlBatch', 'callProcedure']) {
    const original = proto[name];
    if (typeof original !== 'function') continue;
    const watched = watch(original);
    Object.defineProperty(Reporting.prototype, name, {
      value: function (this: unknown, ...args: unknown[]) {
        return (quiet.getStore() ? original : watched).apply(this, args);
      },
      writable: true,
      configurable: true,
    });
  }
  return Reporting as unknown as TediousConnectionClass;
}
