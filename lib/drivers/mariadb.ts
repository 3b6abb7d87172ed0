import { DriverNotInstalledError } from '../errors';
import { importDriverPackage } from './driver';
import { type MySqlClientLibrary, mysqlFamilyDriver } from './mysql-family';

/** The slice of a MariaDB connector (callback API) connection this file reads. */
interface MariaDbConnection {
  serverVersion?(): string;
  /** The connector's only way to its socket; destroy() would first try to KILL the thread over a new connection. */
  __tests?: { getSocket(): { destroy(): void } | undefined };
  destroy?(): void;
}

/** The MariaDB connector (`mariadb` package), the client library of @mikro-orm/mariadb. */
const mariadbConnector: MySqlClientLibrary = {
  serverVersion(connection) {
    const c = connection as unknown as MariaDbConnection;
    try {
      return c.serverVersion?.();
    } catch {
      return undefined;
    }
  },
  destroySocket(connection) {
    const c = connection as unknown as MariaDbConnection;
    const socket = c.__tests?.getSocket();
    if (socket) socket.destroy();
    else c.destroy?.();
  },
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
