import type { LocalWarehouse } from 'local-snowflake';
import { QUEUES } from '../src/contracts';
import { DEFAULT_FAIRNESS, TenantLanes } from '../src/fairness';
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
  it('loses no job: stalled jobs are recovered by another worker and all complete; no tenant slot stays taken', async () => {
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
      // Two tenants: the kill lands while both have jobs slotted, parked and running.
      const texts = Array.from({ length: 2000 }, (_, i) => `kill test note ${i}`);
      const handles = [
        ...(await producer.embed(texts, { tenant: 'bulk' })),
        ...(await producer.embed(
          Array.from({ length: 50 }, (_, i) => `kill test small ${i}`),
          { tenant: 'small' },
        )),
      ];
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
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'prioritized');
      expect(counts).toMatchObject({ completed: 2050, failed: 0, active: 0, waiting: 0, prioritized: 0 });
      // Releases the killed replica never sent leave slots of finished jobs; reconciliation (every worker
      // runs it; here at once, without the grace) frees them all.
      const lanes = new TenantLanes(redis, prefix, QUEUES.embeddings, DEFAULT_FAIRNESS);
      await lanes.reconcile(0);
      expect(await lanes.counts()).toEqual([]);
    } finally {
      await first.kill('SIGKILL');
      await second?.stop();
      await producer.close();
      await redis.quit();
    }
  });
});
