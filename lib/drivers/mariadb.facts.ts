import type { DatabaseFacts } from './database-facts';
import { mysqlFacts } from './mysql.facts';

/** MariaDB, as the configuration and tracing see it (lib/drivers/mariadb.ts is the driver): MySQL's dialect and fields. */
export const mariadbFacts = {
  ...mysqlFacts,
  dbSystem: 'mariadb',
  // MariaDB's own tools take mysql:// URLs too.
  dsnSchemes: ['mariadb:', 'mysql:'],
} as const satisfies DatabaseFacts;
