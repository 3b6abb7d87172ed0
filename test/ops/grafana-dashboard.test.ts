import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRIC } from '../../lib';
import { REPO_ROOT } from '../support/build-once';

/**
 * ops/grafana/dashboard.json as Grafana's JSON model: a data-source and a `name` variable, every query filtered by
 * `name` and reading only our metrics, and a panel for each view the README promises. Whether each query returns
 * what it should is proven against a real Prometheus in test/e2e/prometheus.e2e.test.ts.
 */

interface Target {
  expr: string;
  legendFormat: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  title: string;
  type: string;
  datasource: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets: Target[];
}
interface Variable {
  name: string;
  type: string;
  query?: unknown;
  definition?: string;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: Variable[] };
  panels: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'ops/grafana/dashboard.json'), 'utf8')) as Dashboard;
const targets = dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ panel, ...target })));
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

describe('ops/grafana/dashboard.json', () => {
  it('is a Grafana dashboard with a data-source variable and a multi-value `name` variable listing the connections', () => {
    expect(dashboard).toMatchObject({ uid: 'nestjs-dbmanager', title: 'nestjs-dbmanager' });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const variables = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.name).toMatchObject({
      type: 'query',
      definition: 'label_values(dbmanager_connection_info, name)',
      multi: true,
      includeAll: true,
      allValue: '.+',
    });
  });

  it('queries the chosen data source, filters every per-connection query by $name and reads only our metrics', () => {
    const ours = new Set<string>(Object.values(METRIC));
    expect(targets.length).toBeGreaterThanOrEqual(12);
    for (const { panel, expr, datasource, legendFormat } of targets) {
      expect(panel.datasource, panel.title).toEqual(DATASOURCE);
      expect(datasource, panel.title).toEqual(DATASOURCE);
      expect(legendFormat, `${panel.title}: a legend`).toMatch(/\{\{\w+\}\}/);
      const metrics = [...expr.matchAll(/dbmanager_\w+/g)].map((m) => m[0]);
      expect(metrics.length, expr).toBeGreaterThan(0);
      for (const name of metrics) expect(ours.has(name) || ours.has(name.replace(/_(bucket|sum|count)$/, '')), `${panel.title}: ${name}`).toBe(true);
      // dbmanager_connections (per type) and the info series joined onto status have no connection to filter on.
      const perConnection = metrics.filter((m) => m !== METRIC.connections && m !== METRIC.info);
      const filtered = [...expr.matchAll(/dbmanager_\w+\{[^}]*name=~"\$name"[^}]*\}/g)].length;
      expect(filtered, `${panel.title}: ${expr}`).toBe(perConnection.length);
    }
  });

  it('shows status per connection, pool states, acquire p50/p99, waits, timeouts, reconnects and health-check time', () => {
    const uses = (pattern: RegExp) => targets.filter((t) => pattern.test(t.expr));
    expect(uses(/^dbmanager_connection_status\{/)).toHaveLength(1);
    expect(uses(/dbmanager_connection_pool_size/).map((t) => t.legendFormat)).toContain('{{name}} {{state}}');
    expect(uses(/histogram_quantile\(0\.5, .*dbmanager_connection_acquire_seconds_bucket/)).toHaveLength(1);
    expect(uses(/histogram_quantile\(0\.99, .*dbmanager_connection_acquire_seconds_bucket/)).toHaveLength(1);
    expect(uses(/rate\(dbmanager_connection_waits_total/)).toHaveLength(1);
    expect(uses(/rate\(dbmanager_connection_timeouts_total/)).toHaveLength(1);
    expect(uses(/dbmanager_reconnect_attempts_total/).map((t) => t.legendFormat)).toEqual(['{{name}} {{result}}']);
    expect(uses(/dbmanager_health_check_duration_seconds/).length).toBeGreaterThanOrEqual(1);
  });

  it('lays its panels out without overlap, each with a unique id', () => {
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    const cells = new Set<string>();
    for (const { title, gridPos: g } of dashboard.panels) {
      expect(g.x + g.w, title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });
});
