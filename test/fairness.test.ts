import { type Job, Queue, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUES, TenantLimitError, ValidationError } from '../src/contracts';
import { TenantLanes } from '../src/fairness';
import { createProducer, type Producer } from '../src/producers';
import { runWorker } from '../src/workers/run-worker';
import { testRedis, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';

/**
 * Fair service between tenants (src/fairness) with real Redis and real BullMQ workers: the order jobs run in,
 * the per-tenant limits, and the bookkeeping after every job is done (nothing left in any lane).
 */

let redis: Redis;
beforeAll(() => {
  redis = testRedis();
});
afterAll(() => redis.quit());

interface Run {
  prefix: string;
  producer: Producer;
  order: string[];
  worker?: Worker;
  workerConnection?: Redis;
  close(): Promise<void>;
}

/** A producer with the given fairness slots, and (started later) one worker that runs one job at a time and records the order. */
function setup(fairness: Parameters<typeof createProducer>[0]['fairness'] = { slots: 4 }): Run {
  const prefix = uniquePrefix('fair');
  const producer = createProducer({ connection: redis, prefix, fairness });
  const run: Run = {
    prefix,
    producer,
    order: [],
    async close() {
      await run.worker?.close();
      await run.workerConnection?.quit();
      await producer.close();
    },
  };
  return run;
}

function startWorker(run: Run, opts: { concurrency?: number; fairness?: Parameters<typeof runWorker>[0]['fairness'] } = {}): Worker {
  const fairness = opts.fairness ?? { settings: { slots: 4 }, reconcileEveryMs: 0 };
  run.workerConnection = redis.duplicate();
  run.worker = runWorker({
    queue: QUEUES.embeddings,
    connection: run.workerConnection,
    prefix: run.prefix,
    concurrency: opts.concurrency ?? 1,
    fairness,
    processor: async (job: Job) => {
      run.order.push(`${job.data.tenant ?? 'default'}:${job.data.text}`);
      return {};
    },
  });
  return run.worker;
}

async function drained(run: Run, total: number): Promise<void> {
  await waitUntil(`${total} jobs done`, () => run.order.length >= total, { timeoutMs: 30_000 });
  const q = new Queue(QUEUES.embeddings, { connection: redis, prefix: run.prefix });
  await waitUntil('every job completed', async () => (await q.getJobCounts('completed')).completed === total);
  await q.close();
}

const lanes = (run: Run, slots = 4) =>
  new TenantLanes(redis, run.prefix, QUEUES.embeddings, { enabled: true, slots, defaults: { weight: 1, maxQueued: 100_000 }, tenants: {} });

test("a small tenant behind a large backlog is served after at most the large tenant's slots; each tenant keeps its order", async () => {
  const run = setup();
  try {
    await run.producer.embed(
      Array.from({ length: 300 }, (_, i) => `a${i}`),
      { tenant: 'big' },
    );
    for (let i = 0; i < 3; i++) await run.producer.embed(`b${i}`, { tenant: 'small' });
    const counts = await lanes(run).counts();
    expect(counts.sort((x, y) => x.tenant.localeCompare(y.tenant))).toEqual([
      { tenant: 'big', slotted: 4, parked: 296 },
      { tenant: 'small', slotted: 3, parked: 0 },
    ]);
    startWorker(run);
    await drained(run, 303);
    // FIFO would run the three small jobs last (positions 300-302); here they run right after big's 4 slots.
    const smallAt = run.order.map((x, i) => (x.startsWith('small:') ? i : -1)).filter((i) => i >= 0);
    expect(Math.max(...smallAt)).toBeLessThan(4 + 3);
    // each tenant's own jobs in the order they were enqueued
    const bigOrder = run.order.filter((x) => x.startsWith('big:')).map((x) => Number(x.slice(5)));
    expect(bigOrder).toEqual([...bigOrder].sort((x, y) => x - y));
    expect(bigOrder).toHaveLength(300);
    // every slot freed once the jobs are done
    await waitUntil('lanes empty', async () => (await lanes(run).counts()).length === 0);
  } finally {
    await run.close();
  }
});

test('two busy tenants share the service in proportion to their weights', async () => {
  const run = setup({ slots: 2, tenants: { gold: { weight: 3 } } });
  try {
    await run.producer.embed(
      Array.from({ length: 200 }, (_, i) => `g${i}`),
      { tenant: 'gold' },
    );
    await run.producer.embed(
      Array.from({ length: 200 }, (_, i) => `s${i}`),
      { tenant: 'silver' },
    );
    startWorker(run, { fairness: { settings: { slots: 2, tenants: { gold: { weight: 3 } } }, reconcileEveryMs: 0 } });
    await drained(run, 400);
    // While both have work, gold (weight 3) runs about three jobs for each of silver's.
    const first = run.order.slice(0, 200);
    const gold = first.filter((x) => x.startsWith('gold:')).length;
    expect(gold / (200 - gold)).toBeGreaterThan(2.2);
    expect(gold / (200 - gold)).toBeLessThan(4);
  } finally {
    await run.close();
  }
});

test('idle workers take parked jobs: a small slot count never leaves a worker waiting', async () => {
  const run = setup({ slots: 1 });
  try {
    await run.producer.embed(
      Array.from({ length: 50 }, (_, i) => `a${i}`),
      { tenant: 'solo' },
    );
    // 50 jobs, one slot: with 25 workers' worth of concurrency most jobs run straight from the parked set.
    startWorker(run, { concurrency: 25, fairness: { settings: { slots: 1 }, reconcileEveryMs: 0 } });
    await drained(run, 50);
    await waitUntil('lanes empty', async () => (await lanes(run, 1).counts()).length === 0);
  } finally {
    await run.close();
  }
});

test('a tenant over its queued limit or its rate gets TenantLimitError and nothing of the call is enqueued', async () => {
  const run = setup({ slots: 4, defaults: { weight: 1, maxQueued: 10 }, tenants: { slow: { ratePerS: 0.5, maxQueued: 1000 } } });
  try {
    await run.producer.embed(
      Array.from({ length: 8 }, (_, i) => `q${i}`),
      { tenant: 'capped' },
    );
    const err = await run.producer
      .embed(
        Array.from({ length: 3 }, (_, i) => `r${i}`),
        { tenant: 'capped' },
      )
      .catch((e) => e);
    expect(err).toBeInstanceOf(TenantLimitError);
    expect(err).toMatchObject({ tenant: 'capped', kind: 'queued', limit: 10, current: 8, jobs: 3 });
    const q = run.producer.queue(QUEUES.embeddings);
    expect(await q.count()).toBe(8);
    // an idempotent re-send of jobs already accepted is not counted again
    await run.producer.embed('once', { tenant: 'capped', idempotencyKey: 'k1' });
    await run.producer.embed('once', { tenant: 'capped', idempotencyKey: 'k1' });
    expect(await q.count()).toBe(9);
    // other tenants are not affected
    await run.producer.embed('x', { tenant: 'other' });

    // rate 0.5/s: a burst of 5 (10 s worth) passes, the 6th waits about 2 s
    for (let i = 0; i < 5; i++) await run.producer.embed(`s${i}`, { tenant: 'slow' });
    const rate = await run.producer.embed('s5', { tenant: 'slow' }).catch((e) => e);
    expect(rate).toBeInstanceOf(TenantLimitError);
    expect(rate.kind).toBe('rate');
    expect(rate.retryAfterMs).toBeGreaterThan(0);
    expect(rate.retryAfterMs).toBeLessThanOrEqual(2_000);

    await expect(run.producer.embed('bad', { tenant: 'no spaces allowed' })).rejects.toBeInstanceOf(ValidationError);
  } finally {
    await run.close();
  }
});

test('slots whose release was lost (a worker without fairness, a killed process) are freed by reconcile', async () => {
  const run = setup({ slots: 2 });
  try {
    await run.producer.embed(
      Array.from({ length: 10 }, (_, i) => `a${i}`),
      { tenant: 't' },
    );
    // This worker frees nothing: every finished job keeps its slot or parked place.
    startWorker(run, { concurrency: 5, fairness: false });
    await drained(run, 10);
    const l = lanes(run, 2);
    expect(await l.counts()).toEqual([{ tenant: 't', slotted: 2, parked: 8 }]);
    // Parked places of finished jobs are dropped when the refill meets them; slots after the grace.
    expect(await l.reconcile(0)).toEqual({ freed: 2, moved: 0 });
    expect(await l.counts()).toEqual([]);
  } finally {
    await run.close();
  }
});

test('concurrent enqueues are sent together (one admission script call, one addBulk); a refused call refuses only itself', async () => {
  const run = setup({ slots: 4, tenants: { tiny: { maxQueued: 1 } } });
  try {
    await run.producer.embed('warm-up', { tenant: 'a' });
    // Counted on the real methods (they still run): how many round trips the 41 calls took.
    const queue = run.producer.queue(QUEUES.embeddings);
    const addBulk = jest.spyOn(queue, 'addBulk');
    const add = jest.spyOn(queue, 'add');
    const admitMany = jest.spyOn(TenantLanes.prototype, 'admitMany');
    const calls = [
      ...Array.from({ length: 40 }, (_, i) => run.producer.embed(`c${i}`, { tenant: i % 2 ? 'a' : 'b' })),
      run.producer.embed(['t1', 't2'], { tenant: 'tiny' }),
    ];
    const settled = await Promise.allSettled(calls);
    expect(settled.slice(0, 40).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(settled[40]).toMatchObject({ status: 'rejected', reason: expect.any(TenantLimitError) });
    // 41 calls made in one turn of the event loop: one admission script call, one addBulk of the 40 admitted jobs.
    expect(admitMany).toHaveBeenCalledTimes(1);
    expect(addBulk).toHaveBeenCalledTimes(1);
    expect(addBulk.mock.calls[0][0]).toHaveLength(40);
    expect(add).not.toHaveBeenCalled();
    admitMany.mockRestore();
    expect(await run.producer.queue(QUEUES.embeddings).count()).toBe(41);
  } finally {
    await run.close();
  }
});

test('close() sends the adds gathered for the next batch before it closes the queues', async () => {
  const run = setup();
  const calls = Array.from({ length: 5 }, (_, i) => run.producer.embed(`late ${i}`, { tenant: 'late' }));
  await run.producer.close();
  const handles = await Promise.all(calls);
  const q = new Queue(QUEUES.embeddings, { connection: redis, prefix: run.prefix });
  try {
    for (const h of handles) expect(await q.getJob(h.id)).toBeDefined();
  } finally {
    await q.close();
  }
});

test("a release that lands between a parked job's admission and its add keeps the job in its lane", async () => {
  const run = setup({ slots: 1 });
  const l = lanes(run, 1);
  const q = new Queue(QUEUES.embeddings, { connection: redis, prefix: run.prefix });
  try {
    await l.admit('t', ['j1']);
    await q.add('embed', { text: '1', tenant: 't' }, { jobId: 'j1' });
    // j2 is parked; its add is still on the way when j1 finishes and its slot is released.
    const [p2] = await l.admit('t', ['j2']);
    expect(p2).toBeGreaterThan(0);
    await redis.hset(`${run.prefix}:embeddings:j1`, 'finishedOn', Date.now());
    await l.release([{ tenant: 't', jobId: 'j1' }]);
    await q.add('embed', { text: '2', tenant: 't' }, { jobId: 'j2', priority: p2 });
    // j2 is still counted, and the next refill (here a reconcile) moves it to the FIFO list.
    expect(await l.counts()).toEqual([{ tenant: 't', slotted: 0, parked: 1 }]);
    expect(await l.reconcile(0)).toEqual({ freed: 0, moved: 1 });
    expect(await redis.lrange(`${run.prefix}:embeddings:wait`, 0, -1)).toEqual(['j2', 'j1']);
    expect(await redis.zcard(`${run.prefix}:embeddings:prioritized`)).toBe(0);
  } finally {
    await q.close();
    await run.close();
  }
});

test('fairness off: plain FIFO and no lanes in Redis', async () => {
  const run = setup(false);
  try {
    await run.producer.embed(['a', 'b'], { tenant: 'x' });
    expect(await redis.keys(`${run.prefix}:embeddings:fair:*`)).toEqual([]);
  } finally {
    await run.close();
  }
});
