import { MikroORM } from '@mikro-orm/core';
import { type EntityManager, PostgreSqlDriver } from '@mikro-orm/postgresql';
import type { TestPostgres } from '../test/support/embedded-postgres';
import { startOursApp } from './support/apps';
import type { Report } from './support/report';
import { median } from './support/stats';
import { runLoad } from './support/timing';

// Section 1b: what our pool instrumentation costs per acquire, without network I/O (borrow a connection, give it back).
// CPU-bound and in-process, so far less sensitive to the machine's noise than section 1.

const POOL_MAX = 10;
const CONCURRENCIES = [1, 16];

interface PoolClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
}

type Variant = 'plain' | 'ours' | 'oursUnmetered' | 'oursNative';
const LABELS: Record<Variant, string> = {
  plain: "plain MikroORM: its knex pool's `acquireConnection` + `releaseConnection`",
  ours: 'ours: the same on our connection (pool events + metrics)',
  oursUnmetered: 'ours, `enable_metrics: false`',
  oursNative: 'ours: `withNativeClient(() => undefined)`',
};

export async function poolOverhead(report: Report, server: TestPostgres, settings: { rounds: number; cellMs: number }): Promise<void> {
  const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: server.url, pool: { min: 0, max: POOL_MAX }, discovery: { warnWhenNoEntities: false } });
  const pool = { type: 'postgres', dsn: server.url, max_open_conns: POOL_MAX, max_idle_conns: POOL_MAX } as const;
  const ours = await startOursApp({ connections: { primary: pool, unmetered: { ...pool, enable_metrics: false } } }, { listen: false });
  const clientOf = (knex: { client: unknown }) => knex.client as PoolClient;
  const borrow = (client: PoolClient) => async () => client.releaseConnection(await client.acquireConnection());
  const primary = ours.manager.get('primary');
  const ops: Record<Variant, () => Promise<unknown>> = {
    plain: borrow(clientOf((orm.em as EntityManager).getKnex())),
    ours: borrow(clientOf(primary.knex())),
    oursUnmetered: borrow(clientOf(ours.manager.get('unmetered').knex())),
    oursNative: () => primary.withNativeClient(() => undefined),
  };
  const variants = Object.keys(ops) as Variant[];
  const cpu = new Map<string, number[]>();
  try {
    for (const v of variants) await runLoad(ops[v], POOL_MAX, 200); // fills each pool, warms the JIT
    for (let round = 0; round < settings.rounds; round++) {
      for (const concurrency of CONCURRENCIES) {
        for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
          const { cpuPerOpUs } = await runLoad(ops[v], concurrency, settings.cellMs);
          const key = `${v}/${concurrency}`;
          cpu.set(key, [...(cpu.get(key) ?? []), cpuPerOpUs]);
        }
      }
    }
  } finally {
    await ours.close();
    await orm.close(true);
  }

  report.section(
    '1b. Pool overhead without I/O',
    `Borrow a pooled connection and give it back, no query: CPU time per borrow, median of ${settings.rounds} interleaved ` +
      `rounds × ${settings.cellMs / 1000} s. At concurrency ${CONCURRENCIES[1]} on a pool of ${POOL_MAX} most borrows wait, ` +
      'which is when our metrics record a wait as well as the acquire time. Lower is better; "added" is ours minus plain.',
  );
  const at = (v: Variant, c: number) => median(cpu.get(`${v}/${c}`)!);
  report.table({
    headers: ['variant', ...CONCURRENCIES.flatMap((c) => [`c=${c}: µs per borrow`, `c=${c}: added`])],
    rows: variants.map((v) => [
      LABELS[v],
      ...CONCURRENCIES.flatMap((c) => [at(v, c).toFixed(2), v === 'plain' ? '' : `+${(at(v, c) - at('plain', c)).toFixed(2)}`]),
    ]),
    numeric: [1, 2, 3, 4],
  });
  const added = (v: Variant) => CONCURRENCIES.map((c) => `+${(at(v, c) - at('plain', c)).toFixed(2)} µs (c=${c})`).join(', ');
  report.summary('CPU per pool borrow, no I/O, lower is better', 'our connection (metrics on)', "plain MikroORM's pool", added('ours'));
  report.summary('CPU per pool borrow, no I/O, lower is better', '`withNativeClient`', "plain MikroORM's pool", added('oursNative'));
}
