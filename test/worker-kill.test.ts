import type { LocalWarehouse } from 'local-snowflake';
import { createProducer } from '../src/producers';
import { type Replica, startReplica } from './helpers/faults';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse({ queryLatencyMs: 400 });
});
afterAll(() => server.close());

describe('a worker killed with SIGKILL mid-batch', () => {
  it('loses no job: stalled jobs are recovered by another worker and all complete', async () => {
    const prefix = uniquePrefix('kill');
    const env = {
      REDIS_URL: testRedisUrl(),
      FLEET_QUEUE_PREFIX: prefix,
      SNOWFLAKE_ACCESS_URL: server.url,
      LOG_LEVEL: 'warn',
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      EMBED_BATCH_MAX_WAIT_MS: '50',
      POOL_MAX: '2',
    };
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    const first = startReplica(env);
    let second: Replica | undefined;
    try {
      const texts = Array.from({ length: 2000 }, (_, i) => `kill test note ${i}`);
      const handles = await producer.embed(texts);
      const queue = producer.queue('embeddings');
      // Wait until the first worker is mid-batch: jobs active, some not yet completed.
      await waitUntil('the first worker to hold active jobs', async () => (await queue.getJobCounts('active')).active > 0, { everyMs: 50 });
      const before = await queue.getJobCounts('active', 'completed', 'waiting');
      expect(before.active).toBeGreaterThan(0);
      await first.kill('SIGKILL');
      second = startReplica(env);
      const results = await Promise.allSettled(handles.map((h) => h.result({ timeoutMs: 60_000 })));
      const failed = results.filter((r) => r.status === 'rejected');
      expect(failed).toHaveLength(0);
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting');
      expect(counts).toMatchObject({ completed: 2000, failed: 0, active: 0, waiting: 0 });
    } finally {
      await first.kill('SIGKILL');
      await second?.stop();
      await producer.close();
      await redis.quit();
    }
  });
});
