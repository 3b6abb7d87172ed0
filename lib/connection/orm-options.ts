import { Logger } from '@nestjs/common';
import type { Options } from '@mikro-orm/core';
import type { ConnectionConfig } from '../config/config.types';
import type { DbDriver, OrmDriverClass } from '../drivers/driver';

/** MikroORM's options for a connection: ours over the user's `mikro_orm`, the pool opened later by its session. */
export function ormOptions(config: ConnectionConfig, driver: DbDriver, ormDriver: OrmDriverClass): Options {
  const { options } = driver.ormOptions(config);
  const { mikroOrm } = config;
  const logger = new Logger(`DbManager:${config.name}`);
  return {
    ...mikroOrm,
    ...options,
    driver: ormDriver,
    contextName: config.name,
    connect: false,
    ensureDatabase: false,
    discovery: { warnWhenNoEntities: false, ...mikroOrm.discovery },
    // Queries are logged by our own listener with literals masked (MikroORM's own query log would repeat them).
    debug: mikroOrm.debug ?? (config.enableLogging ? ['info'] : false),
    logger: mikroOrm.logger ?? ((message: string) => logger.log(message)),
  } as Options;
}
