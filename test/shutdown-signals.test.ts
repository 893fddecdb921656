import type { Queue } from 'bullmq';
import { type LocalWarehouse, startLocalWarehouse } from 'local-snowflake';
import { createProducer, type Producer } from '../src/producers';
import { countIndexEffects, type Replica, reportFault, startReplica } from './helpers/faults';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';

/**
 * What Kubernetes does to a replica: SIGTERM (scale-down, rollout, drain), and - when a pod does not stop
 * within terminationGracePeriodSeconds, or an operator insists - a second signal or SIGKILL. The worker is
 * the real CLI in its own process (`fleet worker --role embeddings` from dist/, as the image runs it).
 */
const SHUTDOWN_TIMEOUT_MS = 15_000;
/** Warehouse round trip: long enough that a batch is in flight when the test signals. */
const QUERY_LATENCY_MS = 600;

describe('a worker replica and process signals', () => {
  let warehouse: LocalWarehouse;
  const replicas: Replica[] = [];
  const producers: Producer[] = [];
  const redis = testRedis();

  beforeAll(async () => {
    // A slow warehouse round trip keeps batches in flight long enough to signal in the middle of one.
    warehouse = await startLocalWarehouse({ port: 0, loginLatencyMs: 0, queryLatencyMs: QUERY_LATENCY_MS, deals: 100 });
  });
  afterEach(async () => {
    warehouse.setLatency({ queryMs: QUERY_LATENCY_MS });
    for (const r of replicas.splice(0)) await r.kill('SIGKILL');
    for (const p of producers.splice(0)) await p.close();
  });
  afterAll(async () => {
    await redis.quit();
    await warehouse.close();
  });

  function setup(name: string, extra: Record<string, string> = {}) {
    const prefix = uniquePrefix(name);
    const env = {
      REDIS_URL: testRedisUrl(),
      FLEET_QUEUE_PREFIX: prefix,
      SNOWFLAKE_ACCESS_URL: warehouse.url,
      FLEET_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      POOL_MIN: '0',
      POOL_MAX: '2',
      EMBED_BATCH_MAX_SIZE: '100',
      EMBED_BATCH_MAX_WAIT_MS: '20',
      EMBED_WORKER_CONCURRENCY: '100',
      ...extra,
    };
    const producer = createProducer({ connection: redis, prefix });
    producers.push(producer);
    const replica = (more: Record<string, string> = {}) => {
      const r = startReplica({ ...env, ...more });
      replicas.push(r);
      return r;
    };
    return { producer, queue: producer.queue('embeddings'), replica, prefix };
  }

  /** Waits until the replica holds jobs and its first batch call is at the warehouse. */
  async function midBatch(queue: Queue, queriesBefore: number): Promise<string[]> {
    await waitUntil(
      'jobs active and a batch call in flight',
      async () => (await queue.getJobCounts('active')).active > 0 && warehouse.stats().queries > queriesBefore,
    );
    return (await queue.getActive()).map((j) => j.id!);
  }

  it('SIGTERM mid-batch: in-flight jobs finish within the close deadline, nothing is left active, exit code 0', async () => {
    const { producer, queue, replica, prefix } = setup('sigterm');
    const texts = Array.from({ length: 400 }, (_, i) => `graceful shutdown note ${i}`);
    const handles = await producer.embed(texts, { index: texts.map((_, i) => ({ namespace: 'faults', id: `doc-${i}` })) });
    const queriesBefore = warehouse.stats().queries;
    const worker = replica();
    const inFlight = await midBatch(queue, queriesBefore);
    expect(inFlight.length).toBeGreaterThan(0);

    const signalledAt = Date.now();
    worker.child.kill('SIGTERM');
    const code = await worker.exited;
    const tookMs = Date.now() - signalledAt;

    expect({ code, output: code === 0 ? '' : worker.output().slice(-2000) }).toEqual({ code: 0, output: '' });
    expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(worker.output()).toContain('shutting down gracefully');
    // Waiting: in the FIFO list, or parked behind the tenant's slots (src/fairness).
    const counts = await queue.getJobCounts('active', 'completed', 'failed', 'waiting', 'prioritized');
    expect(counts).toMatchObject({ active: 0, failed: 0 });
    // Every job that was in flight when the signal came finished; the rest were never taken.
    const states = await Promise.all(inFlight.map((id) => queue.getJobState(id)));
    expect(states.filter((s) => s !== 'completed')).toEqual([]);
    expect(counts.completed + counts.waiting + counts.prioritized).toBe(texts.length);
    expect(counts.waiting + counts.prioritized).toBeGreaterThan(0);
    const finishedAfterSignal = inFlight.length;

    // Nothing is lost: the next replica takes the rest.
    replica();
    const results = await Promise.allSettled(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const final = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'prioritized');
    expect(final).toEqual({ completed: texts.length, failed: 0, active: 0, waiting: 0, prioritized: 0 });
    const effects = await countIndexEffects(redis, prefix);
    expect({ jobs: effects.jobs, duplicated: effects.duplicated }).toEqual({ jobs: texts.length, duplicated: 0 });
    reportFault({
      fault: 'SIGTERM mid-batch',
      accepted: texts.length,
      completed: final.completed,
      failed: final.failed,
      duplicatedEffects: effects.duplicated,
      detail: `${finishedAfterSignal} in-flight jobs finished after the signal; exit 0 in ${tookMs} ms (deadline ${SHUTDOWN_TIMEOUT_MS} ms); the rest ran on the next replica`,
    });
  });

  it('a second signal forces exit; the jobs it held are recovered by another replica', async () => {
    // Short locks so stalled-job recovery is quick; a close deadline long enough that only the second
    // signal can end the process before the in-flight batch returns.
    const { producer, queue, replica } = setup('second-signal', { WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' });
    const texts = Array.from({ length: 200 }, (_, i) => `forced exit note ${i}`);
    const handles = await producer.embed(texts);
    // A batch call slow enough that the graceful close cannot finish before the second signal arrives.
    warehouse.setLatency({ queryMs: 5_000 });
    const queriesBefore = warehouse.stats().queries;
    const first = replica();
    const held = await midBatch(queue, queriesBefore);
    expect(held.length).toBeGreaterThan(0);

    first.child.kill('SIGTERM');
    await first.logged('shutting down gracefully');
    first.child.kill('SIGTERM');
    const code = await first.exited;
    expect(code).toBe(130);
    expect(first.output()).toContain('second signal: forcing exit');
    // The forced exit left jobs active with locks nobody renews any more.
    const stranded = (await queue.getActive()).map((j) => j.id!);
    expect(stranded.length).toBeGreaterThan(0);
    warehouse.setLatency({ queryMs: QUERY_LATENCY_MS });

    const second = replica();
    await second.logged('worker started');
    const results = await Promise.allSettled(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'prioritized')).toEqual({
      completed: texts.length,
      failed: 0,
      active: 0,
      waiting: 0,
      prioritized: 0,
    });
    const recovered = await Promise.all(stranded.map((id) => queue.getJob(id)));
    // They ran again on the second replica: BullMQ counted the stall and the job still completed.
    expect(recovered.every((j) => j?.finishedOn && j.returnvalue)).toBe(true);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
