import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import pg from 'pg';
import { mikroOrm } from '../lib/mikro-orm-version';
import { beforeLib } from './before-lib';
import { startAnchorApp, startOursApp } from './support/apps';

/**
 * The query-path section's variants: one way to run a query each, built in a process of its own (bench/query-child.ts)
 * so no variant shares a heap, a JIT or an event loop with another. Written against both MikroORM majors: the query
 * builder is Kysely on 7 and Knex on 6, reached through structural types so bench/ compiles on either. The `before:*`
 * variants (MikroORM 6 only) are ours on the library before issue 13, for `npm run bench:before-after`.
 */

/** Every variant's pool size. */
export const POOL_MAX = 10;

/** Rows of bench_items (read by key spreads its keys over them). */
export const ROWS = 10_000;

/** A query of the section: the same statement in node-postgres' placeholders ($1) and MikroORM's (?). */
export interface Workload {
  name: string;
  pgSql: string;
  ormSql: string;
  /** Whether the statement takes a key. */
  keyed: boolean;
}

export const WORKLOADS: Workload[] = [
  { name: 'SELECT 1', pgSql: 'select 1', ormSql: 'select 1', keyed: false },
  { name: 'read by key', pgSql: 'select id, name, score from bench_items where id = $1', ormSql: 'select id, name, score from bench_items where id = ?', keyed: true },
];

export type VariantKey =
  | 'bare:pool'
  | 'control:pool'
  | 'bare:lend'
  | 'ballast:pool'
  | 'plain:pool'
  | 'ours:native'
  | 'plain:kysely'
  | 'ours:kysely'
  | 'plain:knex'
  | 'ours:knex'
  | 'plain:em'
  | 'ours:em'
  | 'anchor:em'
  | 'before:native'
  | 'before:knex'
  | 'before:em';

/** What each variant calls, for the tables. */
export const CALLS: Record<VariantKey, string> = {
  'bare:pool': '`pg.Pool.query`',
  'control:pool': '`pg.Pool.query`, a 2nd identical pool (A/A control)',
  'bare:lend': '`pg.Pool`: `connect()`, `query`, `release()`',
  'ballast:pool': '`pg.Pool.query` in a process that also runs our app (its heap, its timers)',
  'plain:pool': "plain MikroORM's knex/tarn pool: `acquireConnection` + `query`",
  'ours:native': '`withNativeClient(c => c.query)`',
  'plain:kysely': 'plain MikroORM: `getClient()` (Kysely) `.executeQuery`',
  'ours:kysely': '`connection.kysely().executeQuery`',
  'plain:knex': 'plain MikroORM: `em.getKnex().raw`',
  'ours:knex': '`connection.knex().raw`',
  'plain:em': 'plain MikroORM: `em.execute`',
  'ours:em': '`connection.em.execute`',
  'anchor:em': '@mikro-orm/nestjs: `em.execute`',
  'before:native': '`withNativeClient(c => c.query)`, library before issue 13',
  'before:knex': '`connection.knex().raw`, library before issue 13',
  'before:em': '`connection.em.execute`, library before issue 13',
};

/** The variants of the running MikroORM major, in the order a round runs them (compared pairs next to each other). */
export function variantsOfThisLeg(): VariantKey[] {
  return mikroOrm().major === 7
    ? ['bare:pool', 'control:pool', 'ballast:pool', 'bare:lend', 'ours:native', 'plain:kysely', 'ours:kysely', 'plain:em', 'ours:em', 'anchor:em']
    : ['bare:pool', 'control:pool', 'ballast:pool', 'bare:lend', 'plain:pool', 'ours:native', 'plain:knex', 'ours:knex', 'plain:em', 'ours:em', 'anchor:em'];
}

/** One variant, ready to run queries: `run(workload)` sends one. */
export interface OpenVariant {
  run(workload: Workload): Promise<unknown>;
  close(): Promise<void>;
}

let counter = 0;
/** Keys spread over the table, the same sequence in every variant's process. */
const nextKey = () => ((counter++ * 7919) % ROWS) + 1;
const pgParams = (w: Workload) => (w.keyed ? [nextKey()] : []);

interface Queryable {
  query(sql: string, params: unknown[]): Promise<unknown>;
}
interface KnexLike {
  raw(sql: string, params: unknown[]): Promise<unknown>;
  client: { acquireConnection(): Promise<Queryable>; releaseConnection(c: Queryable): Promise<void> };
}
interface KyselyLike {
  executeQuery(query: unknown): Promise<unknown>;
}
interface SqlEm {
  execute(sql: string, params: unknown[]): Promise<unknown>;
  getKnex?(): KnexLike;
  getConnection(): { getClient(): unknown };
}

