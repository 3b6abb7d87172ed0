import { createRequire } from 'node:module';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TestPostgres } from '../test/support/embedded-postgres';
import { startTcpProxy, type TcpProxy } from '../test/support/tcp-proxy';
import { type AnchorApp, type BenchApp, type OursApp, startAnchorApp, startOursApp } from './support/apps';
import type { Report } from './support/report';
import { median, ms } from './support/stats';
import { capped, pollUntil } from './support/timing';

// Section 5: faults, ours and the anchor side by side against the same server: a restart, then a black hole at startup.

const POLL_MS = 10;
const DOWN_MS = 500;
const ANCHOR_STARTUP_CAP_MS = 35_000;
const OURS_CONNECT_TIMEOUT = '2s';

type Side = 'ours' | 'anchor';

interface QueryRecord {
  startedAt: number;
  endedAt: number;
  ok: boolean;
}

/** `select 1` back to back on `parallel` workers until stopped, each outcome recorded; a failure waits 5 ms. */
function queryLoop(em: () => { execute(sql: string): Promise<unknown> }, parallel = 2): { records: QueryRecord[]; stop(): Promise<void> } {
  const records: QueryRecord[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      const startedAt = performance.now();
      try {
        await em().execute('select 1');
        records.push({ startedAt, endedAt: performance.now(), ok: true });
      } catch {
        records.push({ startedAt, endedAt: performance.now(), ok: false });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  };
  const workers = Array.from({ length: parallel }, worker);
  return {
    records,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

interface RestartOutcome {
  firstQueryMs: number;
  firstHealthyMs: number;
  failedAfterReady: number;
  failedWhileDown: number;
}

export async function recovery(report: Report, server: TestPostgres, settings: { restarts: number }): Promise<void> {
  const restarts = await serverRestarts(server, settings.restarts);
  const blackHole = await startupWithBlackHole(server);

  report.section(
    `5. Recovery and faults (ours vs \`@mikro-orm/nestjs\` ${anchorVersion()} + \`MikroOrmHealthIndicator\`)`,
    `Both apps run at once, each with two connections/contexts to the same embedded PostgreSQL. **Restart**: while two ` +
      `\`select 1\` loops per app run (through \`connection.em.execute\` / the context's \`em.execute\`), the server is stopped, ` +
      `left down ${DOWN_MS} ms and started again (${settings.restarts} times); from the moment it accepts connections again, each ` +
      `app's \`/health\` is polled every ${POLL_MS} ms. Medians over the restarts, worst in brackets. **Black hole at startup**: ` +
      'one of the two connections points at a TCP proxy that accepts and never answers; ours marks it `critical: false` with ' +
      `\`connect_timeout: ${OURS_CONNECT_TIMEOUT}\` (\`health_check_timeout: 500ms\`); the anchor has no such settings (MikroORM defaults), its wait is capped at ` +
      `${ms(ANCHOR_STARTUP_CAP_MS)}. Lower is better everywhere.`,
  );
  const restartRow = (label: string, pick: (o: RestartOutcome) => number, format: (v: number) => string) => [
    label,
    ...(['ours', 'anchor'] as const).map((side) => {
      const values = restarts[side].map(pick);
      return `${format(median(values))} (${format(Math.max(...values))})`;
    }),
  ];
  const count = (v: number) => String(v);
  report.table({
    headers: ['', 'ours', 'anchor'],
    rows: [
      restartRow('restart: server ready → first successful query', (o) => o.firstQueryMs, ms),
      restartRow('restart: server ready → first `/health` 200', (o) => o.firstHealthyMs, ms),
      restartRow('restart: failed queries started after the server was ready', (o) => o.failedAfterReady, count),
      restartRow(`restart: failed queries while down (${DOWN_MS} ms + stop/start)`, (o) => o.failedWhileDown, count),
      ['black hole at startup: outcome', blackHole.ours.outcome, blackHole.anchor.outcome],
      ['black hole at startup: time', ms(blackHole.ours.ms), blackHole.anchor.timeText],
      ['black hole at startup: `/health` once started', blackHole.ours.health, blackHole.anchor.health],
      ['black hole at startup: sockets left open to the black hole afterwards', String(blackHole.ours.sockets), String(blackHole.anchor.sockets)],
      ['black hole at startup: connections to the healthy server left open afterwards', String(blackHole.ours.serverConnections), String(blackHole.anchor.serverConnections)],
    ],
  });
  const med = (side: Side, pick: (o: RestartOutcome) => number) => ms(median(restarts[side].map(pick)));
  report.summary('Server restart → first successful query, lower is better', med('ours', (o) => o.firstQueryMs), `@mikro-orm/nestjs: ${med('anchor', (o) => o.firstQueryMs)}`, 'failed queries after ready: ' + `${Math.max(...restarts.ours.map((o) => o.failedAfterReady))} vs ${Math.max(...restarts.anchor.map((o) => o.failedAfterReady))}`);
  report.summary('Server restart → first `/health` 200, lower is better', med('ours', (o) => o.firstHealthyMs), `@mikro-orm/nestjs: ${med('anchor', (o) => o.firstHealthyMs)}`, '');
  report.summary('Startup with 1 of 2 connections black-holed', `${blackHole.ours.outcome} in ${blackHole.ours.timeText}`, `${blackHole.anchor.outcome.split(':')[0]} after ${blackHole.anchor.timeText}`, '');
  report.note(
    'Afterwards = ours after `app.close()`; the anchor after its startup failed (a failed Nest startup hands back no app to ' +
      'close) or at the cap. Sockets: `proxy.openSockets`, 200 ms later; server connections: `pg_stat_activity`.',
  );
}

async function serverRestarts(server: TestPostgres, times: number): Promise<Record<Side, RestartOutcome[]>> {
  const ours = await startOursApp({
    health_check_interval: '1s',
    health_check_timeout: '1s',
    connections: { a: { type: 'postgres', dsn: server.url }, b: { type: 'postgres', dsn: server.url } },
  });
  const anchor = await startAnchorApp([
    { name: 'a', url: server.url },
    { name: 'b', url: server.url },
  ]);
  const outcomes: Record<Side, RestartOutcome[]> = { ours: [], anchor: [] };
  try {
    for (let i = 0; i < times; i++) {
      const loops = {
        ours: queryLoop(() => ours.manager.get('a').em as unknown as EntityManager),
        anchor: queryLoop(() => anchor.orm('a').em as EntityManager),
      };
      await new Promise((resolve) => setTimeout(resolve, 300));
      await server.stop();
      const stoppedAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, DOWN_MS));
      await server.start();
      const readyAt = performance.now();
      const healthy = await Promise.all([firstHealthy(ours, readyAt), firstHealthy(anchor, readyAt)]);
      // Wait for both loops' first success after the restart, then keep them running a little longer.
      await pollUntil(() => Object.values(loops).every((l) => l.records.some((r) => r.ok && r.startedAt >= readyAt)), POLL_MS, 30_000, 'queries after the restart');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await Promise.all(Object.values(loops).map((l) => l.stop()));
      (['ours', 'anchor'] as const).forEach((side, k) => {
        const records = loops[side].records;
        const firstOk = records.filter((r) => r.ok && r.endedAt >= readyAt).sort((a, b) => a.endedAt - b.endedAt)[0]!;
        outcomes[side].push({
          firstQueryMs: firstOk.endedAt - readyAt,
          firstHealthyMs: healthy[k]!,
          failedAfterReady: records.filter((r) => !r.ok && r.startedAt >= readyAt).length,
          failedWhileDown: records.filter((r) => !r.ok && r.startedAt >= stoppedAt && r.startedAt < readyAt).length,
        });
      });
    }
  } finally {
    await ours.close();
    await anchor.close();
  }
  return outcomes;
}

/** ms from `since` until a GET /health of `app` answers 200 (polled every POLL_MS). */
async function firstHealthy(app: BenchApp, since: number): Promise<number> {
  for (;;) {
    const answer = await app.http.get('/health', 10_000).catch(() => undefined);
    if (answer?.status === 200) return performance.now() - since;
    if (performance.now() - since > 60_000) throw new Error('no /health 200 within 60 s of the restart');
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

interface BlackHoleSide {
  outcome: string;
  ms: number;
  timeText: string;
  health: string;
  sockets: number;
  /** Server connections this side still holds afterwards (to the healthy database). */
  serverConnections?: number;
}

async function startupWithBlackHole(server: TestPostgres): Promise<Record<Side, BlackHoleSide>> {
  const proxies = { ours: await startTcpProxy({ host: server.host, port: server.port }), anchor: await startTcpProxy({ host: server.host, port: server.port }) };
  const viaProxy = (proxy: TcpProxy) => server.url.replace(`:${server.port}/`, `:${proxy.port}/`);
  proxies.ours.blackhole();
  proxies.anchor.blackhole();
  const before = await server.countConnections();
  try {
    // Both start at once: each waits on its own black hole, so neither slows the other.
    const [ours, anchor] = await Promise.all([
      measureStartup(
        () =>
          startOursApp({
            health_check_timeout: '500ms',
            connections: {
              a: { type: 'postgres', dsn: server.url },
              hole: { type: 'postgres', dsn: viaProxy(proxies.ours), critical: false, connect_timeout: OURS_CONNECT_TIMEOUT },
            },
          }),
        proxies.ours,
        Infinity,
      ),
      measureStartup(
        () =>
          startAnchorApp([
            { name: 'a', url: server.url },
            { name: 'hole', url: viaProxy(proxies.anchor) },
          ]),
        proxies.anchor,
        ANCHOR_STARTUP_CAP_MS,
      ),
    ]);
    // Ours names its connections after their application_name; whatever else appeared is the anchor's.
    ours.serverConnections = (await server.countConnections('a')) + (await server.countConnections('hole'));
    anchor.serverConnections = (await server.countConnections()) - before - ours.serverConnections;
    return { ours, anchor };
  } finally {
    // Destroying the proxies' sockets also ends whatever the anchor may still be waiting for.
    await proxies.ours.close();
    await proxies.anchor.close();
  }
}

async function measureStartup(start: () => Promise<OursApp | AnchorApp>, proxy: TcpProxy, capMs: number): Promise<BlackHoleSide> {
  const t = performance.now();
  const outcome = await capped(start(), capMs);
  const elapsed = performance.now() - t;
  const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
  if (outcome.timedOut) {
    await settle();
    return { outcome: 'still starting at the cap', ms: elapsed, timeText: `> ${ms(capMs)}`, health: 'n/a (not started)', sockets: proxy.openSockets };
  }
  if ('error' in outcome) {
    await settle();
    const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
    const reason = message.split('\n')[0]!;
    return { outcome: `failed: ${reason.length > 60 ? `${reason.slice(0, 60)}…` : reason}`, ms: elapsed, timeText: ms(elapsed), health: 'n/a (not started)', sockets: proxy.openSockets };
  }
  const app = outcome.value;
  const answer = await app.http.get('/health');
  const status = (JSON.parse(answer.body) as { status?: string }).status;
  await app.close();
  await settle();
  return { outcome: 'started', ms: elapsed, timeText: ms(elapsed), health: `${answer.status} ${status} in ${ms(answer.ms)}`, sockets: proxy.openSockets };
}

/** The installed @mikro-orm/nestjs (7.x beside MikroORM 7, 6.x on the MikroORM 6 leg). */
function anchorVersion(): string {
  return (createRequire(__filename)('@mikro-orm/nestjs/package.json') as { version: string }).version;
}
