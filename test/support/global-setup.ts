import type { TestProject } from 'vitest/node';
import { startTestPostgres } from './embedded-postgres';

/** One PostgreSQL for the whole run (unless DBM_TEST_POSTGRES_URL points at one), plus the optional servers' URLs. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  project.provide('mariadbUrl', process.env.DBM_TEST_MARIADB_URL ?? '');
  project.provide('mssqlUrl', process.env.DBM_TEST_MSSQL_URL ?? '');
  project.provide('mongodbUrl', process.env.DBM_TEST_MONGODB_URL ?? '');

  const externalUrl = process.env.DBM_TEST_POSTGRES_URL;
  if (externalUrl) {
    project.provide('postgresUrl', externalUrl);
    console.log(`[dbm-test] PostgreSQL: external, from DBM_TEST_POSTGRES_URL (${redact(externalUrl)})`);
    return async () => undefined;
  }

  const startedAt = Date.now();
  const postgres = await startTestPostgres();
  project.provide('postgresUrl', postgres.url);
  console.log(`[dbm-test] PostgreSQL: embedded on ${postgres.host}:${postgres.port} (started in ${Date.now() - startedAt} ms)`);
  return () => postgres.close();
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable URL>';
  }
}
