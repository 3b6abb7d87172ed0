import type { Options } from '@mikro-orm/core';
import type { ConnectionConfig } from '../config/config.types';
import type { DerivedOrmOptions } from './driver';

/** What a server database's driver says about itself for MikroORM's options. */
export interface ServerFacts {
  defaultPort: number;
  /** The name MikroORM gets (each database has its own default when none is configured). */
  dbName: string;
  /** DSN query parameters the driver passes on (the rest are reported as not used). */
  passedDsnParams?: readonly string[];
}

/**
 * MikroORM's options for a server database before any pool exists: address, credentials, database, schema and pool
 * size, with the user's own `mikro_orm.driverOptions` (the session replaces them with its pool's when it opens).
 */
export function serverOrmOptions(config: ConnectionConfig, facts: ServerFacts): DerivedOrmOptions {
  const options: Partial<Options> = {
    host: config.host,
    port: config.port ?? facts.defaultPort,
    user: config.user,
    password: config.password,
    dbName: facts.dbName,
    schema: config.schema,
    pool: { min: 0, max: config.maxOpenConns },
  };
  const notApplicable = Object.keys(config.dsnParams)
    .filter((key) => !facts.passedDsnParams?.includes(key))
    .map((key) => `dsn parameter "${key}" is not used`);
  return { options, notApplicable };
}
