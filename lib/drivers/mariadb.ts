import { DriverNotInstalledError } from '../errors';
import { destroyMariadbSocket, mariadbServerVersion } from './adapters/mariadb';
import { importDriverPackage } from './driver';
import { type MySqlClientLibrary, mysqlFamilyDriver } from './mysql-family';

/** The MariaDB connector (`mariadb` package), the client library of @mikro-orm/mariadb. */
const mariadbConnector: MySqlClientLibrary = {
  serverVersion: async (connection) => mariadbServerVersion(connection),
  destroySocket: (connection) => destroyMariadbSocket(connection),
};

export const mariadbDriver = mysqlFamilyDriver({
  type: 'mariadb',
  packageName: '@mikro-orm/mariadb',
  dbSystem: 'mariadb',
  library: mariadbConnector,
  async loadOrmDriver(connectionName) {
    const pkg = await importDriverPackage(() => import('@mikro-orm/mariadb'));
    if (!pkg) throw new DriverNotInstalledError(connectionName, 'mariadb', '@mikro-orm/mariadb');
    return pkg.MariaDbDriver;
  },
});
