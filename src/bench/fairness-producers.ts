/**
 * Child process of the fairness benchmark: one tenant's producer, apart from the worker as the API is in
 * production (a 10,000-text `producer.embed` validates and builds its jobs on the event loop for hundreds of
 * milliseconds, which in the worker's process would hold up every job in flight, and in B's producer would
 * hold up B's schedule). `startProducers` in fairness.ts starts one for each tenant per run; each phase arrives
 * over IPC (A's part: `aJobs`; B's part: `bJobs` over `periodMs`) and is answered with the ids the producer
 * returned. The job texts are built here from the phase's seed, so only ids cross the process boundary.
 */
import IORedis from 'ioredis';
import { createProducer, type JobHandle } from '../producers';
import { ENQUEUE_CHUNK, type ProducerPhase, type ProducerReply, TENANT_A, TENANT_B } from './fairness-shared';
import { benchTexts } from './texts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runPhase(p: ProducerPhase): Promise<ProducerReply> {
  const aTexts = benchTexts(p.aJobs, `${p.seed}-a`);
  const bTexts = benchTexts(p.bJobs, `${p.seed}-b`);
  const connection = new IORedis(p.redisUrl, { maxRetriesPerRequest: null });
  const producer = createProducer({ connection, prefix: p.prefix, fairness: p.fairness, defaultJobOptions: p.jobOpts });
  try {
    await connection.ping();
    const start = performance.now();
    let aEnqueueS = 0;
    let aEnqueuedAt = Date.now();
    const aIds = (async () => {
      const ids: string[] = [];
      for (let i = 0; i < aTexts.length; i += ENQUEUE_CHUNK) {
        const handles = await producer.embed(aTexts.slice(i, i + ENQUEUE_CHUNK), { tenant: TENANT_A });
        for (const h of handles) ids.push(h.id);
      }
      aEnqueueS = (performance.now() - start) / 1000;
      aEnqueuedAt = Date.now();
      return ids;
    })();
    let bMaxLagMs = 0;
    const calledAt: [string, number][] = [];
    const bIds = (async () => {
      const sent: Promise<JobHandle<unknown>>[] = [];
      for (let i = 0; i < bTexts.length; i++) {
        const due = start + (i * p.periodMs) / p.bJobs;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        bMaxLagMs = Math.max(bMaxLagMs, performance.now() - due);
        const at = Date.now();
        // Open loop: the next B job is due on schedule whether or not this call has returned.
        sent.push(
          producer.embed(bTexts[i], { tenant: TENANT_B }).then((h) => {
            calledAt.push([h.id, at]);
            return h;
          }),
        );
      }
      return (await Promise.all(sent)).map((h) => h.id);
    })();
    const [a, b] = await Promise.all([aIds, bIds]);
    return { type: 'enqueued', aIds: a, bIds: b, calledAt, aEnqueueS, aEnqueuedAt, bMaxLagMs };
  } finally {
    await producer.close().catch(() => undefined);
    await connection.quit().catch(() => undefined);
  }
}

process.on('message', (msg: ProducerPhase) => {
  runPhase(msg).then(
    (reply) => process.send?.(reply),
    (err: Error) => process.send?.({ type: 'error', message: err.stack ?? err.message } satisfies ProducerReply),
  );
});
// The benchmark went away: nothing left to enqueue for.
process.on('disconnect', () => process.exit(0));
