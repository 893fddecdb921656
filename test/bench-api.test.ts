import path from 'node:path';
import { launchFleet } from './helpers/processes';

const root = path.resolve(__dirname, '..');

/**
 * `fleet bench api --quick` through the real CLI: the fleet's API and the bare-fastify baseline in one run,
 * the figures the README's row comes from. Counts and presence only: speed is what the benchmark measures.
 */
describe('fleet bench api (smoke run, counts only)', () => {
  it('prints one JSON object last, with the API and its baseline measured in the same run', async () => {
    const { code, stdout, stderr } = await launchFleet(['bench', 'api', '--quick', '--json'], { cwd: root, env: { LOG_LEVEL: 'warn' } }).finished(120_000);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    for (const k of ['rps', 'p99_ms', 'cpu_us_per_request', 'baseline_cpu_us_per_request', 'cpu_vs_baseline', 'baseline_rps', 'open_500_p99_ms']) {
      expect({ k, type: typeof r[k] }).toEqual({ k, type: 'number' });
    }
    // Every request of every phase was accepted, the baseline's included; each enqueued exactly one job.
    expect(r.errors).toBe(0);
    expect(r.statuses).toEqual({ 202: 1_000 });
    expect((r.baseline_open_loop as { errors: number }).errors).toBe(0);
    expect((r.open_loop as { errors: number; gc_pauses: number }[])[0]).toMatchObject({ errors: 0, gc_pauses: expect.any(Number) });
    // CPU is counted for the API's thread only (the clients run in their own): both figures are real.
    expect(r.cpu_us_per_request as number).toBeGreaterThan(0);
    expect(r.baseline_cpu_us_per_request as number).toBeGreaterThan(0);
  });
});
