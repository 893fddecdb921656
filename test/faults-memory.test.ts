import { readFileSync } from 'node:fs';
import type { LocalWarehouse } from 'local-snowflake';
import { createProducer, type Producer } from '../src/producers';
import { countIndexEffects, type Replica, reportFault, startReplica } from './helpers/faults';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Fault 6 (docs/reliability.md): memory. A long run of jobs keeps the worker's RSS flat.
 *
 * The figure in docs/reliability.md is a run of 1,000,000 jobs (`FLEET_FAULT_MEMORY_JOBS=1000000`, by hand: several
 * minutes); CI runs FLEET_FAULT_MEMORY_JOBS (default below). The producer streams jobs in chunks and keeps
 * the backlog bounded, so Redis holds at most ~BACKLOG_MAX waiting jobs plus the retained completed ones;
 * texts are drawn from a pool of DISTINCT_TEXTS, so after the first few thousand the cache answers (fast
 * jobs: the test measures the worker's per-job bookkeeping, not the warehouse).
 *
 * No index targets: without an index builder the index log (a Redis stream, ~3 KB per upsert) is never
 * trimmed, so a million upserts would fill Redis - that is the builder's concern, not the worker's memory.
 *
 * Asserted (a ratio, not a timing): end RSS <= warm RSS x 1.3 + 30 MB. RSS is sampled every 250 ms and
 * swings by a hundred MB with the garbage collector, so one sample at each point would compare a random
 * GC phase with another: "warm" is the highest sample while the jobs from 10 % to 20 % finish (the plateau
 * after warm-up: caches filled, the backlog at its bound), "end" the highest while the last 10 % finish (and
 * the sample after the last job). A leak shows as a plateau that keeps rising.
 */
const JOBS = Number(process.env.FLEET_FAULT_MEMORY_JOBS ?? 150_000);
const CHUNK = 2_000;
const BACKLOG_MAX = 20_000;
const DISTINCT_TEXTS = 3_000;
const KEEP_COMPLETED = 1_000;
const MB = 1024 * 1024;
/** Budget for the whole run: start-up plus a pessimistic 400 jobs/s (the machine is shared with other tests). */
const RUN_BUDGET_MS = 60_000 + Math.ceil(JOBS / 400) * 1_000;

/** Resident set size of a process, in bytes (Linux). */
function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

const mb = (bytes: number) => `${Math.round(bytes / MB)} MB`;

describe('fault 6: memory over a long run of jobs', () => {
  const redis = testRedis();
  let warehouse: LocalWarehouse | undefined;
  let replica: Replica | undefined;
  let producer: Producer | undefined;

  afterAll(async () => {
    await replica?.stop();
    await producer?.close().catch(() => undefined);
    await warehouse?.close().catch(() => undefined);
    await redis.quit();
  });

  it(
    `${JOBS.toLocaleString('en-US')} jobs keep the worker's RSS flat`,
    async () => {
      expect(Number.isInteger(JOBS) && JOBS >= 10 * CHUNK).toBe(true);
      const prefix = uniquePrefix('fault-memory');
      warehouse = await startTestWarehouse({ deals: 100 });
      replica = startReplica({
        REDIS_URL: testRedisUrl(),
        FLEET_QUEUE_PREFIX: prefix,
        CACHE_KEY_PREFIX: `${prefix}:cache`,
        SNOWFLAKE_ACCESS_URL: warehouse.url,
        HEALTH_PORT: '0',
        // Small retention, so Redis stays bounded however many jobs run.
        JOB_KEEP_COMPLETED_COUNT: String(KEEP_COMPLETED),
        JOB_KEEP_COMPLETED_S: '600',
        // No per-job "slow" lines: a backlog of 20,000 makes every job wait longer than the default 200 ms.
        SLOW_JOB_MS: '600000',
        SLOW_WAREHOUSE_QUERY_MS: '600000',
      });
      await replica.logged('worker started', 60_000);
      const pid = replica.child.pid!;
      const startRss = rssOf(pid);

      // The producer's own job defaults keep 50,000 completed jobs (job options win over the worker's
      // JOB_KEEP_COMPLETED_*), so the retention is given here too.
      producer = createProducer({ connection: redis, prefix, defaultJobOptions: { removeOnComplete: { age: 600, count: KEEP_COMPLETED } } });
      const queue = producer.queue('embeddings');
      const texts = Array.from(
        { length: DISTINCT_TEXTS },
        (_, i) => `memory run note ${i}: the customer asked about pricing, onboarding and the renewal timeline`,
      );

      let accepted = 0;
      let backlogPeak = 0;
      const backlog = async () => {
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
        return { unfinished: c.waiting + c.active + c.delayed + c.prioritized, failed: c.failed };
      };
      /** Jobs finished (completed or failed): what was accepted minus what is still in the queue. */
      let finished = 0;
      let failed = 0;
      const poll = async () => {
        const b = await backlog();
        backlogPeak = Math.max(backlogPeak, b.unfinished);
        finished = accepted - b.unfinished;
        failed = b.failed;
        return b;
      };

      // RSS samples with the progress they were taken at.
      const samples: { at: number; finished: number; rss: number }[] = [];
      const sample = () => {
        try {
          samples.push({ at: Date.now(), finished, rss: rssOf(pid) });
        } catch {
          // the process ended; the test's own checks report that
        }
      };
      const sampler = setInterval(sample, 250);

      const started = Date.now();
      try {
        // Producer: chunks of CHUNK jobs while the backlog has room.
        while (accepted < JOBS) {
          await waitUntil('room in the backlog for another chunk', async () => (await poll()).unfinished + CHUNK <= BACKLOG_MAX, {
            timeoutMs: RUN_BUDGET_MS,
            everyMs: 50,
          });
          const n = Math.min(CHUNK, JOBS - accepted);
          const batch = Array.from({ length: n }, (_, k) => texts[(accepted + k) % DISTINCT_TEXTS]);
          await producer.embed(batch);
          accepted += n;
        }
        await waitUntil(
          'every job finished',
          async () => {
            await poll();
            return finished >= JOBS;
          },
          { timeoutMs: RUN_BUDGET_MS, everyMs: 200 },
        );
      } finally {
        clearInterval(sampler);
      }
      const endedAt = Date.now();
      sample();
      const finalRss = samples[samples.length - 1].rss;
      const maxOf = (from: number, to: number) => {
        const inWindow = samples.filter((s) => s.finished >= from && s.finished < to);
        // a window shorter than one sampling interval: the first sample after it began
        return inWindow.length ? Math.max(...inWindow.map((s) => s.rss)) : (samples.find((s) => s.finished >= from) ?? samples[samples.length - 1]).rss;
      };
      const warmRss = maxOf(JOBS * 0.1, JOBS * 0.2);
      const endRss = Math.max(maxOf(JOBS * 0.9, Infinity), finalRss);
      const peakRss = Math.max(startRss, ...samples.map((s) => s.rss));
      const warmAt = samples.find((s) => s.finished >= JOBS * 0.1) ?? samples[0];
      const byTenth = Array.from({ length: 10 }, (_, i) => Math.round(maxOf((JOBS * i) / 10, (JOBS * (i + 1)) / 10) / MB)).join(' ');
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed');
      const effects = await countIndexEffects(redis, prefix);
      const seconds = (endedAt - started) / 1000;
      const steadyRate = Math.round((JOBS - warmAt.finished) / ((endedAt - warmAt.at) / 1000));
      const limit = warmRss * 1.3 + 30 * MB;

      reportFault({
        fault: `memory: ${JOBS.toLocaleString('en-US')} jobs`,
        accepted,
        completed: accepted - failed,
        failed,
        duplicatedEffects: effects.duplicated,
        detail:
          `worker RSS start ${mb(startRss)}, warm (jobs 10-20 %) ${mb(warmRss)}, end (last 10 %) ${mb(endRss)} (limit ${mb(limit)}), ` +
          `final ${mb(finalRss)}, peak ${mb(peakRss)}; highest per tenth of the jobs (MB) ${byTenth}; ${seconds.toFixed(0)} s, ` +
          `${Math.round(JOBS / seconds)} jobs/s overall, ${steadyRate} jobs/s after warm-up; backlog peak ${backlogPeak}; ` +
          `${DISTINCT_TEXTS} distinct texts, no index targets; completed jobs retained ${counts.completed}`,
      });

      expect(accepted).toBe(JOBS);
      expect(failed).toBe(0);
      expect(counts).toMatchObject({ failed: 0, active: 0, waiting: 0, delayed: 0 });
      // Retention kept Redis bounded: at most KEEP_COMPLETED completed jobs remain (BullMQ trims as it goes).
      expect(counts.completed).toBeLessThanOrEqual(KEEP_COMPLETED + CHUNK);
      expect(backlogPeak).toBeLessThanOrEqual(BACKLOG_MAX);
      expect(replica.stopped()).toBe(false);
      expect(endRss).toBeLessThanOrEqual(limit);
    },
    RUN_BUDGET_MS + 120_000,
  );
});
