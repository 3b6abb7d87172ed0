// The import makes this an augmentation of vitest's types rather than a replacement of them.
import 'vitest';

declare module 'vitest' {
  /** Values test/support/global-setup.ts hands to every test file through inject(). */
  export interface ProvidedContext {
    /** Always set: the embedded server's URL, or DBM_TEST_POSTGRES_URL. */
    postgresUrl: string;
    /** Empty when DBM_TEST_MARIADB_URL is not set. */
    mariadbUrl: string;
    /** Empty when DBM_TEST_MSSQL_URL is not set. */
    mssqlUrl: string;
    /** Empty when DBM_TEST_MONGODB_URL is not set. */
    mongodbUrl: string;
  }
}
