import type { DatabaseFacts } from './database-facts';

/** PostgreSQL, as the configuration and tracing see it (lib/drivers/postgres.ts is the driver). */
export const postgresFacts = {
  dbSystem: 'postgresql',
  dsnSchemes: ['postgres:', 'postgresql:'],
  address: 'host',
  fields: ['host', 'port', 'user', 'password', 'database', 'sslmode', 'schema', 'pooler'],
} as const satisfies DatabaseFacts;
