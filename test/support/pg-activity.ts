import pg from 'pg';

/** Counts the server connections an application holds, by its application_name, from pg_stat_activity. */
export async function countBackends(url: string, applicationName: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, application_name: 'dbm-test-observer' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('select count(*) as n from pg_stat_activity where application_name = $1', [applicationName]);
    return Number(rows[0].n);
  } finally {
    await client.end();
  }
}

/** Samples countBackends every `everyMs` while `work` runs; resolves to the highest count seen. */
export async function peakBackendsDuring(url: string, applicationName: string, work: Promise<unknown>, everyMs = 20): Promise<number> {
  const client = new pg.Client({ connectionString: url, application_name: 'dbm-test-observer' });
  client.on('error', () => undefined);
  await client.connect();
  let peak = 0;
  let done = false;
  const settled = work.finally(() => (done = true));
  try {
    while (!done) {
      const { rows } = await client.query<{ n: string }>('select count(*) as n from pg_stat_activity where application_name = $1', [applicationName]);
      peak = Math.max(peak, Number(rows[0].n));
      await new Promise((r) => setTimeout(r, everyMs));
    }
    await settled;
    return peak;
  } finally {
    await client.end();
  }
}
