import type { MikroORM } from '@mikro-orm/core';

/**
 * Kysely, MikroORM 7's SQL layer. `em.getConnection().getClient()` is the Kysely instance (public); a transaction's
 * connection is reached through `getExecutor().provideConnection()` (public, used by MikroORM itself), but the native
 * client inside it is private: `identifyTransactionClient` sends one probe through it for the session to recognise.
 */

/** The Kysely instance of a MikroORM 7 SQL connection. */
export function kyselyOf(orm: MikroORM): unknown {
  return (orm.em.getConnection() as unknown as { getClient(): unknown }).getClient();
}

/** The driver client MikroORM 7 built the Kysely dialect on (`getNativeClient()`, public there): a pg pool, the better-sqlite3 database. */
export function nativeClientOf(orm: MikroORM): Promise<unknown> {
  return (orm.em.getConnection() as unknown as { getNativeClient(): Promise<unknown> }).getNativeClient();
}

/** A Kysely transaction as far as reaching its connection goes. */
interface KyselyTransaction {
  getExecutor(): { provideConnection<T>(consumer: (connection: { executeQuery(query: object): Promise<unknown> }) => Promise<T>): Promise<T> };
}

/** A compiled query the probe sends (the session answers it without sending it to the server). */
const PROBE = Object.freeze({
  sql: 'select 1',
  parameters: [],
  query: { kind: 'RawNode', sqlFragments: ['select 1'], parameters: [] },
  queryId: { queryId: 'nestjs-dbmanager-probe' },
});

/** The native client of a Kysely transaction, as `identify` recognises it from one probe sent through its connection. */
export async function identifyTransactionClient<C>(transaction: unknown, identify: (send: () => Promise<unknown>) => Promise<C | undefined>): Promise<C | undefined> {
  const executor = (transaction as Partial<KyselyTransaction>).getExecutor?.();
  if (typeof executor?.provideConnection !== 'function') return undefined;
  return identify(() => executor.provideConnection((connection) => connection.executeQuery(PROBE)));
}

/**
 * The statements Kysely's PostgreSQL and SQLite drivers send to run a transaction (lower case, as they write them).
 * They are not reported as queries, as MikroORM 6's Knex never reported its own: a flush is one INSERT in the query
 * log and the traces on either major, not BEGIN, INSERT, COMMIT.
 */
const TRANSACTION_CONTROL = /^(begin|commit|rollback|start transaction( .*)?|savepoint .+|rollback to .+|release .+)$/;

/** True for a statement Kysely sends to begin, end or mark a transaction. */
export function isTransactionControl(sql: string): boolean {
  return TRANSACTION_CONTROL.test(sql);
}

/**
 * The Kysely connection a transaction runs on (the driver's `DatabaseConnection`, as its pool lent it), through its
 * executor's public `provideConnection`; undefined when this Kysely version has none.
 */
export async function transactionConnectionOf(transaction: unknown): Promise<object | undefined> {
  const executor = (transaction as Partial<KyselyTransaction>).getExecutor?.();
  if (typeof executor?.provideConnection !== 'function') return undefined;
  return executor.provideConnection(async (connection) => connection as object);
}
