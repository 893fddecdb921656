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

  it("sets the performance review's two tiers: API 500/1000 ms, warehouse query 200/500 ms, memory 2000/4000 MiB, cache hit ratio 0.7/0.5", () => {
    const tier = (name: string) => rule(name).labels?.severity;
    expect(rule('FleetSlowApiResponses').expr).toMatch(/histogram_quantile\(0\.99,[\s\S]*fleet_http_request_duration_ms_bucket[\s\S]*> 500\s*$/);
    expect(tier('FleetSlowApiResponses')).toBe('warning');
    expect(rule('FleetApiResponsesCritical').expr).toMatch(/histogram_quantile\(0\.99,[\s\S]*fleet_http_request_duration_ms_bucket[\s\S]*> 1000\s*$/);
    expect(tier('FleetApiResponsesCritical')).toBe('critical');
    expect(rule('FleetSlowWarehouseQueries').expr).toMatch(/fleet_warehouse_call_duration_ms_bucket[\s\S]*> 200\s*$/);
    expect(tier('FleetSlowWarehouseQueries')).toBe('warning');
    expect(rule('FleetWarehouseQueriesCritical').expr).toMatch(/fleet_warehouse_call_duration_ms_bucket[\s\S]*> 500\s*$/);
    expect(tier('FleetWarehouseQueriesCritical')).toBe('critical');
    expect(rule('FleetMemoryHigh').expr).toMatch(/fleet_process_resident_memory_bytes > 2000 \* 1024 \* 1024\s*$/);
    expect(tier('FleetMemoryHigh')).toBe('warning');
    expect(rule('FleetMemoryCritical').expr).toMatch(/fleet_process_resident_memory_bytes > 4000 \* 1024 \* 1024\s*$/);
    expect(tier('FleetMemoryCritical')).toBe('critical');
    expect(rule('FleetCacheHitRatioLow').expr).toMatch(/fleet_cache_hits_total[\s\S]*fleet_cache_misses_total[\s\S]*< 0\.7\s*$/);
    expect(tier('FleetCacheHitRatioLow')).toBe('warning');
    expect(rule('FleetCacheHitRatioCritical').expr).toMatch(/fleet_cache_hits_total[\s\S]*fleet_cache_misses_total[\s\S]*< 0\.5\s*$/);
    expect(tier('FleetCacheHitRatioCritical')).toBe('critical');
    // The review's targets, as warnings: API p95 under 200 ms, pool under 80 % busy.
    const p95 = rule('FleetApiLatencyP95High').expr;
    expect(p95).toMatch(/histogram_quantile\(0\.95,/);
    expect(p95).toMatch(/> 200\s*$/);
    expect(rule('FleetPoolUtilisationHigh').expr).toMatch(/fleet_pool_borrowed[\s\S]*\/ fleet_pool_max > 0\.8\s*$/);
  });

  it('a job alert uses the slow-job threshold the processes log with; slow queries are logged below the query warning', () => {
    expect(rule('FleetSlowJobs').expr).toMatch(new RegExp(`fleet_job_duration_ms_bucket[\\s\\S]*> ${DEFAULT_SLOW_THRESHOLDS.jobMs}\\s*$`));
    expect(rule('FleetSlowApiResponses').expr).toMatch(new RegExp(`> ${DEFAULT_SLOW_THRESHOLDS.apiResponseMs}\\s*$`));
    // A query over 100 ms is logged (and counted) as slow before the 200 ms warning fires on the p95.
    expect(DEFAULT_SLOW_THRESHOLDS.warehouseQueryMs).toBeLessThan(200);
  });
});
