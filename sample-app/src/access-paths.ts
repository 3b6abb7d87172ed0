import { sql } from 'kysely';
import type { DbConnection } from 'nestjs-dbmanager';

/** One read through each access path of a connection; the statement depends on the database, the pool does not. */
export type AccessPath = 'em' | 'kysely' | 'knex' | 'native';

/** Every access path; the query builder is `kysely` on MikroORM 7 and `knex` on 6 (the other answers 400). */
export const ACCESS_PATHS: readonly AccessPath[] = ['em', 'kysely', 'knex', 'native'];

const PROBE: Record<string, string> = {
  postgres: 'select current_database() as database, 1 as one',
  sqlite: 'select sqlite_version() as version, 1 as one',
  mysql: 'select database() as `database`, 1 as one',
  mariadb: 'select database() as `database`, 1 as one',
  mssql: 'select db_name() as [database], 1 as one',
};

export async function readThrough(connection: DbConnection, path: AccessPath): Promise<unknown> {
  if (connection.type === 'mongodb') {
    // A query builder on MongoDB throws the library's NotSqlDatabaseError, which DbErrorsFilter answers as a 400.
    if (path === 'kysely') return connection.kysely();
    if (path === 'knex') return connection.knex();
    if (path === 'em') return (connection.em.getConnection() as unknown as { getDb(): import('mongodb').Db }).getDb().command({ ping: 1 });
    return connection.mongo<import('mongodb').MongoClient>().db().command({ ping: 1 });
  }
  const sqlText = PROBE[connection.type];
  switch (path) {
    case 'em':
      return connection.em.getConnection().execute(sqlText);
    case 'kysely':
      return (await sql.raw(sqlText).execute(connection.kysely())).rows;
    case 'knex': {
      const result = await connection.knex().raw(sqlText);
      // mysql2 and the MariaDB connector answer [rows, fields]; pg { rows }; sqlite and tedious the rows.
      if (connection.type === 'mysql' || connection.type === 'mariadb') return result[0];
      return Array.isArray(result) ? result : result.rows ?? result;
    }
    case 'native':
      return connection.withNativeClient((client: unknown) => nativeQuery(connection.type, client, sqlText));
  }
}

/** The raw driver's own API, to show the native client really is the driver's. */
function nativeQuery(type: string, client: unknown, sql: string): Promise<unknown> {
  switch (type) {
    case 'postgres':
      return (client as import('pg').Client).query(sql).then((r) => r.rows);
    case 'sqlite':
      // MikroORM 6.6 lends a sqlite3 Database (callbacks, and a prepare() of its own); 7 the better-sqlite3 database
      // (synchronous statements, no all() on the database).
      if (typeof (client as { all?: unknown }).all === 'function') {
        return new Promise((resolve, reject) =>
          (client as { all(sql: string, cb: (e: Error | null, rows: unknown[]) => void): void }).all(sql, (e, rows) => (e ? reject(e) : resolve(rows))),
        );
      }
      return Promise.resolve((client as { prepare(sql: string): { all(): unknown[] } }).prepare(sql).all());
    case 'mysql':
    case 'mariadb':
      // mysql2 (mysql) and the MariaDB connector (mariadb) both lend a callback-API connection.
      return new Promise((resolve, reject) =>
        (client as { query(sql: string, cb: (e: Error | null, rows: unknown) => void): void }).query(sql, (e, rows) => (e ? reject(e) : resolve(rows))),
      );
    case 'mssql':
      return tediousQuery(client as import('tedious').Connection, sql);
    default:
      return Promise.reject(new Error(`no native example for ${type}`));
  }
}

/** tedious runs a Request and streams its rows; imported here so an app without SQL Server never loads it. */
async function tediousQuery(connection: import('tedious').Connection, sql: string): Promise<Record<string, unknown>[]> {
  const { Request } = await import('tedious');
  return new Promise((resolve, reject) => {
    const rows: Record<string, unknown>[] = [];
    const request = new Request(sql, (error) => (error ? reject(error) : resolve(rows)));
    request.on('row', (columns: Array<{ value: unknown; metadata: { colName: string } }>) =>
      rows.push(Object.fromEntries(columns.map((c) => [c.metadata.colName, c.value]))),
    );
    connection.execSql(request);
  });
}
