import type { LocalWarehouse } from 'local-snowflake';
import { createProducer } from '../src/producers';
import { countIndexEffects, faultReplicaEnv, type Replica, reportFault, startReplica } from './helpers/faults';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Fault 1 of the reliability suite: a worker replica (the real CLI, its own process) is SIGKILLed in the
 * middle of batches, ten times, during a run of 5,000 embedding jobs that each upsert into the index.
 * Stalled-job recovery runs the killed replica's jobs again on the next one, so some jobs run twice; the
 * promise is that every job completes and every index upsert is in the log exactly once.
 */
const JOBS = 5_000;
const KILLS = 10;

let warehouse: LocalWarehouse;
beforeAll(async () => {
  // A warehouse round trip long enough that a batch is in flight most of the time.
  warehouse = await startTestWarehouse({ queryLatencyMs: 150, deals: 100 });
});
afterAll(() => warehouse.close());

describe('fault: SIGKILL a worker mid-batch, ten times, during 5,000 jobs', () => {
  it('every job completes; every index upsert happens exactly once', async () => {
    const prefix = uniquePrefix('fault-kill');
    const env = faultReplicaEnv(prefix, warehouse.url, {
      REDIS_URL: testRedisUrl(),
      // A job may be held by several of the killed replicas; ten kills must not fail it for stalling.
      WORKER_MAX_STALLED_COUNT: '20',
    });
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    const queue = producer.queue('embeddings');
    const replicas: Replica[] = [];
    const spawnReplica = () => {
      const r = startReplica(env);
      replicas.push(r);
      return r;
    };
    try {
      const texts = Array.from({ length: JOBS }, (_, i) => `fault suite kill note ${i}: renewal risk for account ${i % 97}`);
      const handles = await producer.embed(texts, { index: texts.map((_, i) => ({ namespace: 'faults', id: `doc-${i}` })) });
      expect(handles).toHaveLength(JOBS);

      let current = spawnReplica();
      const killedWhileActive: number[] = [];
      for (let k = 0; k < KILLS; k++) {
        // Mid-batch: this replica has completed jobs since it started (so it is working) and holds more.
        const { completed: base } = await queue.getJobCounts('completed');
        await waitUntil(
          `replica ${k + 1} to be mid-batch`,
          async () => {
            const c = await queue.getJobCounts('completed', 'active');
            return c.completed >= base + 150 && c.active > 0;
          },
          { timeoutMs: 60_000, everyMs: 20 },
        );
        const { active } = await queue.getJobCounts('active');
        await current.kill('SIGKILL');
        killedWhileActive.push(active);
        current = spawnReplica();
      }
      await waitUntil(
        'every job to finish',
        async () => {
          const c = await queue.getJobCounts('completed', 'failed');
          return c.completed + c.failed >= JOBS;
        },
        { timeoutMs: 120_000, everyMs: 100 },
      );

      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed');
      const effects = await countIndexEffects(redis, prefix);
      const jobs = await queue.getJobs(['completed'], 0, JOBS);
      const reRun = jobs.filter((j) => j.stalledCounter > 0 || j.attemptsStarted > 1).length;
      reportFault({
        fault: `SIGKILL mid-batch x${KILLS}`,
        accepted: JOBS,
        completed: counts.completed,
        failed: counts.failed,
        duplicatedEffects: effects.duplicated,
        detail: `${reRun} jobs ran again after a kill; active at each kill: ${killedWhileActive.join(',')}; index log entries ${effects.entries}`,
      });

      expect(killedWhileActive.every((n) => n > 0)).toBe(true);
      expect(counts).toEqual({ completed: JOBS, failed: 0, active: 0, waiting: 0, delayed: 0 });
      // The kills really made jobs run twice; their effects still happened once.
      expect(reRun).toBeGreaterThan(0);
      expect({ jobs: effects.jobs, entries: effects.entries, duplicated: effects.duplicated }).toEqual({ jobs: JOBS, entries: JOBS, duplicated: 0 });
      const ids = new Set(jobs.map((j) => j.id!));
      expect([...effects.perJob.keys()].every((id) => ids.has(id))).toBe(true);
    } finally {
      for (const r of replicas) await r.kill('SIGKILL');
      await producer.close();
      await redis.quit();
    }
  }, 240_000);
});
