import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { type PrivateRedis, startPrivateRedis } from '../src/app/redis-server';
import { createProducer, type JobHandle } from '../src/producers';
import { countIndexEffects, faultReplicaEnv, type Replica, reportFault, startReplica } from './helpers/faults';
import { uniquePrefix } from './helpers/redis';
import { sleep, waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Fault of the reliability suite: Redis is down for 60 s while a producer keeps enqueueing. The producer
 * buffers (bounded, in memory) and flushes in order on reconnect; a real worker replica (the built CLI) then
 * runs everything. Every enqueue the producer accepted — before, during and after the outage — must run
 * exactly once (the jobs from before the outage have finished when it starts, so none is cut off mid-run): one job per id, one embedded text per job at the warehouse (the replica's cache is off, so a
 * second run would embed again) and one index-log entry per job.
 */
const OUTAGE_MS = 60_000;
const CHUNK = 20;

let warehouse: LocalWarehouse;
let dir: string;
let redisServer: PrivateRedis | undefined;
beforeAll(async () => {
  warehouse = await startTestWarehouse({ queryLatencyMs: 20, deals: 10 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-fault-producer-buffer-'));
});
afterAll(async () => {
  await redisServer?.stop();
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('fault: Redis down 60 s while producers buffer', () => {
  it('every buffered job runs once after recovery; nothing is refused, nothing doubled', async () => {
    redisServer = await startPrivateRedis({ appendOnly: true, dir });
    const port = redisServer.port;
    const prefix = uniquePrefix('fault-buffer');
    const replica: Replica = startReplica(faultReplicaEnv(prefix, warehouse.url, { REDIS_URL: redisServer.url, CACHE_ENABLED: 'false' }));
    const redis = new IORedis(redisServer.url, { maxRetriesPerRequest: null });
    const producer = createProducer({ connection: redis, prefix, onError: () => undefined });
    const accepted: JobHandle<unknown>[] = [];
    let refused = 0;
    let n = 0;
    const chunk = async () => {
      const texts = Array.from({ length: CHUNK }, () => `producer buffer fault note ${n++}`);
      try {
        accepted.push(...(await producer.embed(texts, { index: texts.map((_, i) => ({ namespace: 'faults', id: `doc-${n - CHUNK + i}` })) })));
      } catch {
        refused += CHUNK;
      }
    };
    try {
      const queue = producer.queue('embeddings');
      for (let i = 0; i < 10; i++) await chunk();
      // The first jobs finish before the outage: a job cut off mid-run by the outage would run again after it
      // (BullMQ's stalled-job recovery, at least once), and its second embedding would hide what this test
      // counts — whether an enqueue made during the outage runs more than once.
      await waitUntil('the jobs before the outage to complete', async () => (await queue.getJobCounts('completed')).completed === accepted.length, {
        timeoutMs: 60_000,
      });

      await redisServer.stop();
      redisServer = undefined;
      await waitUntil('the producer to see Redis gone', () => !producer.stats().connected);
      const downAt = Date.now();
      let peakBuffered = 0;
      while (Date.now() - downAt < OUTAGE_MS) {
        await chunk();
        peakBuffered = Math.max(peakBuffered, producer.stats().bufferedJobs);
        await sleep(500); // the scenario: a steady trickle of enqueues for the whole outage
      }
      const bufferedDuring = accepted.filter((h) => h.buffered).length;
      redisServer = await startPrivateRedis({ appendOnly: true, dir, port });
      const downMs = Date.now() - downAt;
      await Promise.all(accepted.map((h) => h.persisted));
      for (let i = 0; i < 10; i++) await chunk();

      await waitUntil(
        'every accepted job to finish',
        async () => {
          const c = await queue.getJobCounts('completed', 'failed');
          return c.completed + c.failed >= accepted.length;
        },
        { timeoutMs: 180_000, everyMs: 250 },
      );
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized');
      const states = await Promise.all(accepted.map((h) => queue.getJobState(h.id)));
      const effects = await countIndexEffects(redis, prefix);
      const embedded = warehouse.stats().embeddedTexts;
      reportFault({
        fault: 'Redis down 60 s, producer buffering',
        accepted: accepted.length,
        completed: states.filter((s) => s === 'completed').length,
        failed: counts.failed,
        duplicatedEffects: effects.duplicated,
        detail: `down ${downMs} ms; ${bufferedDuring} enqueues buffered (peak ${peakBuffered} held), flushed ${producer.stats().flushedJobs}, dropped ${producer.stats().droppedJobs}; ${refused} refused; warehouse embedded ${embedded} texts for ${accepted.length} jobs; index log entries ${effects.entries}`,
      });
      expect(refused).toBe(0);
      expect(bufferedDuring).toBeGreaterThan(0);
      expect(producer.stats()).toMatchObject({ bufferedJobs: 0, droppedJobs: 0, flushedJobs: bufferedDuring });
      expect(new Set(accepted.map((h) => h.id)).size).toBe(accepted.length);
      expect(states.filter((s) => s !== 'completed')).toEqual([]);
      expect(counts).toEqual({ completed: accepted.length, failed: 0, active: 0, waiting: 0, delayed: 0, prioritized: 0 });
      // Once each: a job run twice would embed its text twice (no cache) and append a second log entry.
      expect(embedded).toBe(accepted.length);
      expect({ entries: effects.entries, jobs: effects.jobs, duplicated: effects.duplicated }).toEqual({
        entries: accepted.length,
        jobs: accepted.length,
        duplicated: 0,
      });
      expect(replica.stopped()).toBe(false);
    } finally {
      await replica.kill('SIGKILL');
      await producer.close({ timeoutMs: 1_000 }).catch(() => undefined);
      redis.disconnect();
    }
  }, 300_000);
});
