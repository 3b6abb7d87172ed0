import type { TestPostgres } from '../test/support/embedded-postgres';
import { DbManager, type DbManagerConfigInput } from '../lib';
import { startAnchorApp, startOursApp } from './support/apps';
import type { Report } from './support/report';
import { median, ms, ratio } from './support/stats';
import { interleave } from './support/timing';

// Section 2: time to ready with N named PostgreSQL connections — ours connects them in parallel.

const COUNTS = [1, 10, 50];
type Variant = 'manager' | 'oursApp' | 'anchorApp';
const VARIANTS: Variant[] = ['manager', 'oursApp', 'anchorApp'];

export async function startup(report: Report, server: TestPostgres, settings: { rounds: number }): Promise<void> {
  const names = (n: number) => Array.from({ length: n }, (_, i) => `db${i + 1}`);
  const config = (n: number): DbManagerConfigInput => ({
    connections: Object.fromEntries(names(n).map((name) => [name, { type: 'postgres', dsn: server.url }])),
  });
  const starters: Record<Variant, (n: number) => Promise<{ close(): Promise<void> }>> = {
    manager: (n) => DbManager.create(config(n)),
    oursApp: (n) => startOursApp(config(n)),
    anchorApp: (n) => startAnchorApp(names(n).map((name) => ({ name, url: server.url }))),
  };
  /** Time to ready; closing afterwards is not timed, so the next start finds the server's backends gone. */
  const runOnce = async (variant: Variant, n: number): Promise<number> => {
    const t = performance.now();
    const started = await starters[variant](n);
    const elapsed = performance.now() - t;
    await started.close();
    return elapsed;
  };

  // Warm-up (not recorded): the first start of each kind pays for loading modules and JIT compilation.
  for (const variant of VARIANTS) await runOnce(variant, 1);
  const results = new Map<number, Record<Variant, number[]>>();
  for (const n of COUNTS) results.set(n, await interleave(settings.rounds, VARIANTS, (variant) => runOnce(variant, n)));

  report.section(
    '2. Startup',
    `Time until ready with N named PostgreSQL connections (all to the same server), median of ${settings.rounds} rounds, ` +
      'variants interleaved. `DbManager.create` resolves when every connection has connected and answered a ping; a Nest app ' +
      'is ready when `app.listen()` resolved (ours: `DbManagerModule` + Terminus + Prometheus; anchor: one ' +
      '`MikroOrmModule.forRoot` per context + `forMiddleware()` + Terminus + Prometheus). "N × one connection" is the ' +
      'median `DbManager.create` time with one connection, times N: what connecting one after another would cost. ' +
      'Lower is better.',
  );
  const single = median(results.get(1)!.manager);
  report.table({
    headers: ['N', 'ours `DbManager.create`', 'N × one connection', 'ours Nest app', 'anchor Nest app', 'ours ÷ anchor (app)'],
    rows: COUNTS.map((n) => {
      const r = results.get(n)!;
      return [String(n), ms(median(r.manager)), ms(single * n), ms(median(r.oursApp)), ms(median(r.anchorApp)), ratio(median(r.oursApp), median(r.anchorApp))];
    }),
    numeric: [0, 1, 2, 3, 4, 5],
  });
  const n = COUNTS.at(-1)!;
  const last = results.get(n)!;
  report.summary(`Startup with ${n} connections, lower is better`, `\`DbManager.create\` ${ms(median(last.manager))}`, `${n} × one connection: ${ms(single * n)}`, ratio(median(last.manager), single * n));
  report.summary(`Nest app startup with ${n} connections, lower is better`, ms(median(last.oursApp)), `@mikro-orm/nestjs, ${n} contexts: ${ms(median(last.anchorApp))}`, ratio(median(last.oursApp), median(last.anchorApp)));
}
