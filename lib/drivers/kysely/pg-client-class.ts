import { AsyncLocalStorage } from 'node:async_hooks';
import type { QueryListener } from '../../vocabulary';
import { isTransactionControl } from '../adapters/kysely';
import { watchQueryMethod } from '../native-watch';

/** node-postgres' `Client` class, as far as subclassing it goes. */
export type PgClientClass = new (config: Record<string, unknown>) => PgClientLike;

/** A pg client as the session's subclass sees it. */
export interface PgClientLike {
  query(...args: unknown[]): unknown;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** A bound on each statement of one client, as a wrapper of its `query` (query_timeout behind a pooler). */
export type StatementBound = (client: object) => (original: Method) => Method;

/** An answer Kysely accepts for the probe query (it is never sent). */
const NOT_SENT = Object.freeze({ rows: [], rowCount: 0, command: 'SELECT', fields: [] });

/**
 * The pg `Client` subclass one PostgreSQL pool is built with (pg-pool's public `Client` option): every statement the
 * EntityManager, Kysely or a lent native client runs passes through its `query`, so
 * - a transaction's client can be found: Kysely wraps it privately, so `identify` runs a probe through the
 *   transaction's connection, which this subclass answers without sending and records as that client;
 * - with tracing or query logging on, each statement reaches `queries` (off, a counter check is all that runs);
 * - connect_timeout bounds its own connect, apart from the pool's wait for a client (acquire_timeout);
 * - with `bound`, each statement is bounded from the client side (behind a pooler that refuses statement_timeout).
 */
export function sessionClientClass(Base: PgClientClass, connectTimeoutMs: number, queries: QueryListener | undefined, bound?: StatementBound) {
  const probe = new AsyncLocalStorage<{ client?: PgClientLike }>();
  /** Probes under way: while there are none, a query does not look up the probe's async context at all. */
  let probing = 0;
  const watch = queries ? watchQueryMethod(queries, true) : undefined;
  const baseQuery = Base.prototype.query as (this: PgClientLike, ...args: unknown[]) => unknown;

  class SessionClient extends Base {
    /** This client's `query` as sent: pg's own, or bounded per statement. */
    readonly #send: Method;

    constructor(config: Record<string, unknown>) {
      // pg-pool keeps the password non-enumerable (as pg does), so a spread would drop it.
      super(Object.defineProperty({ ...config, connectionTimeoutMillis: connectTimeoutMs }, 'password', { value: config.password, enumerable: false }));
      const send: Method = (...args) => baseQuery.apply(this, args);
      this.#send = bound ? bound(this)(send) : send;
    }

    override query(...args: unknown[]): unknown {
      const slot = probing ? probe.getStore() : undefined;
      if (slot) {
        slot.client = this;
        return Promise.resolve(NOT_SENT);
      }
      if (!watch || isTransactionControl(statementOf(args[0]))) return this.#send(...args);
      return watch(this.#send).apply(this, args);
    }
  }

  return {
    Client: SessionClient as unknown as PgClientClass,
    /** Runs `send` (which makes one query go through a connection) and returns the client it reached. */
    async identify(send: () => Promise<unknown>): Promise<PgClientLike | undefined> {
      const slot: { client?: PgClientLike } = {};
      probing++;
      try {
        await probe.run(slot, send);
      } finally {
        probing--;
      }
      return slot.client;
    },
    /** A statement on `client` that neither tracing nor logging sees (health pings). */
    quietQuery: (client: PgClientLike, sql: string): Promise<unknown> => baseQuery.call(client, sql) as Promise<unknown>,
  };
}

/** The SQL of a pg `query` call's first argument (a string or a `{ text }` config). */
function statementOf(first: unknown): string {
  if (typeof first === 'string') return first;
  const text = (first as { text?: unknown } | undefined)?.text;
  return typeof text === 'string' ? text : '';
}
