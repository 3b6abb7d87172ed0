import type { DbConnection } from 'nestjs-dbmanager';

/** One read through each access path of a connection; the statement depends on the database, the pool does not. */
export type AccessPath = 'em' | 'knex' | 'native';

const PROBE: Record<string, string> = {
  postgres: 'select current_database() as database, 1 as one',
  sqlite: 'select sqlite_version() as version, 1 as one',
  mysql: 'select database() as `database`, 1 as one',
  mariadb: 'select database() as `database`, 1 as one',
  mssql: 'select db_name() as [database], 1 as one',
};

export async function readThrough(connection: DbConnection, path: AccessPath): Promise<unknown> {
  if (connection.type === 'mongodb') {
    if (path === 'knex') throw new Error('MongoDB has no query builder');
    if (path === 'em') return (connection.em.getConnection() as unknown as { getDb(): import('mongodb').Db }).getDb().command({ ping: 1 });
    return connection.mongo<import('mongodb').MongoClient>().db().command({ ping: 1 });
  }
  const sql = PROBE[connection.type];
  switch (path) {
    case 'em':
      return connection.em.getConnection().execute(sql);
    case 'knex': {
      const result = await connection.knex().raw(sql);
      return Array.isArray(result) ? result : result.rows ?? result;
    }
    case 'native':
      return connection.withNativeClient((client: unknown) => nativeQuery(connection.type, client, sql));
  }
}

/** The raw driver's own API, to show the native client really is the driver's. */
function nativeQuery(type: string, client: unknown, sql: string): Promise<unknown> {
  switch (type) {
    case 'postgres':
      return (client as import('pg').Client).query(sql).then((r) => r.rows);
    case 'sqlite':
      return new Promise((resolve, reject) =>
        (client as { all(sql: string, cb: (e: Error | null, rows: unknown[]) => void): void }).all(sql, (e, rows) => (e ? reject(e) : resolve(rows))),
      );
    default:
      return Promise.reject(new Error(`no native example for ${type}`));
  }
}
