import path from 'node:path';
import { launchFleet } from './helpers/processes';

const root = path.resolve(__dirname, '..');

/**
 * `fleet bench coalesce --quick` through the real CLI (2,000 jobs; 200 naive): the JSON line the README's
 * figures come from keeps its fields, and its counts hold. Speed is not asserted: the benchmark measures it.
 */
describe('fleet bench coalesce (smoke run, counts only)', () => {
  it('prints one JSON object last, with the figures issue #3 names and the configured batching', async () => {
    const { code, stdout, stderr } = await launchFleet(['bench', 'coalesce', '--quick', '--json'], {
      cwd: root,
      // The run reports what it is configured with: a setting given here must reach it.
      env: { EMBED_WORKER_CONCURRENCY: '1500', EMBED_BATCH_MAX_SIZE: '400', LOG_LEVEL: 'warn' },
    }).finished(120_000);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    for (const k of [
      'noop_jobs_per_s',
      'naive_jobs_per_s',
      'coalesced_jobs_per_s',
      'speedup_vs_naive',
      'fraction_of_noop',
      'warehouse_calls_per_job',
      'p50_job_latency_ms',
      'p99_job_latency_ms',
      'worker_cpu_us_per_job',
      'machine_cpu_busy',
    ]) {
      expect(typeof r[k]).toBe('number');
    }
    expect(r).toMatchObject({ bench: 'coalesce', jobs: 2_000, naive_jobs_measured: 200, worker_concurrency: 1500, max_batch_size: 400, pool_size: 8 });
    // Counts, not speed: the naive worker makes one statement per job, the coalescing one at most one per 100.
    expect(r.naive_warehouse_calls_per_job).toBe(1);
    expect(r.warehouse_calls_per_job as number).toBeLessThanOrEqual(0.01);
    expect(r.warehouse_calls as number).toBeGreaterThanOrEqual(Math.ceil(2_000 / 400));
    // The batches' results come back as Snowflake returns large ones: in chunk files.
    expect(r.result_chunk_bytes).toBe(100_000);
    expect(r.chunked_results as number).toBeGreaterThan(0);
    // Cost: the same texts need the same Cortex tokens either way; the naive worker holds the warehouse
    // for one round trip per job, so its warehouse share per job is larger.
    const credits = r.credits_per_1k_jobs as { naive: number; coalesced: number };
    const cortex = r.cortex_credits_per_1k_jobs as { naive: number; coalesced: number };
    expect(cortex.coalesced).toBeGreaterThan(0);
    expect(cortex.naive / cortex.coalesced).toBeGreaterThan(0.9);
    expect(cortex.naive / cortex.coalesced).toBeLessThan(1.1);
    expect(credits.naive).toBeGreaterThan(credits.coalesced);
    // Linux: the other processes' CPU is read from /proc.
    if (process.platform === 'linux') {
      expect(typeof r.redis_cpu_us_per_job).toBe('number');
      expect(typeof r.local_warehouse_cpu_us_per_job).toBe('number');
    }
  }, 150_000);
});
