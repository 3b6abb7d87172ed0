import { inject } from 'vitest';

/** The MariaDB URL the run was given, or why MariaDB tests must be skipped. */
export function mariadbUrlOrSkipReason(): { url?: string; reason?: string } {
  const url = inject('mariadbUrl');
  return url ? { url } : { reason: 'DBM_TEST_MARIADB_URL is not set' };
}
