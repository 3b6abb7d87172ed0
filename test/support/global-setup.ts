import type { TestProject } from 'vitest/node';
import { assertNodeFitsMikroOrm, mikroOrm } from '../../lib/mikro-orm-version';
import { startTestPostgres } from './embedded-postgres';

/**
 * Each leg says which stack it must run (`npm test`: MikroORM 7 on the repository's Node 24; `npm run
 * test:mikro-orm-6`: MikroORM 6.6 on the system Node 20), so a run on the wrong one fails at once instead of testing
 * the other stack by mistake.
 */
function assertLeg(): void {
  const expected = Number(process.env.DBM_EXPECT_MIKRO_ORM ?? 7);
  const { major, version } = mikroOrm();
  if (major !== expected) {
    throw new Error(`this test leg expects MikroORM ${expected}, but @mikro-orm/core ${version} is installed (npm test runs MikroORM 7; npm run test:mikro-orm-6 runs 6.6)`);
  }
  assertNodeFitsMikroOrm();
  console.log(`[dbm-test] leg: MikroORM ${version} on Node ${process.versions.node}`);
}

/** One PostgreSQL for the whole run (unless DBM_TEST_POSTGRES_URL points at one), plus the optional servers' URLs. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  assertLeg();
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
