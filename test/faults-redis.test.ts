import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { type PrivateRedis, startPrivateRedis } from '../src/app/redis-server';
import { createProducer, type JobHandle } from '../src/producers';
import { countIndexEffects, type Replica, reportFault, startReplica } from './helpers/faults';
import { uniquePrefix } from './helpers/redis';
import { sleep, waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Fault 2 of the reliability suite: Redis itself restarts (AOF on, `appendfsync everysec`) while producers
 * enqueue and a worker replica processes. Its own redis-server, so no other test sees the restart.
 * Producers and workers must reconnect by themselves; every enqueue that was acknowledged must complete,
 * and no effect may be doubled.
 */
const CHUNKS = 40;
const PER_CHUNK = 100;

let warehouse: LocalWarehouse;
let dir: string;
let redisServer: PrivateRedis | undefined;
beforeAll(async () => {
  warehouse = await startTestWarehouse({ queryLatencyMs: 50, deals: 100 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-fault-redis-'));
});
afterAll(async () => {
  await redisServer?.stop();
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('fault: Redis restarts (AOF, everysec) during a run', () => {
  it('producers and workers reconnect by themselves; every accepted job completes; no effect is doubled', async () => {
    redisServer = await startPrivateRedis({ appendOnly: true, dir });
    const port = redisServer.port;
    const prefix = uniquePrefix('fault-redis');
    const replica: Replica = startReplica({
      REDIS_URL: redisServer.url,
      FLEET_QUEUE_PREFIX: prefix,
      SNOWFLAKE_ACCESS_URL: warehouse.url,
      LOG_LEVEL: 'warn',
      POOL_MIN: '0',
      POOL_MAX: '2',
      EMBED_BATCH_MAX_SIZE: '100',
      EMBED_BATCH_MAX_WAIT_MS: '20',
      EMBED_WORKER_CONCURRENCY: '200',
    });
    // The producer's connection as a service would hold it: commands wait for the reconnect (no per-request retry cap).
    const redis = new IORedis(redisServer.url, { maxRetriesPerRequest: null });
    const producer = createProducer({ connection: redis, prefix });
    const accepted: JobHandle<unknown>[] = [];
    let refused = 0;
    const refusals = new Set<string>();
    try {
      // Enqueue steadily; the restart happens in the middle of it.
      const enqueueing = (async () => {
        for (let c = 0; c < CHUNKS; c++) {
          const texts = Array.from({ length: PER_CHUNK }, (_, i) => `fault suite redis restart note ${c * PER_CHUNK + i}`);
          try {
            accepted.push(...(await producer.embed(texts, { index: texts.map((_, i) => ({ namespace: 'faults', id: `doc-${c * PER_CHUNK + i}` })) })));
          } catch (err) {
            refused += PER_CHUNK; // never acknowledged: the caller knows, nothing is promised
            refusals.add(String((err as Error).message).slice(0, 200));
          }
          await sleep(100); // the scenario: a steady trickle of enqueues, so the restart lands in the middle of it
        }
      })();
      await waitUntil('a quarter of the run to be accepted', () => accepted.length >= (CHUNKS * PER_CHUNK) / 4, { timeoutMs: 60_000 });
      const queue = producer.queue('embeddings');
      await waitUntil('the worker to be mid-run', async () => (await queue.getJobCounts('completed')).completed > 0, { timeoutMs: 60_000 });

      // Restart: SIGTERM (Redis rewrites nothing, fsyncs the AOF and exits), down for 2 s, same port and directory.
      const downAt = Date.now();
      await redisServer.stop();
      await sleep(2_000); // the scenario: Redis is down for 2 s
      redisServer = await startPrivateRedis({ appendOnly: true, dir, port });
      const downMs = Date.now() - downAt;
      await enqueueing;

      await waitUntil(
        'every accepted job to finish',
        async () => {
          const c = await queue.getJobCounts('completed', 'failed');
          return c.completed + c.failed >= accepted.length;
        },
        { timeoutMs: 120_000, everyMs: 100 },
      );
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed');
      const states = await Promise.all(accepted.map((h) => queue.getJobState(h.id)));
      const notCompleted = states.filter((s) => s !== 'completed').length;
      const effects = await countIndexEffects(redis, prefix);
      reportFault({
        fault: 'Redis restart (AOF everysec, SIGTERM)',
        accepted: accepted.length,
        completed: accepted.length - notCompleted,
        failed: counts.failed,
        duplicatedEffects: effects.duplicated,
        detail: `down ${downMs} ms; ${accepted.filter((h) => h.buffered).length} enqueues held in the producer's buffer and flushed on reconnect; ${refused} enqueues refused to their caller (none expected${refusals.size ? `; refused with: ${[...refusals].join(' / ')}` : ''}); index log entries ${effects.entries}`,
      });
      expect(refused).toBe(0);
      expect(accepted).toHaveLength(CHUNKS * PER_CHUNK);
      expect(notCompleted).toBe(0);
      expect(counts).toEqual({ completed: accepted.length, failed: 0, active: 0, waiting: 0, delayed: 0 });
      expect({ jobs: effects.jobs, duplicated: effects.duplicated }).toEqual({ jobs: accepted.length, duplicated: 0 });
      // The replica lived through it: reconnected, not restarted.
      expect(replica.stopped()).toBe(false);
    } finally {
      await replica.kill('SIGKILL');
      await producer.close();
      redis.disconnect();
    }
  }, 240_000);
});
