import { ormDriverLoader } from './driver';
import { MYSQL2, mysqlFamilyDriver } from './mysql-family';

export const mysqlDriver = mysqlFamilyDriver({
  type: 'mysql',
  packageName: '@mikro-orm/mysql',
  dbSystem: 'mysql',
  library: MYSQL2,
  loadOrmDriver: ormDriverLoader('mysql', '@mikro-orm/mysql', async () => (await import('@mikro-orm/mysql')).MySqlDriver),
});
