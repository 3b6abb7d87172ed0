import type { DatabaseFacts } from './database-facts';

/** SQLite, as the configuration and tracing see it (lib/drivers/sqlite.ts is the driver): a file, not a server. */
export const sqliteFacts = {
  dbSystem: 'sqlite',
  // A dsn is a path: `sqlite:path`, `file:path`, or the bare path.
  dsnSchemes: ['sqlite:', 'file:'],
  address: 'filepath',
  fields: ['filepath'],
  livesInPool: (filepath) => filepath === ':memory:' || filepath.startsWith('file::memory:'),
} as const satisfies DatabaseFacts;
