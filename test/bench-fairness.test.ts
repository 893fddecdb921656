import path from 'node:path';
import { launchFleet } from './helpers/processes';

const root = path.resolve(__dirname, '..');

/**
 * `fleet bench fairness` (issue #19) through the real CLI, at smoke size (A: 2,000 jobs at once, B: 50 spread
 * over A's drain): the JSON line keeps the fields the issue names, its counts add up, and every job of every
 * phase completed exactly once with nothing left in the queue or in a tenant lane. Speed and latency ratios
 * are not asserted: the benchmark measures them.
 */
describe('fleet bench fairness (smoke run, counts only)', () => {
  it('prints one JSON object last with the figures issue #19 names, and every job of every phase completed once', async () => {
    const { code, stdout, stderr } = await launchFleet(['bench', 'fairness', '--a-jobs', '2000', '--b-jobs', '50', '--json'], {
      cwd: root,
      env: { LOG_LEVEL: 'warn' },
    }).finished(240_000);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const lines = stdout.trim().split('\n');
    // --json: the JSON object is the only stdout line; the progress and the table go to stderr.
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]) as Record<string, unknown>;
    for (const k of [
      'b_p50_ms_alone',
      'b_p99_ms_alone',
      'b_p50_ms_fifo',
      'b_p99_ms_fifo',
      'b_p50_ms_fair',
      'b_p99_ms_fair',
      'a_p50_ms_fifo',
      'a_p50_ms_fair',
      'jobs_per_s_fifo',
      'jobs_per_s_fair',
      'period_ms',
    ]) {
      expect(typeof r[k]).toBe('number');
    }
    for (const k of ['b_p99_target_met', 'throughput_target_met']) expect(typeof r[k]).toBe('boolean');
    expect(r).toMatchObject({
      bench: 'fairness',
      a_jobs: 2_000,
      b_jobs: 50,
      calibrate_jobs: 2_000,
      every_job_completed_once: true,
      // The production defaults: batches of 500 within 25 ms, 2,000 jobs held, pool 8, 64 slots per tenant.
      settings: { fair_slots: 64, worker_concurrency: 2_000, max_batch_size: 500, max_wait_ms: 25, pool_size: 8, enqueue_chunk: 10_000, cache: 'off' },
    });
    expect(stderr).toMatch(/^phase +B p50 ms +B p99 ms/m);

    // Exactly once, phase by phase: every id a producer returned completed once, nothing else completed, no
    // job failed or ran twice, nothing is left waiting or parked, and (fair) every tenant lane is empty.
    const jobs = { calibrate: 2_000, alone: 50, fifo: 2_050, fair: 2_050 };
    const completions = r.completions as Record<string, Record<string, number>>;
    expect(Object.keys(completions).sort()).toEqual(Object.keys(jobs).sort());
    for (const [phase, n] of Object.entries(jobs)) {
      expect({ phase, ...completions[phase] }).toEqual({
        phase,
        enqueued: n,
        once: n,
        missing: 0,
        duplicates: 0,
        unexpected: 0,
        failedAttempts: 0,
        extraRuns: 0,
        leftInQueue: 0,
        failedInRedis: 0,
        leftInLanes: 0,
      });
    }
    // Statements: B alone goes out (nearly) one text per statement; the mixed phases in batches of at most 500.
    const calls = r.warehouse_calls_per_job as Record<string, number>;
    expect(calls.alone).toBeGreaterThan(0);
    expect(calls.alone).toBeLessThanOrEqual(1);
    for (const phase of ['fifo', 'fair']) {
      expect(calls[phase]).toBeGreaterThanOrEqual(Math.ceil(2_050 / 500) / 2_050 - 1e-4);
      expect(calls[phase]).toBeLessThan(1);
    }
  }, 270_000);

  it('rejects --a-jobs and --b-jobs on other benchmarks, and sizes that are not positive integers', async () => {
    const other = await launchFleet(['bench', 'pool', '--a-jobs', '10'], { cwd: root }).finished(30_000);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/--a-jobs and --b-jobs apply to the fairness benchmark only/);
    const zero = await launchFleet(['bench', 'fairness', '--b-jobs', '0'], { cwd: root }).finished(30_000);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--b-jobs must be an integer from 1 to 100000/);
  });
});
