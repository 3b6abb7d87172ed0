import { destroyMariadbSocket, mariadbServerVersion } from './adapters/mariadb';
import { ormDriverLoader } from './driver';
import { type MySqlClientLibrary, mysqlFamilyDriver } from './mysql-family';

/** The MariaDB connector (`mariadb` package), the client library of @mikro-orm/mariadb on MikroORM 6 (7 uses mysql2). */
const mariadbConnector: MySqlClientLibrary = {
  serverVersion: async (connection) => mariadbServerVersion(connection),
  destroySocket: (connection) => destroyMariadbSocket(connection),
};

export const mariadbDriver = mysqlFamilyDriver({
  type: 'mariadb',
  packageName: '@mikro-orm/mariadb',
  dbSystem: 'mariadb',
  library: mariadbConnector,
  loadOrmDriver: ormDriverLoader('mariadb', '@mikro-orm/mariadb', async () => (await import('@mikro-orm/mariadb')).MariaDbDriver),
});
