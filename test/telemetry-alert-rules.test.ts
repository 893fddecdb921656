import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';

/**
 * The alert rules checked and unit-tested by Prometheus' own promtool (Debian's `prometheus` package;
 * scripts/test-prereqs installs it): the rule file parses and each alert fires on the synthetic series
 * of ops/prometheus/alerts.test.yml, with the labels and annotations written there, and stays quiet on
 * the ones below its threshold.
 */
const DIR = path.join(__dirname, '..', 'ops', 'prometheus');

interface AlertTest {
  alertname: string;
  exp_alerts?: unknown[];
}
const rules = (parse(readFileSync(path.join(DIR, 'alerts.yml'), 'utf8')) as { groups: { rules: { alert: string }[] }[] }).groups.flatMap((g) => g.rules);
const unitTests = parse(readFileSync(path.join(DIR, 'alerts.test.yml'), 'utf8')) as { rule_files: string[]; tests: { alert_rule_test?: AlertTest[] }[] };

function promtool(...args: string[]) {
  // Fails with the command that installs it rather than with ENOENT.
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error('promtool is not installed: run scripts/test-prereqs (Debian: apt-get install -y prometheus)');
  return spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
}

describe('ops/prometheus/alerts.yml under promtool', () => {
  it('promtool check rules: every rule parses and is a valid alert', () => {
    const r = promtool('check', 'rules', 'alerts.yml');
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('promtool test rules: each alert fires on its synthetic series and not below its threshold', () => {
    expect(unitTests.rule_files).toEqual(['alerts.yml']);
    const r = promtool('test', 'rules', 'alerts.test.yml');
    expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
  });

  it('every alert has a case where it fires and one where it must stay quiet', () => {
    const cases = unitTests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of rules) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect({ alert, fires: mine.some((c) => (c.exp_alerts ?? []).length > 0), quiet: mine.some((c) => (c.exp_alerts ?? []).length === 0) }).toEqual({
        alert,
        fires: true,
        quiet: true,
      });
    }
  });

  it('a broken threshold makes promtool test rules fail (the unit tests can fail)', () => {
    // The same tests against a copy of the rules whose memory warning moved from 2000 to 3000 MiB.
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'fleet-alerts-'));
    try {
      const rulesText = readFileSync(path.join(DIR, 'alerts.yml'), 'utf8');
      expect(rulesText).toContain('> 2000 * 1024 * 1024');
      writeFileSync(path.join(tmp, 'alerts.yml'), rulesText.replace('> 2000 * 1024 * 1024', '> 3000 * 1024 * 1024'));
      copyFileSync(path.join(DIR, 'alerts.test.yml'), path.join(tmp, 'alerts.test.yml'));
      const r = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: tmp, encoding: 'utf8', timeout: 60_000 });
      expect(r.status).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/FAILED[\s\S]*FleetMemoryHigh/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