/** Kysely's raw compiled query (CompiledQuery.raw), built without importing kysely, which MikroORM 6 does not bring. */
function compiled(sql: string, parameters: unknown[]): unknown {
  return { sql, parameters, query: { kind: 'RawNode', sqlFragments: [sql], parameters: [] }, queryId: { queryId: 'bench' } };
}

/** Builds `key` against the server at `url`; the first queries fill its pool. */
export async function openVariant(key: VariantKey, url: string): Promise<OpenVariant> {
  const [side, path] = key.split(':') as [string, string];
  if (side === 'bare' || side === 'control') {
    const pool = new pg.Pool({ connectionString: url, max: POOL_MAX });
    pool.on('error', () => undefined);
    if (path === 'lend') {
      // What withNativeClient does, written by hand on a bare pool: borrow a client, query, give it back. pool.query
      // runs the same steps through pg-pool's callbacks, with one promise in all.
      return {
        async run(w) {
          const client = await pool.connect();
          try {
            return await client.query(w.pgSql, pgParams(w));
          } finally {
            client.release();
          }
        },
        close: () => pool.end(),
      };
    }
    return { run: (w) => pool.query(w.pgSql, pgParams(w)), close: () => pool.end() };
  }
  if (side === 'plain') {
    const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: url, pool: { min: 0, max: POOL_MAX }, discovery: { warnWhenNoEntities: false } });
    const em = orm.em as unknown as SqlEm;
    const close = () => orm.close(true);
    if (path === 'em') return { run: (w) => em.execute(w.ormSql, pgParams(w)), close };
    if (path === 'kysely') {
      const kysely = em.getConnection().getClient() as KyselyLike;
      return { run: (w) => kysely.executeQuery(compiled(w.pgSql, pgParams(w))), close };
    }
    const knex = em.getKnex!();
    if (path === 'knex') return { run: (w) => knex.raw(w.ormSql, pgParams(w)), close };
    return {
      async run(w) {
        const client = await knex.client.acquireConnection();
        try {
          return await client.query(w.pgSql, pgParams(w));
        } finally {
          await knex.client.releaseConnection(client);
        }
      },
      close,
    };
  }
  if (side === 'anchor') {
    const app = await startAnchorApp([{ name: 'a', url }], { listen: false, pool: { min: 0, max: POOL_MAX } });
    const em = app.orm('a').em as unknown as SqlEm;
    return { run: (w) => em.execute(w.ormSql, pgParams(w)), close: () => app.close() };
  }
  if (side === 'ballast') {
    // Tells the cost of our code per query from the cost of a process that holds a Nest app, MikroORM and our module at
    // all (a larger heap to collect, the health loop): a bare pool beside our app, which it does not use.
    const ours = await startOursApp({ connections: { a: { type: 'postgres', dsn: url, max_open_conns: 1 } } }, { listen: false });
    const pool = new pg.Pool({ connectionString: url, max: POOL_MAX });
    pool.on('error', () => undefined);
    return { run: (w) => pool.query(w.pgSql, pgParams(w)), close: async () => (await pool.end(), await ours.close()) };
  }
  // Ours as a user wires it: DbManagerModule with metrics (Prometheus) and the health loop on, tracing and logging off.
  // `before` is the same app on the library as it was before issue 13 (bench/before-lib.ts), booted the same way.
  const ours = await startOursApp(
    { connections: { a: { type: 'postgres', dsn: url, max_open_conns: POOL_MAX, max_idle_conns: POOL_MAX } } },
    { listen: false, lib: side === 'before' ? beforeLib() : undefined },
  );
  const connection = ours.manager.get('a');
  const close = () => ours.close();
  if (path === 'native') return { run: (w) => connection.withNativeClient((c: Queryable) => c.query(w.pgSql, pgParams(w))), close };
  if (path === 'em') return { run: (w) => (connection.em as unknown as SqlEm).execute(w.ormSql, pgParams(w)), close };
  if (path === 'kysely') {
    return { run: (w) => connection.kysely<unknown>().executeQuery(compiled(w.pgSql, pgParams(w)) as never), close };
  }
  return { run: (w) => connection.knex<KnexLike>().raw(w.ormSql, pgParams(w)), close };
}
