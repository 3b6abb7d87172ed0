import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AppProcess, startApp } from '../support/app-process';
import { buildIfStale, REPO_ROOT } from '../support/build-once';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { type PrometheusServer, type PromSeries, prometheusSkipReason, promtool, startPrometheus } from '../support/prometheus-server';

/**
 * The shipped ops/ files against a real Prometheus (Debian's 2.42) scraping the sample app every second, as a user
 * runs it (`node sample-app/dist/main.js`, over HTTP only): every dashboard query and every alert expression is
 * evaluated through Prometheus' HTTP API while the app is loaded, while its critical PostgreSQL is stopped and once
 * it is back. The app's connections: primary (critical PostgreSQL this test owns, pool of 2), analytics (SQLite),
 * cache (SQLite :memory:, critical: false) and blackhole (critical: false PostgreSQL to a server that never answers).
 */

interface Dashboard {
  templating: { list: Array<{ name: string; type: string; definition?: string }> };
  panels: Array<{ title: string; targets: Array<{ expr: string; legendFormat: string }> }>;
}
interface AlertRule {
  alert: string;
  expr: string;
}

const skipReason = prometheusSkipReason();
if (skipReason) console.log(`[prometheus e2e] skipped: ${skipReason}`);

const JOB = 'dbmanager-sample';
const NAMES = ['primary', 'analytics', 'cache', 'blackhole'];
const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'ops/grafana/dashboard.json'), 'utf8')) as Dashboard;
const alertsFile = join(REPO_ROOT, 'ops/prometheus/alerts.yaml');
const rules = (parseYaml(readFileSync(alertsFile, 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }).groups.flatMap((g) => g.rules);
const alertExpr = (name: string): string => rules.find((r) => r.alert === name)!.expr;

/** Grafana's variables as Grafana would render them: `$name` a regex (`.+` = All), `$__rate_interval` a window. */
function render(expr: string, name: string): string {
  const rendered = expr.replaceAll('$__rate_interval', '1m').replaceAll('$name', name);
  expect(rendered, `${expr} uses a variable the test does not know`).not.toContain('$');
  return rendered;
}

/** Labels a legend shows (`{{name}} {{state}}` → name, state): each series of that query must carry them. */
const legendLabels = (legendFormat: string): string[] => [...legendFormat.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]);

const names = (series: PromSeries[]): string[] => [...new Set(series.map((s) => s.metric.name))].sort();

