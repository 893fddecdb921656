import type { LocalWarehouse } from 'local-snowflake';
import { createProducer } from '../src/producers';
import { countIndexEffects, faultReplicaEnv, type Replica, reportFault, startReplica } from './helpers/faults';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy';
import { sleep, waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Fault 4 of the reliability suite: the network between one worker replica and Redis is cut for longer
 * than the job lock (a partition: nothing flows, nothing is reset). Another replica finds the cut one's
 * jobs stalled and runs them again; when the network heals, the cut replica's late writes arrive (all of
 * them by the time it has stopped gracefully). Every job must complete once, and every effect must happen once.
 */
const JOBS = 3_000;
const LOCK_MS = 2_000;
const CUT_MS = 6_000;

let warehouse: LocalWarehouse;
let proxy: TcpProxy;
beforeAll(async () => {
  warehouse = await startTestWarehouse({ queryLatencyMs: 150, deals: 100 });
  const url = new URL(testRedisUrl());
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
});
afterAll(async () => {
  await proxy.close();
  await warehouse.close();
});

describe('fault: network cut between a worker and Redis, longer than the lock', () => {
  it('the stalled jobs run on another replica; all complete; no effect is doubled; the cut replica carries on', async () => {
    const prefix = uniquePrefix('fault-netcut');
    const env = faultReplicaEnv(prefix, warehouse.url, { WORKER_LOCK_DURATION_MS: String(LOCK_MS) });
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    const queue = producer.queue('embeddings');
    const replicas: Replica[] = [];
    try {
      const texts = Array.from({ length: JOBS }, (_, i) => `fault suite network cut note ${i}`);
      await producer.embed(texts, { index: texts.map((_, i) => ({ namespace: 'faults', id: `doc-${i}` })) });

      // The replica behind the proxy starts alone, so every active job at the cut is its.
      const behindProxy = startReplica({ ...env, REDIS_URL: proxy.url });
      replicas.push(behindProxy);
      await waitUntil(
        'the proxied replica to be mid-run',
        async () => {
          const c = await queue.getJobCounts('completed', 'active');
          return c.completed >= 200 && c.active > 0;
        },
        { timeoutMs: 60_000, everyMs: 20 },
      );

      proxy.cut();
      const heldAtCut = (await queue.getActive()).map((j) => j.id!);
      const direct = startReplica({ ...env, REDIS_URL: testRedisUrl() });
      replicas.push(direct);
      await sleep(CUT_MS); // the scenario: the partition lasts CUT_MS, longer than the lock
      const stalledDuringCut = (await Promise.all(heldAtCut.map((id) => queue.getJob(id)))).filter((j) => j && (j.stalledCounter > 0 || j.finishedOn)).length;
      proxy.heal();

      await waitUntil(
        'every job to finish',
        async () => {
          const c = await queue.getJobCounts('completed', 'failed');
          return c.completed + c.failed >= JOBS;
        },
        { timeoutMs: 120_000, everyMs: 100 },
      );
      // The cut replica survived the partition, and once healed it takes work again: alone (the direct one
      // stopped), so the next job can only be its.
      expect(behindProxy.stopped()).toBe(false);
      expect(await direct.stop()).toBe(0);
      const more = await producer.embed(['after the cut, one more note'], { index: [{ namespace: 'faults', id: 'doc-after' }] });
      await more[0].result({ timeoutMs: 30_000 });
      // A graceful stop drains its connections: once it has exited, every late write it held is in Redis.
      expect(await behindProxy.stop()).toBe(0);

      const accepted = JOBS + 1;
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed');
      const effects = await countIndexEffects(redis, prefix);
      const held = await Promise.all(heldAtCut.map((id) => queue.getJob(id)));
      const reRun = held.filter((j) => j && j.stalledCounter > 0).length;
      reportFault({
        fault: `network cut worker-Redis ${CUT_MS / 1000} s (lock ${LOCK_MS / 1000} s)`,
        accepted,
        completed: counts.completed,
        failed: counts.failed,
        duplicatedEffects: effects.duplicated,
        detail: `${heldAtCut.length} jobs held by the cut replica, ${reRun} ran again elsewhere (${stalledDuringCut} recovered during the cut); one more job after the heal ran on the healed replica alone; index log entries ${effects.entries}`,
      });

      expect(heldAtCut.length).toBeGreaterThan(0);
      expect(reRun).toBeGreaterThan(0);
      expect(counts).toEqual({ completed: accepted, failed: 0, active: 0, waiting: 0, delayed: 0 });
      expect({ jobs: effects.jobs, entries: effects.entries, duplicated: effects.duplicated }).toEqual({ jobs: accepted, entries: accepted, duplicated: 0 });
    } finally {
      for (const r of replicas) await r.kill('SIGKILL');
      await producer.close();
      await redis.quit();
    }
  }, 240_000);
});
