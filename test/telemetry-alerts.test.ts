import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ALL_METRIC_NAMES, createMetricsRegistry, DEFAULT_SLOW_THRESHOLDS } from '../src/telemetry';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const FILE = path.join(__dirname, '..', 'ops', 'prometheus', 'alerts.yml');
const doc = parse(readFileSync(FILE, 'utf8'), { strict: true, uniqueKeys: true }) as { groups: { name: string; rules: Rule[] }[] };
const rules = doc.groups.flatMap((g) => g.rules);
const rule = (name: string) => {
  const r = rules.find((x) => x.alert === name);
  if (!r) throw new Error(`no alert ${name} in ${FILE}`);
  return r;
};
/** Metric names in a PromQL expression (the fleet's all start with `fleet_`). */
const metricsIn = (expr: string) => [...expr.matchAll(/\bfleet_[a-z0-9_]+/g)].map((m) => m[0]);
const baseName = (series: string) => series.replace(/_(bucket|sum|count)$/, '');

describe('ops/prometheus/alerts.yml', () => {
  it('is valid YAML in the Prometheus rule-file shape', () => {
    expect(Array.isArray(doc.groups)).toBe(true);
    const groupNames = doc.groups.map((g) => g.name);
    expect(new Set(groupNames).size).toBe(groupNames.length);
    const alertNames = rules.map((r) => r.alert);
    expect(new Set(alertNames).size).toBe(alertNames.length);
    for (const r of rules) {
      expect(Object.keys(r).sort()).toEqual(expect.arrayContaining(['alert', 'expr']));
      for (const key of Object.keys(r)) expect(['alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations']).toContain(key);
      expect(r.alert).toMatch(/^[A-Z][A-Za-z0-9]+$/);
      expect(typeof r.expr).toBe('string');
      if (r.for) expect(r.for).toMatch(/^\d+[smh]$/);
      expect(['warning', 'critical']).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toBeTruthy();
      expect(r.annotations?.description).toBeTruthy();
      // brackets balance in every expression
      for (const [open, close] of [
        ['(', ')'],
        ['[', ']'],
        ['{', '}'],
      ]) {
        let depth = 0;
        for (const ch of r.expr) {
          if (ch === open) depth++;
          if (ch === close) depth--;
          expect(depth).toBeGreaterThanOrEqual(0);
        }
        expect({ alert: r.alert, bracket: open, depth }).toEqual({ alert: r.alert, bracket: open, depth: 0 });
      }
    }
  });

  it('names only metrics the code registers', () => {
    const registered = new Set<string>(ALL_METRIC_NAMES);
    for (const r of rules) {
      const names = metricsIn(r.expr);
      expect({ alert: r.alert, usesMetrics: names.length > 0 }).toEqual({ alert: r.alert, usesMetrics: true });
      for (const series of names) {
        const known = registered.has(series) || registered.has(baseName(series));
        expect({ alert: r.alert, series, known }).toEqual({ alert: r.alert, series, known: true });
      }
    }
  });

  it('names series the Prometheus endpoint really exposes (histogram _bucket/_count, counter _total)', async () => {
    const registry = createMetricsRegistry();
    const m = registry.metrics;
    m.job('q', 1, 1, false);
    m.batch(1, 1, true);
    m.warehouseCall('op', 1, false, 'X');
    m.workflow(1, true);
    m.httpRequest('GET', '/v1/x', 200, 1);
    m.backlogRejected('q');
    m.observeQueues([{ name: 'q', getJobCounts: async () => ({ waiting: 1 }) }]);
    m.observePool(() => ({ size: 1, borrowed: 1, available: 0, pending: 0, max: 1 }));
    m.observeCache(() => [{ tier: 'l1', hits: 1, misses: 1 }]);
    m.observeIndex(() => ({ vectors: 1, snapshotVersion: 1 }));
    try {
      const text = await registry.endpoint.render();
      const exposed = new Set(
        text
          .split('\n')
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => l.split(/[{\s]/)[0]),
      );
      for (const r of rules)
        for (const series of metricsIn(r.expr))
          expect({ alert: r.alert, series, exposed: exposed.has(series) }).toEqual({ alert: r.alert, series, exposed: true });
    } finally {
      await registry.shutdown();
    }
  });

  it('uses the same thresholds as the slow-operation log, plus p95 API latency, cache hit ratio and pool utilisation', () => {
    expect(rule('FleetSlowWarehouseQueries').expr).toMatch(
      new RegExp(`fleet_warehouse_call_duration_ms_bucket[\\s\\S]*> ${DEFAULT_SLOW_THRESHOLDS.warehouseQueryMs}\\s*$`),
    );
    expect(rule('FleetSlowJobs').expr).toMatch(new RegExp(`fleet_job_duration_ms_bucket[\\s\\S]*> ${DEFAULT_SLOW_THRESHOLDS.jobMs}\\s*$`));
    expect(rule('FleetSlowApiResponses').expr).toMatch(
      new RegExp(`fleet_http_request_duration_ms_bucket[\\s\\S]*> ${DEFAULT_SLOW_THRESHOLDS.apiResponseMs}\\s*$`),
    );
    const p95 = rule('FleetApiLatencyP95High').expr;
    expect(p95).toMatch(/histogram_quantile\(0\.95,/);
    expect(p95).toMatch(/> 200\s*$/);
    expect(rule('FleetCacheHitRatioLow').expr).toMatch(/fleet_cache_hits_total[\s\S]*fleet_cache_misses_total[\s\S]*< 0\.7\s*$/);
    expect(rule('FleetPoolUtilisationHigh').expr).toMatch(/fleet_pool_borrowed[\s\S]*\/ fleet_pool_max > 0\.8\s*$/);
  });
});
