import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ALL_METRIC_NAMES, METRIC_NAMES } from '../src/telemetry/metrics';

const FILE = path.join(__dirname, '..', 'ops', 'grafana', 'fleet-dashboard.json');

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
}

const dashboard = JSON.parse(readFileSync(FILE, 'utf8')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
};
const panels = dashboard.panels.filter((p) => p.type !== 'row');
const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** Metric names an expression reads, with the exporter's histogram suffixes removed. */
function metricsIn(expr: string): string[] {
  const names = expr.match(/\bfleet_[a-z0-9_]+/g) ?? [];
  return names.map((n) => n.replace(/_(bucket|sum|count)$/, ''));
}

describe('ops/grafana/fleet-dashboard.json', () => {
  it('is a Grafana dashboard with a stable uid, unique panel ids and a Prometheus datasource variable', () => {
    expect(dashboard.uid).toBe('warehouse-fleet');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')?.type).toBe('datasource');
    for (const p of panels) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, not a JS template
      expect({ panel: p.title, ds: p.datasource?.uid }).toEqual({ panel: p.title, ds: '${datasource}' });
      expect(p.targets?.length).toBeGreaterThan(0);
    }
  });

  it('lays panels out on the 24-column grid without overlaps', () => {
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const cell = `${i},${j}`;
          expect({ panel: p.title, cell, taken: cells.has(cell) }).toEqual({ panel: p.title, cell, taken: false });
          cells.add(cell);
        }
      }
    }
  });

  it('queries only metrics the fleet exports (src/telemetry/metrics.ts), with balanced PromQL', () => {
    const known = new Set<string>(ALL_METRIC_NAMES);
    for (const { panel, expr } of exprs) {
      const unknown = metricsIn(expr).filter((m) => !known.has(m));
      expect({ panel, unknown }).toEqual({ panel, unknown: [] });
      for (const [open, close] of [
        ['(', ')'],
        ['{', '}'],
        ['[', ']'],
      ]) {
        expect({ panel, expr, balanced: expr.split(open).length === expr.split(close).length }).toMatchObject({ balanced: true });
      }
      expect((expr.match(/"/g) ?? []).length % 2).toBe(0);
      // Every series is filtered by the namespace variable, so two fleets on one Prometheus stay apart.
      expect({
        panel,
        expr,
        namespaced: (expr.match(/\bfleet_[a-z0-9_]+\{/g) ?? []).length === (expr.match(/namespace=~"\$namespace"/g) ?? []).length,
      }).toMatchObject({ namespaced: true });
    }
  });

  it('covers queue depth, job rate, latency histograms, batch size, warehouse latency and errors, pool, cache and index', () => {
    const used = new Set(exprs.flatMap(({ expr }) => metricsIn(expr)));
    for (const m of [
      METRIC_NAMES.queueJobs,
      METRIC_NAMES.jobWait,
      METRIC_NAMES.jobDuration,
      METRIC_NAMES.batchSize,
      METRIC_NAMES.batchDuration,
      METRIC_NAMES.warehouseCallDuration,
      METRIC_NAMES.warehouseErrors,
      METRIC_NAMES.poolBorrowed,
      METRIC_NAMES.poolMax,
      METRIC_NAMES.cacheHits,
      METRIC_NAMES.cacheMisses,
      METRIC_NAMES.indexVectors,
    ]) {
      expect(used).toContain(m);
    }
    expect(exprs.some(({ expr }) => /histogram_quantile\(0\.95, sum by \(le/.test(expr))).toBe(true);
    // The backlog panel shows exactly what KEDA scales on.
    expect(exprs.some(({ expr }) => expr.includes('fleet_queue_jobs') && expr.includes('state=~"waiting|prioritized"'))).toBe(true);
  });
});
