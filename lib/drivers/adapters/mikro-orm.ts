import { type EntityManager, MikroORM, type Options, RequestContext, TransactionContext } from '@mikro-orm/core';

/**
 * MikroORM. `RequestContext.create()` (public) forks every connection's EntityManager on every request — a thousand
 * forks per request with many tenants — so requests run in its private `storage` with forks made on first use.
 */

/** Runs `next` in a request context whose EntityManagers come from `forks` (a Map that may fork lazily). */
export type RequestScope = (forks: Map<string, EntityManager>, next: () => void) => void;

/** The request scope, or the reason the lazy one cannot be had (then every EntityManager is forked per request). */
export function requestScope(): RequestScope | string {
  const storage = (RequestContext as unknown as { storage?: { run?: unknown } }).storage;
  if (typeof storage?.run !== 'function') {
    return 'this MikroORM version keeps its request context elsewhere: every connection\'s EntityManager is forked on every request';
  }
  const run = storage.run as (context: RequestContext, next: () => void) => void;
  return (forks, next) => run.call(storage, new RequestContext(forks), next);
}

/** The transaction MikroORM is running on this connection (`contextName`) in the current async context, if any. */
export function currentTransaction(contextName: string, em: EntityManager): unknown {
  const inTransaction = TransactionContext.getEntityManager(contextName) ?? em.getContext(false);
  return inTransaction?.getTransactionContext();
}

type Convert = (exception: Error) => Error;

/**
 * MikroORM turns every error an EntityManager call meets into a `DriverException` that copies the message but not the
 * class. `ours` (this library's errors: `AcquireTimeoutError`, `ConnectionClosedError`) pass through as they are, and
 * once the connection is closed whatever the driver throws becomes `closedError`'s error. The converter belongs to
 * this ORM instance's platform alone (`getExceptionConverter()` is public; replacing its method is not), so other
 * MikroORM instances are untouched; without one, EntityManager errors stay MikroORM's (said once by `warn`).
 */
export function keepOurErrorsThroughTheOrm(orm: MikroORM, ours: (error: unknown) => boolean, closedError: (cause: unknown) => Error | undefined, warn: (message: string) => void): void {
  const converter = orm.em.getDriver().getPlatform().getExceptionConverter() as unknown as { convertException?: Convert };
  if (typeof converter?.convertException !== 'function') {
    warn("this MikroORM version converts errors elsewhere: the EntityManager reports pool timeouts and closed connections as MikroORM's own errors");
    return;
  }
  const convert: Convert = converter.convertException.bind(converter);
  converter.convertException = (exception) => (ours(exception) ? exception : (closedError(exception) ?? convert(exception)));
}

/**
 * Opens MikroORM's connection on `driverOptions` of a session (its pool's options, a Kysely dialect, a MongoClient).
 * MikroORM 7's connection copies `driverOptions` from the config when the ORM is built and only falls back to the
 * config once closed, so a `config.set()` before a plain `connect()` was ignored on the first open: `reconnect()`
 * (public: close, then connect) drops that copy first, and closing a connection never opened is a no-op.
 */
export async function connectWithDriverOptions(orm: MikroORM, driverOptions: unknown): Promise<void> {
  orm.config.set('driverOptions', driverOptions as never);
  await orm.em.getDriver().reconnect();
}

/**
 * Builds a MikroORM instance synchronously, for a `lazy` connection whose ORM is built on first use (the synchronous
 * `em` getter may be that use). MikroORM 6 has `initSync`; MikroORM 7's constructor discovers synchronously. Both
 * need entities given as classes or schemas (folder discovery is asynchronous).
 */
export function initOrmSync(options: Options): MikroORM {
  const Orm = MikroORM as unknown as { initSync?: (o: Options) => MikroORM };
  if (typeof Orm.initSync === 'function') return Orm.initSync(options);
  return new MikroORM({ ...options, discovery: { ...options.discovery, skipSyncDiscovery: false } } as Options);
}

/**
 * Runs `beforeQuery` before MikroORM's connection runs anything: every query of every EntityManager of this ORM
 * (injected, forked, a request's) calls the connection's `ensureConnection()` first (public: MikroORM's own lazy
 * connect), and MikroORM 6 starts a transaction through `begin()` without it. Left alone, MikroORM would connect an
 * idle connection by itself, on options no session watches (MikroORM 6 never even marks a closed connection
 * disconnected).
 */
export function openBeforeQueries(orm: MikroORM, beforeQuery: () => Promise<void>, warn: (message: string) => void): void {
  const connection = orm.em.getDriver().getConnection() as unknown as Record<string, unknown>;
  for (const method of ['ensureConnection', 'begin'] as const) {
    const original = connection[method];
    if (typeof original !== 'function') {
      warn(`this MikroORM version has no connection.${method}(): an idle pool is not reopened by the EntityManager itself`);
      continue;
    }
    connection[method] = async function (this: unknown, ...args: unknown[]) {
      await beforeQuery();
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
}
