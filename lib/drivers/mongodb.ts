import { createRequire } from 'node:module';
import { describeTarget } from '../config/dsn';
import type { Options } from '@mikro-orm/core';
import { type DbDriver, ormDriverLoader } from './driver';
import { mikroOrm } from '../mikro-orm-version';
import { clientHandOver } from './mongo/client-hand-over';
import { DEFAULT_DATABASE, DEFAULT_PORT, databaseOf, mongoClientSettings } from './mongo/client-settings';
import { MongoSession } from './mongo/mongo-session';

/** Errors a retry cannot fix: bad credentials, or settings the driver refuses. */
const PERMANENT_NAMES = new Set(['MongoParseError', 'MongoInvalidArgumentError', 'MongoMissingCredentialsError', 'MongoMissingDependencyError']);
const AUTHENTICATION_FAILED = 18;

/**
 * The `mongodb` package exactly as @mikro-orm/mongodb resolves it: MikroORM adopts a client handed over through
 * `driverOptions` only if it is an `instanceof` its own MongoClient class.
 */
function mongodbPackage(): typeof import('mongodb') {
  return createRequire(require.resolve('@mikro-orm/mongodb'))('mongodb') as typeof import('mongodb');
}

export const mongodbDriver: DbDriver = {
  type: 'mongodb',
  packageName: '@mikro-orm/mongodb',
  accessFamily: 'mongo',

  loadOrmDriver: ormDriverLoader('mongodb', '@mikro-orm/mongodb', async () => (await import('@mikro-orm/mongodb')).MongoDriver),

  ormOptions(config) {
    const { notApplicable } = mongoClientSettings(config);
    // MikroORM only shows this URL (no credentials); the session hands it the client it connects through.
    const clientUrl = describeTarget('mongodb', { host: config.host, port: config.port ?? DEFAULT_PORT, database: databaseOf(config) });
    const options: Partial<Options> = { clientUrl, dbName: databaseOf(config) };
    if (mikroOrm().major === 7) options.driverOptions = clientHandOver(config.name) as never;
    return { options, notApplicable };
  },

  target(config) {
    return {
      dbSystem: 'mongodb',
      namespace: databaseOf(config),
      address: config.host,
      port: config.port ?? DEFAULT_PORT,
      display: describeTarget('mongodb', config, { port: DEFAULT_PORT, database: DEFAULT_DATABASE }),
    };
  },

  open: (orm, context) => MongoSession.open(orm, context, mongodbPackage().MongoClient),

  isPermanentError(error) {
    let current: unknown = error;
    for (let depth = 0; current && depth < 5; depth++) {
      const { name, code, codeName, cause } = current as { name?: unknown; code?: unknown; codeName?: unknown; cause?: unknown };
      if (code === AUTHENTICATION_FAILED || codeName === 'AuthenticationFailed') return true;
      if (typeof name === 'string' && PERMANENT_NAMES.has(name)) return true;
      current = cause;
    }
    return false;
  },
};
