import type { DatabaseType } from '../config/config.types';
import type { DbDriver } from './driver';
import { mariadbDriver } from './mariadb';
import { mongodbDriver } from './mongodb';
import { mssqlDriver } from './mssql';
import { mysqlDriver } from './mysql';
import { postgresDriver } from './postgres';
import { sqliteDriver } from './sqlite';

// The driver files import their MikroORM package only inside loadOrmDriver, so listing them here loads no driver.
const DRIVERS: Record<DatabaseType, DbDriver> = {
  postgres: postgresDriver,
  sqlite: sqliteDriver,
  mssql: mssqlDriver,
  mongodb: mongodbDriver,
  mysql: mysqlDriver,
  mariadb: mariadbDriver,
};

/** The driver for a database type. */
export function driverFor(type: DatabaseType): DbDriver {
  const driver = DRIVERS[type];
  if (!driver) throw new Error(`Database type "${type}" is not supported yet`);
  return driver;
}
