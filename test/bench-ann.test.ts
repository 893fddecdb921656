import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runAnnBench } from '../src/bench/ann';
import { orthonormalColumns } from '../src/bench/ann-datasets';
import { launchFleet } from './helpers/processes';
import { testRedisUrl } from './helpers/redis';

/** Smoke run of `fleet bench ann` at a small size: every figure the issue asks for is there, and sane. */
describe('ann benchmark (smoke)', () => {
  let cacheDir: string;
  beforeAll(() => {
    cacheDir = mkdtempSync(path.join(os.tmpdir(), 'fleet-ann-cache-'));
  });
  afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

  it('reports raw USearch next to the fleet path, the ef curve, concurrency and filters; the ground truth is cached', async () => {
    const opts = {
      dataset: 'hard' as const,
      n: 2_000,
      dims: 64,
      queries: 40,
      efSweep: [8, 64],
      concurrency: 20,
      concurrentQueries: 200,
      filterQueries: 10,
      replica: false,
      cacheDir,
      redisUrl: testRedisUrl(),
    };
    const r = await runAnnBench(opts);
    for (const key of [
      'n',
      'recall_at_10',
      'p50_ms',
      'raw_p50_ms',
      'speedup_vs_exact',
      'serial_qps',
      'coalesced_qps',
      'serial_p99_ms',
      'coalesced_p99_ms',
      'fleet_vs_raw_p50',
    ]) {
      expect(typeof r[key]).toBe('number');
    }
    expect(r.n).toBe(2_000);
    expect(r.truth_cached).toBe(false);
    const sweep = r.ef_sweep as { ef: number; recall_at_10: number; raw_recall_at_10: number }[];
    expect(sweep.map((p) => p.ef)).toEqual([8, 64]);
    expect(sweep[1].recall_at_10).toBeGreaterThanOrEqual(sweep[0].recall_at_10);
    expect(sweep[1].recall_at_10).toBe(sweep[1].raw_recall_at_10); // same graph, same ef: same answers
    expect(r.recall_at_10 as number).toBeGreaterThan(0.9);
    expect(r.coalesced_recall_at_10).toBe(r.recall_at_10);
    const filtered = r.filtered as { filter: string; recall_at_10: number; matching: number }[];
    expect(filtered.map((f) => f.filter)).toEqual(['tenant 1%', 'tenants 10%', 'time 50%', 'deal 0.01%']);
    expect(filtered[2].matching).toBe(1_000);
    expect(filtered[2].recall_at_10).toBeGreaterThan(0.9);
    // the one deal (n / 10,000 = 1 item here) is answered exactly; the same filters over-fetching only and exact only are reported too
    expect(filtered[3]).toMatchObject({ matching: 1, recall_at_10: 1, short_answers: 0 });
    const overfetch = r.filtered_overfetch as { filter: string; matching: number }[];
    const exactOnly = r.filtered_exact as { filter: string; recall_at_10: number }[];
    expect(overfetch.map((f) => f.filter)).toEqual(filtered.map((f) => f.filter));
    expect(overfetch.map((f) => f.matching)).toEqual(filtered.map((f) => f.matching));
    for (const f of exactOnly) expect(f.recall_at_10).toBeGreaterThanOrEqual(0.99); // f16 rows against float32 truth: ties may swap
    expect(r.vector_file_bytes).toBe((2_000 + 1) * (64 * 2 + 1)); // f16 rows by key (nextKey 2,001) plus a presence byte each
    expect(readdirSync(cacheDir)).toEqual([expect.stringMatching(/^hard-2000-40-64-s42\.gt-k10\.u64$/)]);
    const again = await runAnnBench({ ...opts, efSweep: [], concurrency: 0, filterQueries: 0 });
    expect(again.truth_cached).toBe(true);
    expect(again.recall_at_10).toBe(r.recall_at_10);
  }, 180_000);

  it('the GloVe map keeps distances: its columns are orthonormal', () => {
    const m = orthonormalColumns(768, 100, 43);
    let worst = 0;
    for (let a = 0; a < 100; a += 7) {
      for (let b = 0; b < 100; b += 3) {
        let dot = 0;
        for (let r = 0; r < 768; r++) dot += m[r * 100 + a] * m[r * 100 + b];
        worst = Math.max(worst, Math.abs(dot - (a === b ? 1 : 0)));
      }
    }
    expect(worst).toBeLessThan(1e-9);
  });
});

/** `fleet bench ann --dataset glove`, run as a user runs it: real GloVe vectors, the figures issue #20 names. */
describe('fleet bench ann --dataset glove (CLI smoke run)', () => {
  const root = path.resolve(__dirname, '..');

  it('prints one JSON line with the GloVe figures, raw USearch beside the fleet, and the concurrency run', async () => {
    const { code, stdout, stderr } = await launchFleet(['bench', 'ann', '--dataset', 'glove', '--n', '2000', '--quick', '--json'], {
      cwd: root,
      env: { LOG_LEVEL: 'warn' },
    }).finished(180_000);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(r).toMatchObject({ dataset: 'glove', n: 2_000, dims: 768, queries: 100 });
    for (const k of ['recall_at_10', 'p50_ms', 'raw_p50_ms', 'speedup_vs_exact', 'serial_qps', 'coalesced_qps', 'serial_p99_ms', 'coalesced_p99_ms']) {
      expect({ k, type: typeof r[k] }).toEqual({ k, type: 'number' });
    }
    expect((r.ef_sweep as unknown[]).length).toBeGreaterThan(1);
  }, 180_000);

  it('refuses --dataset and --n for other benchmarks, and an --n that is no count, before anything runs', async () => {
    const other = await launchFleet(['bench', 'pool', '--n', '5'], { cwd: root }).finished(30_000);
    expect([other.code, other.stderr.trim()]).toEqual([2, 'fleet bench: --dataset and --n apply to the ann benchmark only']);
    const bad = await launchFleet(['bench', 'ann', '--n', 'lots'], { cwd: root }).finished(30_000);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, 'fleet bench: --n must be an integer from 100 to 10000000, got "lots"']);
  });
});
