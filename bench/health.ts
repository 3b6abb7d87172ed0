import type { TestPostgres } from '../test/support/embedded-postgres';
import { startTcpProxy, type TcpProxy } from '../test/support/tcp-proxy';
import { type AnchorApp, type BenchApp, type OursApp, startAnchorApp, startOursApp } from './support/apps';
import type { Report } from './support/report';
import { median, ms, percentile, ratio } from './support/stats';
import { capped, interleave } from './support/timing';

// Section 3: /health over real HTTP, ours (DbHealthIndicator.checkAll) against the anchor (MikroOrmHealthIndicator per context).

const BLACK_HOLE_TIMEOUT_MS = 500;
const CLOSE_CAP_MS = 10_000;

interface Series {
  latencies: number[];
  statuses: Map<number, number>;
}

export interface HealthSettings {
  rounds: number;
  /** Requests per round and app, by connection count. */
  requests: Record<number, number>;
  blackHoleRounds: number;
  blackHoleRequests: number;
}

export async function health(report: Report, server: TestPostgres, settings: HealthSettings): Promise<void> {
  report.section(
    '3. `/health` latency',
    'Sequential `GET /health` over one keep-alive HTTP connection to an app listening on 127.0.0.1; both apps live at once, ' +
      `requests interleaved round-robin (${settings.rounds} rounds). Ours: \`health.check([() => db.checkAll()])\`; anchor: ` +
      "`health.check` with Terminus' `MikroOrmHealthIndicator.pingCheck` for every context. Lower is better.",
  );
  const rows: string[][] = [];
  for (const n of Object.keys(settings.requests).map(Number)) {
    const names = Array.from({ length: n }, (_, i) => `db${i + 1}`);
    const ours = await startOursApp({ connections: Object.fromEntries(names.map((name) => [name, { type: 'postgres', dsn: server.url }])) });
    const anchor = await startAnchorApp(names.map((name) => ({ name, url: server.url })));
    try {
      const series = await measure({ ours, anchor }, settings.rounds, settings.requests[n]!);
      rows.push(row(`${n} connections, all up`, series.ours, series.anchor));
      const p = (s: Series) => `p50 ${ms(median(s.latencies))} / p99 ${ms(percentile(s.latencies, 99))}`;
      report.summary(`\`/health\` with ${n} connections, lower is better`, p(series.ours), `@mikro-orm/nestjs + MikroOrmHealthIndicator: ${p(series.anchor)}`, `${ratio(median(series.ours.latencies), median(series.anchor.latencies))} (p50)`);
    } finally {
      await ours.close();
      await anchor.close();
    }
  }

  // One connection of four behind a proxy that starts swallowing everything once both apps are up.
  const oursProxy = await startTcpProxy({ host: server.host, port: server.port });
  const anchorProxy = await startTcpProxy({ host: server.host, port: server.port });
  const viaProxy = (proxy: TcpProxy) => server.url.replace(`:${server.port}/`, `:${proxy.port}/`);
  const names = ['db1', 'db2', 'db3', 'hole'];
  const ours = await startOursApp({
    health_check_timeout: BLACK_HOLE_TIMEOUT_MS,
    connections: Object.fromEntries(
      names.map((name) => [name, name === 'hole' ? { type: 'postgres', dsn: viaProxy(oursProxy), critical: false } : { type: 'postgres', dsn: server.url }]),
    ),
  });
  const anchor = await startAnchorApp(
    names.map((name) => ({ name, url: name === 'hole' ? viaProxy(anchorProxy) : server.url })),
    { healthTimeoutMs: BLACK_HOLE_TIMEOUT_MS },
  );
  try {
    oursProxy.blackhole();
    anchorProxy.blackhole();
    const series = await measure({ ours, anchor }, settings.blackHoleRounds, settings.blackHoleRequests);
    rows.push(row(`4 connections, 1 black-holed (timeout ${BLACK_HOLE_TIMEOUT_MS} ms)`, series.ours, series.anchor));
    const [oursClose, anchorClose] = await Promise.all([closeCapped(ours, oursProxy), closeCapped(anchor, anchorProxy)]);
    const statusOf = (s: Series) => [...s.statuses.keys()].join('/');
    report.summary(
      `\`/health\` with 1 of 4 connections black-holed (timeout ${BLACK_HOLE_TIMEOUT_MS} ms)`,
      `${statusOf(series.ours)} (degraded) in ≤ ${ms(Math.max(...series.ours.latencies))}`,
      `${statusOf(series.anchor)} in ≤ ${ms(Math.max(...series.anchor.latencies))}`,
      'both bounded by the timeout',
    );
    report.summary('…then `app.close()`: sockets left open to the black hole', `${oursClose.sockets} (${oursClose.text})`, `${anchorClose.sockets} (${anchorClose.text})`, '');
    report.table({
      headers: ['scenario', 'ours p50', 'ours p99', 'ours status', 'anchor p50', 'anchor p99', 'anchor status', 'ours ÷ anchor (p50)'],
      rows,
      numeric: [1, 2, 4, 5, 7],
    });
    report.note(
      `Black-holed case, ${settings.blackHoleRounds * settings.blackHoleRequests} requests per app: ours reports the black-holed ` +
        'connection (`critical: false`) as `degraded` with HTTP 200, bounded by its `health_check_timeout`; the anchor answers 503 ' +
        `after its ${BLACK_HOLE_TIMEOUT_MS} ms timeout. Then \`app.close()\`: ours ${oursClose.text} with ${oursClose.sockets} ` +
        `socket(s) left open to the black hole; the anchor was ${anchorClose.text} with ${anchorClose.sockets} open.`,
    );
  } finally {
    await oursProxy.close();
    await anchorProxy.close();
  }
}

