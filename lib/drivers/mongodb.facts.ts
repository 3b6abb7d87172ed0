import type { DatabaseFacts } from './database-facts';

/** MongoDB, as the configuration and tracing see it (lib/drivers/mongodb.ts is the driver). */
export const mongodbFacts = {
  dbSystem: 'mongodb',
  dsnSchemes: ['mongodb:', 'mongodb+srv:'],
  address: 'host',
  fields: ['host', 'port', 'user', 'password', 'database', 'authSource', 'replicaSet', 'readPreference'],
  // The driver reads URI option names whatever their case, names the application appName, and has its own tls options.
  dsnParams: { caseInsensitive: true, renamed: { applicationName: 'appName' }, readsTlsParams: true },
} as const satisfies DatabaseFacts;
