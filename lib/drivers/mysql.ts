import { DriverNotInstalledError } from '../errors';
import { importDriverPackage } from './driver';
import { type MySqlClientLibrary, mysqlFamilyDriver } from './mysql-family';

/** The slice of a mysql2 connection this file reads. */
interface Mysql2Connection {
  _handshakePacket?: { serverVersion?: string };
  stream?: { destroy(): void };
}

/** mysql2, the client library of @mikro-orm/mysql. */
const mysql2: MySqlClientLibrary = {
  serverVersion: (connection) => (connection as unknown as Mysql2Connection)._handshakePacket?.serverVersion,
  destroySocket: (connection) => (connection as unknown as Mysql2Connection).stream?.destroy(),
};

export const mysqlDriver = mysqlFamilyDriver({
  type: 'mysql',
  packageName: '@mikro-orm/mysql',
  dbSystem: 'mysql',
  library: mysql2,
  async loadOrmDriver(connectionName) {
    const pkg = await importDriverPackage(() => import('@mikro-orm/mysql'));
    if (!pkg) throw new DriverNotInstalledError(connectionName, 'mysql', '@mikro-orm/mysql');
    return pkg.MySqlDriver;
  },
});
