import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { type PrivateRedis, startPrivateRedis } from '../src/app/redis-server';
import { createProducer, idempotentJobId } from '../src/producers';
import { countIndexEffects, crashRedis, faultReplicaEnv, type Replica, reportFault, startReplica } from './helpers/faults';
import { uniquePrefix } from './helpers/redis';
import { sleep, waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Redis crashes (SIGKILL: no shutdown, no final fsync) under load, with AOF on and `appendfsync everysec`, and
 * comes back on the same port from the same directory (AOF replay). Unlike a clean restart
 * (test/faults-redis.test.ts), a crash may lose what Redis acknowledged but had not yet written out, so the
 * promise is weaker and counted: every acknowledged enqueue is either completed with its effect (one index log
 * entry) or reported lost (absent after the restart, with no effect); only the last ~second before the crash
 * may be lost; and no effect happens twice, although jobs in flight at the crash run again. An enqueue on the
 * wire at the crash (Redis part-way through it) must end acknowledged, or thrown having enqueued nothing.
 * Today the last fails: BullMQ's addBulk is a pipeline, ioredis rejects the unanswered rest of a half-answered
 * pipeline on a connection close (AbortError) and does not re-send it, so the caller gets an error while the
 * adds Redis had already run are in the queue and run (the final assertion, with the counts).
 */
const PER_CHUNK = 50;
/**
 * The enqueue on the wire at the crash is larger: Redis needs tens of milliseconds for it, so the crash lands
 * while it is part-way through (the first adds run and answered, the rest not yet).
 */
const CRASH_CHUNK = 2_000;
/** Enqueues go on until 10 chunks after the restart; this bounds a run whose crash never comes. */
const MAX_CHUNKS = 150;
/** Jobs acknowledged longer than this before the crash were written out by Redis: none of them may be lost. */
const FSYNC_WINDOW_MS = 2_000;

let warehouse: LocalWarehouse;
let dir: string;
let redisServer: PrivateRedis | undefined;
let replica: Replica | undefined;
beforeAll(async () => {
  warehouse = await startTestWarehouse({ queryLatencyMs: 50, deals: 100 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-fault-redis-kill-'));
});
// Also after a timeout, which skips the test's own finally: a live replica would keep jest from exiting.
afterEach(async () => {
  await replica?.kill('SIGKILL');
});
afterAll(async () => {
  await redisServer?.stop();
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One acknowledged enqueue: the job ids one addBulk returned and when the acknowledgement arrived. */
interface Ack {
  ids: string[];
  sentAt: number;
  ackedAt: number;
}

describe('fault: Redis is SIGKILLed (AOF, everysec) under load', () => {
  it('every acknowledged job completes once or is reported lost from the last second; no effect is doubled', async () => {
    redisServer = await startPrivateRedis({ appendOnly: true, dir });
    const port = redisServer.port;
    const prefix = uniquePrefix('fault-redis-kill');
    const worker = startReplica(faultReplicaEnv(prefix, warehouse.url, { REDIS_URL: redisServer.url }));
    replica = worker;
    const redis = new IORedis(redisServer.url, { maxRetriesPerRequest: null });
    const server = redisServer;
    // Watches for the crash: a connection of its own, so its reads do not queue behind the producer's.
    const probe = new IORedis(redisServer.url, { maxRetriesPerRequest: 1 });
    const producer = createProducer({ connection: redis, prefix });
    const queue = producer.queue('embeddings');
    const acks: Ack[] = [];
    /** Enqueues whose call threw: the caller was told they failed. Their ids are known (idempotency keys). */
    const refusals: { ids: string[]; message: string }[] = [];
    try {
      // The persistence this test is about (a guard: the numbers below mean nothing without it).
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await redis.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec']);

      const sent: number[] = [];
      // The crash is the enqueuer's: once asked, it crashes Redis right after sending its next add, so that add is
      // on the wire (Redis may or may not have run it; ioredis re-sends it after the reconnect).
      let crashWanted = false;
      let crashed: Promise<number> | undefined;
      let stopAt: number | undefined;
      let docs = 0;
      let partDoneAtCrash = false;
      const enqueueing = (async () => {
        for (let c = 0; c < MAX_CHUNKS && (stopAt === undefined || c < stopAt); c++) {
          const crashHere = crashWanted && !crashed;
          const first = docs;
          const texts = Array.from({ length: crashHere ? CRASH_CHUNK : PER_CHUNK }, (_, i) => `fault suite redis crash note ${first + i}`);
          docs += texts.length;
          const sentAt = Date.now();
          sent.push(sentAt);
          try {
            const adding = producer.embed(texts, {
              idempotencyKey: `${prefix}-chunk-${c}`,
              index: texts.map((_, i) => ({ namespace: 'faults', id: `doc-${first + i}` })),
            });
            if (crashHere) {
              const jobKey = (i: number) => `${prefix}:embeddings:${idempotentJobId('embeddings', `${prefix}-chunk-${c}#${i}`)}`;
              crashed = (async () => {
                // Once Redis has run the first add of this call (and so has begun answering it), within 2 s: it
                // stops running writes (CLIENT PAUSE), so the call stays part-done until the crash.
                const until = Date.now() + 2_000;
                while (Date.now() < until && (await probe.exists(jobKey(0))) === 0);
                await probe.client('PAUSE', 10_000, 'WRITE');
                partDoneAtCrash = (await probe.exists(jobKey(texts.length - 1))) === 0;
                const at = Date.now();
                await crashRedis(server);
                return at;
              })();
            }
            const handles = await adding;
            // Acknowledged = in Redis: a producer that holds enqueues in memory while Redis is away says so by `persisted`.
            await Promise.all(handles.map((h) => (h as unknown as { persisted?: Promise<void> }).persisted));
            acks.push({ ids: handles.map((h) => h.id), sentAt, ackedAt: Date.now() });
          } catch (err) {
            // Not acknowledged: nothing was promised. Whether the jobs appear anyway is counted below.
            const ids = texts.map((_, i) => idempotentJobId('embeddings', `${prefix}-chunk-${c}#${i}`));
            refusals.push({ ids, message: `${(err as Error).name}: ${(err as Error).message}`.slice(0, 300) });
          }
          await sleep(100); // the scenario: a steady trickle of enqueues, so the crash lands in the middle of it
        }
      })();

      // Mid-run: enqueues acknowledged well before the crash (older than the fsync window), jobs completed and held.
      await waitUntil(
        'the run to be under way',
        async () => {
          if (acks.length === 0 || Date.now() - acks[0].ackedAt < FSYNC_WINDOW_MS + 500) return false;
          const c = await queue.getJobCounts('completed', 'active');
          return c.completed > 0 && c.active > 0;
        },
        { timeoutMs: 60_000, everyMs: 20 },
      );
      const { active: activeAtCrash } = await queue.getJobCounts('active');
      crashWanted = true;
      await waitUntil('the enqueuer to crash Redis', () => crashed !== undefined, { timeoutMs: 10_000 });
      const crashAt = await crashed!;
      const ackedBeforeCrash = acks.filter((a) => a.ackedAt <= crashAt).length;
      const inFlightAtCrash = sent.filter((t) => t <= crashAt).length - ackedBeforeCrash;
      await sleep(2_000); // the scenario: Redis is down for 2 s (longer than the jobs' 2 s locks) before its supervisor restarts it
      redisServer = await startPrivateRedis({ appendOnly: true, dir, port });
      stopAt = sent.length + 10; // a few enqueues after the restart too
      await enqueueing;

      // Lost: acknowledged, yet absent after the replay. Completed jobs are retained (50,000), so absent means lost.
      const inRedis = (ids: readonly string[]) => Promise.all(ids.map(async (id) => (await redis.exists(`${prefix}:embeddings:${id}`)) === 1));
      const all = acks.flatMap((a) => a.ids.map((id) => ({ id, ackedAt: a.ackedAt })));
      const exists = await inRedis(all.map((j) => j.id));
      const lost = all.filter((_, i) => !exists[i]);
      const present = all.filter((_, i) => exists[i]);
      // A call that threw promised nothing, but if its jobs are in Redis they run all the same.
      const refusedIds = refusals.flatMap((r) => r.ids);
      const refusedExists = await inRedis(refusedIds);
      const refusedButEnqueued = refusedIds.filter((_, i) => refusedExists[i]);
      const inQueue = [...present.map((j) => j.id), ...refusedButEnqueued];

      await waitUntil(
        'every job that survived the crash to finish',
        async () => {
          const c = await queue.getJobCounts('completed', 'failed');
          return c.completed + c.failed >= inQueue.length;
        },
        { timeoutMs: 45_000, everyMs: 100 },
      );
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized');
      const states = await Promise.all(present.map((j) => queue.getJobState(j.id)));
      const effects = await countIndexEffects(redis, prefix);
      const completed = await queue.getJobs(['completed'], 0, docs);
      const reRun = completed.filter((j) => j.stalledCounter > 0 || j.attemptsStarted > 1).length;
      const lostEarly = lost.filter((j) => j.ackedAt < crashAt - FSYNC_WINDOW_MS).length;
      const lostWithEffect = lost.filter((j) => effects.perJob.has(j.id)).length;
      const withoutOneEffect = inQueue.filter((id) => effects.perJob.get(id) !== 1).length;
      reportFault({
        fault: 'Redis SIGKILL (AOF everysec), restarted from its AOF',
        accepted: all.length,
        completed: states.filter((s) => s === 'completed').length,
        failed: counts.failed,
        duplicatedEffects: effects.duplicated,
        detail:
          `lost ${lost.length} (acknowledged > ${FSYNC_WINDOW_MS} ms before the crash: ${lostEarly}); ${activeAtCrash} jobs active and ` +
          `${inFlightAtCrash} enqueues in flight at the crash (a ${CRASH_CHUNK}-job one ${partDoneAtCrash ? 'part-done' : 'not part-done'}); ${reRun} jobs ran again; ${refusedIds.length} jobs refused to their caller ` +
          `(${refusedButEnqueued.length} of them enqueued anyway${refusals.length ? `; refused with: ${[...new Set(refusals.map((r) => r.message))].join(' / ')}` : ''}); ` +
          `index log entries ${effects.entries}`,
      });

      // Each job id once.
      expect(new Set([...all.map((j) => j.id), ...refusedIds]).size).toBe(docs);
      // Lost only from the fsync window, and a lost job left no trace: no effect, nothing else in the queue.
      expect(lostEarly).toBe(0);
      expect(lostWithEffect).toBe(0);
      // What is in Redis completed, each with exactly one effect; nothing else is in the queue.
      expect(states.filter((s) => s !== 'completed')).toEqual([]);
      expect(counts).toEqual({ completed: inQueue.length, failed: 0, active: 0, waiting: 0, delayed: 0, prioritized: 0 });
      expect({ withoutOneEffect, duplicated: effects.duplicated, entries: effects.entries }).toEqual({
        withoutOneEffect: 0,
        duplicated: 0,
        entries: inQueue.length,
      });
      // The crash hit work in progress: jobs held at the crash ran again (their locks expired while Redis was
      // down), and their effects still happened once. The replica lived through it (reconnected, not restarted).
      expect(activeAtCrash).toBeGreaterThan(0);
      expect(partDoneAtCrash).toBe(true);
      expect(reRun).toBeGreaterThan(0);
      expect(worker.stopped()).toBe(false);
      // Every enqueue was acknowledged: the one on the wire at the crash waits for the reconnect (its job ids make
      // a re-send a no-op). A call that throws must have enqueued nothing: its caller retries it, or gives up.
      expect({ refused: refusedIds.length, refusedButEnqueued: refusedButEnqueued.length, refusals: [...new Set(refusals.map((r) => r.message))] }).toEqual({
        refused: 0,
        refusedButEnqueued: 0,
        refusals: [],
      });
    } finally {
      await worker.kill('SIGKILL');
      probe.disconnect();
      await producer.close();
      redis.disconnect();
    }
  }, 90_000);
});