describe.skipIf(skipReason)('ops/ against a real Prometheus scraping the sample app', () => {
  let dir: string;
  let pg: TestPostgres;
  let blackHole: Server;
  const sockets = new Set<Socket>();
  let app: AppProcess;
  let prometheus: PrometheusServer;

  beforeAll(async () => {
    await buildIfStale();
    dir = mkdtempSync(join(tmpdir(), 'dbm-e2e-prometheus-'));
    pg = await startTestPostgres();
    // It reads, so the client's FIN is seen and no socket lingers (FINDINGS).
    blackHole = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const configPath = join(dir, 'config.yaml');
    writeFileSync(
      configPath,
      `dbmanager:
  default_connection: primary
  health_check_interval: 500ms
  retry_attempts: 2
  retry_delay: 100ms
  retry_max_delay: 500ms
  connections:
    primary:
      type: postgres
      dsn: ${JSON.stringify(pg.url)}
      max_open_conns: 2
      acquire_timeout: 2s
      connect_timeout: 1s
      health_check_timeout: 1s
    analytics:
      type: sqlite
      filepath: ${JSON.stringify(join(dir, 'analytics.db'))}
    cache:
      type: sqlite
      filepath: ":memory:"
      critical: false
    blackhole:
      type: postgres
      host: 127.0.0.1
      port: ${(blackHole.address() as { port: number }).port}
      user: nobody
      database: none
      critical: false
      connect_timeout: 1s
      health_check_timeout: 1s
`,
    );
    app = await startApp({ args: ['sample-app/dist/main.js'], cwd: REPO_ROOT, env: { PORT: '0', DBM_CONFIG: configPath } });
    prometheus = await startPrometheus({ job: JOB, targets: [new URL(app.baseUrl).host], ruleFiles: [alertsFile] });
    // First scrapes in: the target is up and our series are stored.
    await vi.waitFor(async () => expect(await prometheus.query(`up{job="${JOB}"} == 1 and on () dbmanager_connection_info{name="primary"}`)).toHaveLength(1), {
      timeout: 15_000,
      interval: 250,
    });
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    app?.kill();
    await pg?.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => (blackHole ? blackHole.close(resolve) : resolve(undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a live /metrics scrape gives promtool check metrics no warning about a dbmanager_* series', async () => {
    const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
    expect(text).toContain('dbmanager_connection_info{');
    const { output } = promtool(['check', 'metrics'], text);
    const ours = output.split('\n').filter((line) => line.includes('dbmanager'));
    expect(ours).toEqual([]);
  });

  it('under load (pool of 2, 30 callers, then one that times out) the pool, wait and timeout alerts’ expressions hold for primary', async () => {
    const hold = (ms: number) => fetch(`${app.baseUrl}/connections/primary/hold/${ms}`, { signal: AbortSignal.timeout(15_000) }).then((r) => r.status);
    // 30 callers for 2 connections: 28 wait (up to 1.4 s, inside acquire_timeout 2s).
    const queued = await Promise.all(Array.from({ length: 30 }, () => hold(100)));
    expect(queued.every((status) => status === 200)).toBe(true);
    // Three callers each hold 2.5 s: whichever comes third gives up after acquire_timeout (2 s).
    const tight = await Promise.all([hold(2_500), hold(2_500), hold(2_500)]);
    expect(tight.filter((status) => status === 200)).toHaveLength(2);

    for (const alert of ['DbManagerPoolSaturated', 'DbManagerAcquireSlow', 'DbManagerAcquireTimeouts']) {
      await expect.poll(() => prometheus.query(alertExpr(alert)).then(names), { timeout: 10_000, interval: 250, message: alert }).toEqual(['primary']);
    }
    // No `for:`: Prometheus itself fires it within an evaluation or two.
    await expect
      .poll(() => firing('DbManagerAcquireTimeouts'), { timeout: 10_000, interval: 250 })
      .toEqual([{ name: 'primary', type: 'postgres', job: JOB, severity: 'warning' }]);
  });

  it('the black-holed connection (critical: false) shows in the down, reconnect and health-check alerts, never in the critical one', async () => {
    for (const alert of ['DbManagerConnectionDown', 'DbManagerReconnectsFailing', 'DbManagerHealthCheckSlow']) {
      await expect.poll(() => prometheus.query(alertExpr(alert)).then(names), { timeout: 10_000, interval: 250, message: alert }).toEqual(['blackhole']);
    }
    const slow = await prometheus.query(alertExpr('DbManagerHealthCheckSlow'));
    expect(slow[0].metric).toMatchObject({ name: 'blackhole', type: 'postgres', job: JOB });
    expect(await prometheus.query(alertExpr('DbManagerCriticalConnectionDown'))).toEqual([]);
  });

  it('every dashboard query returns series carrying the labels its legend shows, for All and for one connection', async () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'name')!;
    expect(variable.definition).toBe('label_values(dbmanager_connection_info, name)');
    const values = await prometheus.api<string[]>(`/api/v1/label/name/values?match[]=dbmanager_connection_info`);
    expect([...values].sort()).toEqual([...NAMES].sort());

    const targets = dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ panel: panel.title, ...target })));
    expect(targets.length).toBeGreaterThanOrEqual(12);
    for (const { panel, expr, legendFormat } of targets) {
      for (const selected of ['.+', 'primary']) {
        const series = await prometheus.query(render(expr, selected));
        const what = `${panel}: ${expr} with name=${selected}`;
        expect(series.length, what).toBeGreaterThan(0);
        for (const s of series) for (const label of legendLabels(legendFormat)) expect(s.metric[label], `${what}: ${label}`).toBeTruthy();
        if (!legendLabels(legendFormat).includes('name')) continue;
        expect(names(series), what).toEqual(selected === 'primary' ? ['primary'] : [...NAMES].sort());
      }
    }
    // The load shows: primary's p99 acquire time is a real figure, well above a warm pool's.
    const p99 = dashboard.panels.flatMap((p) => p.targets).find((t) => t.legendFormat === '{{name}} p99' && t.expr.includes('acquire'))!;
    const [primaryP99] = await prometheus.query(render(p99.expr, 'primary'));
    expect(Number(primaryP99.value)).toBeGreaterThan(0.1);
    const status = await prometheus.query(render(dashboard.panels[0].targets[0].expr, '.+'));
    expect(Object.fromEntries(status.map((s) => [s.metric.name, s.metric.critical]))).toEqual({
      primary: 'true',
      analytics: 'true',
      cache: 'false',
      blackhole: 'false',
    });
  });

  it('while the critical server is stopped the critical-down expression holds for primary (pending in Prometheus), and clears once it is back', async () => {
    await pg.stop();
    const criticalDown = alertExpr('DbManagerCriticalConnectionDown');
    await expect.poll(() => prometheus.query(criticalDown).then(names), { timeout: 15_000, interval: 250 }).toEqual(['primary']);
    const [down] = await prometheus.query(criticalDown);
    expect(down.metric).toMatchObject({ name: 'primary', type: 'postgres', job: JOB });
    expect(await prometheus.query(alertExpr('DbManagerConnectionDown')).then(names)).toEqual(['blackhole', 'primary']);
    await expect.poll(() => alertState('DbManagerCriticalConnectionDown', 'primary'), { timeout: 10_000, interval: 250 }).toBe('pending');

    await pg.start();
    await expect.poll(() => prometheus.query(criticalDown).then(names), { timeout: 20_000, interval: 250 }).toEqual([]);
    const [back] = await prometheus.query('dbmanager_connection_status{name="primary"}');
    expect(back.value).toBe('1');
    await expect
      .poll(() => prometheus.query('increase(dbmanager_reconnect_attempts_total{name="primary",result="success"}[5m]) > 0').then(names), { timeout: 10_000, interval: 250 })
      .toEqual(['primary']);
  });

  it('Prometheus evaluated every shipped rule without an error, and stored no credential', async () => {
    const data = await prometheus.api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> }>('/api/v1/rules');
    const loaded = data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual(rules.map((r) => r.alert).sort());
    for (const rule of loaded) expect({ rule: rule.name, health: rule.health, lastError: rule.lastError ?? '' }).toEqual({ rule: rule.name, health: 'ok', lastError: '' });

    const series = await prometheus.query('{__name__=~"dbmanager_.+"}');
    expect(series.length).toBeGreaterThan(100);
    expect(JSON.stringify(series)).not.toContain(pg.password);
  });

  /** Labels of the firing alerts named `alertname`, but alertname and instance (a port that changes every run). */
  async function firing(alertname: string): Promise<Array<Record<string, string>>> {
    const { alerts } = await prometheus.api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>('/api/v1/alerts');
    return alerts
      .filter((a) => a.labels.alertname === alertname && a.state === 'firing')
      .map((a) => Object.fromEntries(Object.entries(a.labels).filter(([label]) => label !== 'alertname' && label !== 'instance')));
  }

  /** The state (`pending`, `firing`) of alert `alertname` for connection `name`, or undefined. */
  async function alertState(alertname: string, name: string): Promise<string | undefined> {
    const { alerts } = await prometheus.api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>('/api/v1/alerts');
    return alerts.find((a) => a.labels.alertname === alertname && a.labels.name === name)?.state;
  }
});