async function measure(apps: { ours: BenchApp; anchor: BenchApp }, rounds: number, requests: number): Promise<Record<'ours' | 'anchor', Series>> {
  const series: Record<'ours' | 'anchor', Series> = { ours: newSeries(), anchor: newSeries() };
  for (const app of Object.values(apps)) for (let i = 0; i < Math.min(requests, 20); i++) await app.http.get('/health'); // warm-up
  await interleave(rounds, ['ours', 'anchor'] as const, async (variant) => {
    for (let i = 0; i < requests; i++) {
      const answer = await apps[variant].http.get('/health');
      series[variant].latencies.push(answer.ms);
      series[variant].statuses.set(answer.status, (series[variant].statuses.get(answer.status) ?? 0) + 1);
    }
  });
  return series;
}

function newSeries(): Series {
  return { latencies: [], statuses: new Map() };
}

function row(scenario: string, ours: Series, anchor: Series): string[] {
  const statuses = (s: Series) => [...s.statuses].map(([code, count]) => `${code}${s.statuses.size > 1 ? ` ×${count}` : ''}`).join(', ');
  return [
    scenario,
    ms(median(ours.latencies)),
    ms(percentile(ours.latencies, 99)),
    statuses(ours),
    ms(median(anchor.latencies)),
    ms(percentile(anchor.latencies, 99)),
    statuses(anchor),
    ratio(median(ours.latencies), median(anchor.latencies)),
  ];
}

/** Closes an app (waiting at most CLOSE_CAP_MS) and counts the sockets still open to its black hole. */
async function closeCapped(app: OursApp | AnchorApp, proxy: TcpProxy): Promise<{ text: string; sockets: number }> {
  const t = performance.now();
  const outcome = await capped(app.close(), CLOSE_CAP_MS);
  const elapsed = performance.now() - t;
  await new Promise((resolve) => setTimeout(resolve, 200)); // let socket closes reach the proxy
  const text = outcome.timedOut ? `still closing after ${ms(CLOSE_CAP_MS)}` : 'error' in outcome ? `failed after ${ms(elapsed)}` : `closed in ${ms(elapsed)}`;
  return { text, sockets: proxy.openSockets };
}
