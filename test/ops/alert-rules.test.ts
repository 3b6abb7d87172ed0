import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { METRIC } from '../../lib';
import { REPO_ROOT } from '../support/build-once';
import { prometheusSkipReason, promtool } from '../support/prometheus-server';

/**
 * ops/prometheus/alerts.yaml as promtool sees it (`check rules` on the folder's *.yaml as a user globs it, and
 * `test rules` on tests/alerts_test.yaml), plus what promtool cannot know: every alert is tested firing and quiet,
 * names the connection in its summary, and points at a README section that exists.
 */

interface Rule {
  alert: string;
  expr: string;
  annotations: Record<string, string>;
}
interface RuleTests {
  rule_files: string[];
  tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
}

const dir = join(REPO_ROOT, 'ops/prometheus');
const rules = (parseYaml(readFileSync(join(dir, 'alerts.yaml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const ruleTests = parseYaml(readFileSync(join(dir, 'tests/alerts_test.yaml'), 'utf8')) as RuleTests;
const skipReason = prometheusSkipReason();
if (skipReason) console.log(`[alert-rules] promtool checks skipped: ${skipReason}`);

/** GitHub's heading anchor: lower case, punctuation dropped, each space a hyphen. */
const anchor = (heading: string): string =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

describe('ops/prometheus/alerts.yaml', () => {
  it.skipIf(skipReason)('passes promtool check rules on every *.yaml of the folder (rules files only, tests apart)', () => {
    // `promtool check rules ops/prometheus/*.yaml`: the shell's glob, spelled out; a unit-test file here would fail it.
    const yamlFiles = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(yamlFiles).toEqual(['alerts.yaml']);
    const { code, output } = promtool(['check', 'rules', ...yamlFiles], undefined, dir);
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(code, output).toBe(0);
  });

  it.skipIf(skipReason)('passes its promtool unit tests (tests/alerts_test.yaml), run from outside the folder', () => {
    // From the repository root: promtool resolves the test file's rule_files (../alerts.yaml) from the test file's folder.
    const { code, output } = promtool(['test', 'rules', 'ops/prometheus/tests/alerts_test.yaml'], undefined, REPO_ROOT);
    expect(output).toContain('SUCCESS');
    expect(code, output).toBe(0);
  });

  it('ships the seven alerts, each unit-tested firing and quiet', () => {
    expect(rules.map((r) => r.alert)).toEqual([
      'DbManagerCriticalConnectionDown',
      'DbManagerConnectionDown',
      'DbManagerPoolSaturated',
      'DbManagerAcquireSlow',
      'DbManagerAcquireTimeouts',
      'DbManagerReconnectsFailing',
      'DbManagerHealthCheckSlow',
    ]);
    expect(ruleTests.rule_files).toEqual(['../alerts.yaml']);
    const cases = ruleTests.tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(mine.some((c) => c.exp_alerts.length > 0), `${alert} fires in a test`).toBe(true);
      expect(mine.some((c) => c.exp_alerts.length === 0), `${alert} stays quiet in a test`).toBe(true);
    }
  });

  it('reads only our metric names, and waits rather than the pending gauge for saturation', () => {
    const ours = new Set<string>(Object.values(METRIC));
    for (const { alert, expr } of rules) {
      for (const [name] of expr.matchAll(/dbmanager_\w+/g)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        expect(ours.has(name) || ours.has(base), `${alert} uses ${name}`).toBe(true);
      }
    }
    const saturated = rules.find((r) => r.alert === 'DbManagerPoolSaturated')!.expr;
    expect(saturated).toContain(`rate(${METRIC.waits}[`);
    expect(saturated).not.toContain('pending');
  });

  it('names the connection in every summary and points every runbook at a README section that exists', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const anchors = new Set([...readme.matchAll(/^#{2,4} (.+)$/gm)].map((m) => anchor(m[1])));
    for (const { alert, annotations } of rules) {
      expect(annotations.summary, alert).toContain('{{ $labels.name }}');
      expect(annotations.description, alert).toContain('{{ $labels.name }}');
      const [, section] = /README\.md#(\S+)$/.exec(annotations.runbook) ?? [];
      expect(anchors.has(section), `${alert}: README.md#${section}`).toBe(true);
    }
  });
});
