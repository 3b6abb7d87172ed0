import type { DatabaseFacts } from './database-facts';

/** MySQL, as the configuration and tracing see it (lib/drivers/mysql.ts is the driver). */
export const mysqlFacts = {
  dbSystem: 'mysql',
  dsnSchemes: ['mysql:'],
  address: 'host',
  fields: ['host', 'port', 'user', 'password', 'database', 'sslmode'],
  // Without the ANSI_QUOTES SQL mode, "…" is a string; # starts a comment.
  sqlDialect: { doubleQuotedStrings: true, hashComments: true },
} as const satisfies DatabaseFacts;
