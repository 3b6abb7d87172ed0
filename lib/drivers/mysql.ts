import { destroyMysql2Socket } from './adapters/mysql2';
import { ormDriverLoader } from './driver';
import { type MySqlClientLibrary, mysqlFamilyDriver, runStatement } from './mysql-family';

/** mysql2, the client library of @mikro-orm/mysql: the server's version is asked for (its handshake is private). */
const mysql2: MySqlClientLibrary = {
  serverVersion: async (connection) => {
    const rows = (await runStatement(connection, 'SELECT VERSION() AS version')) as Array<{ version?: string }>;
    return rows[0]?.version;
  },
  destroySocket: (connection) => destroyMysql2Socket(connection),
};

export const mysqlDriver = mysqlFamilyDriver({
  type: 'mysql',
  packageName: '@mikro-orm/mysql',
  dbSystem: 'mysql',
  library: mysql2,
  loadOrmDriver: ormDriverLoader('mysql', '@mikro-orm/mysql', async () => (await import('@mikro-orm/mysql')).MySqlDriver),
});
