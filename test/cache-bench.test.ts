import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { type PrivateRedis, startPrivateRedis } from '../src/app/redis-server';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');

describe('cache tiers benchmark (smoke run, counts only)', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    // Its own server: the benchmark reads server-wide commandstats for bus publishes.
    redis = await startPrivateRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('our batch path makes 2 round trips and 1 loader call per batch; bentocache one round trip per L1 miss', async () => {
    const opts = { keys: 200, batch: 100, batches: 3, samples: 50 };
    const { stdout } = await run(
      process.execPath,
      ['--require', path.join(root, 'test/fixtures/register-ts.js'), path.join(root, 'test/fixtures/cache-bench-child.ts'), redis.url, JSON.stringify(opts)],
      { cwd: root, timeout: 60_000 },
    );
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, number | string>;
    expect(r).toMatchObject({ batch_keys: 100, batch_l1_hits: 50, batch_l2_hits: 35, batch_misses: 15 });
    expect(r.tiered_round_trips_per_batch).toBe(2);
    expect(r.tiered_loader_calls_per_batch).toBe(1);
    expect(r.tiered_bus_publishes_per_batch).toBe(0);
    expect(r.tiered_redis_bytes_per_vector).toBe(3072);
    // bentocache: a GET per L1 miss (35 + 15) and a SET per loaded key (15), each its own request.
    expect(r.bento_round_trips_per_batch).toBe(65);
    expect(r.bento_bus_publishes_per_batch).toBe(15);
    expect(r.bento_redis_bytes_per_vector).toBeGreaterThan(4096);
    expect(r.bentocache_version).toBe('1.6.1');
    for (const k of [
      'tiered_batch_ms_p50',
      'bento_batch_ms_p50',
      'tiered_l1_hit_p50_us',
      'tiered_l2_hit_p50_ms',
      'bento_l1_hit_p50_us',
      'bento_l2_hit_p50_ms',
    ]) {
      expect(typeof r[k]).toBe('number');
    }
  });
});
