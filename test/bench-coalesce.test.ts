import path from 'node:path';
import { launchFleet } from './helpers/processes';

const root = path.resolve(__dirname, '..');

/**
 * `fleet bench coalesce --quick` through the real CLI (2,000 jobs; 200 naive): the JSON line the README's
 * figures come from keeps its fields, and its counts hold. Speed is not asserted: the benchmark measures it.
 */
describe('fleet bench coalesce (smoke run, counts only)', () => {
  it('prints one JSON object last, with the figures issues #3 and #19 name and the configured batching', async () => {
    const { code, stdout, stderr } = await launchFleet(['bench', 'coalesce', '--quick', '--json'], {
      cwd: root,
      // The run reports what it is configured with: a setting given here must reach it.
      env: { EMBED_WORKER_CONCURRENCY: '1500', EMBED_BATCH_MAX_SIZE: '400', LOG_LEVEL: 'warn' },
    }).finished(180_000);
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
    // Issue #19: fixed against adaptive batching in the same run, light load, a step and heavy load.
    for (const k of [
      'rtt_ms',
      'light_p50_ms_fixed',
      'light_p50_ms_adaptive',
      'light_p99_ms_fixed',
      'light_p99_ms_adaptive',
      'step_p50_ms_fixed',
      'step_p50_ms_adaptive',
      'step_p99_ms_fixed',
      'step_p99_ms_adaptive',
      'heavy_jobs_per_s_fixed',
      'heavy_jobs_per_s_adaptive',
      'heavy_calls_per_job_fixed',
      'heavy_calls_per_job_adaptive',
    ]) {
      expect(typeof r[k]).toBe('number');
    }
    expect(r).toMatchObject({ target_ms: 100, light_rate_jobs_per_s: 20, light_jobs: 40, step_jobs: 1_040, heavy_jobs: 4_000 });
    expect(typeof r.light_target_met).toBe('boolean');
    expect(r.rtt_ms as number).toBeGreaterThanOrEqual(100); // the local warehouse's configured round trip
    // Counts: at most one statement per job under light load; the pre-filled heavy load in batches of at most
    // EMBED_BATCH_MAX_SIZE (400) in either mode, at most one statement per 100 jobs.
    expect(r.light_calls_per_job_adaptive as number).toBeLessThanOrEqual(1);
    expect(r.heavy_calls_per_job_fixed as number).toBeLessThanOrEqual(0.01);
    expect(r.heavy_calls_per_job_adaptive as number).toBeLessThanOrEqual(0.01);
    expect(r.heavy_calls_per_job_adaptive as number).toBeGreaterThanOrEqual(Math.ceil(2_000 / 400) / 2_000);
    // Linux: the other processes' CPU is read from /proc.
    if (process.platform === 'linux') {
      expect(typeof r.redis_cpu_us_per_job).toBe('number');
      expect(typeof r.local_warehouse_cpu_us_per_job).toBe('number');
    }
  }, 210_000);
});
