import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ValidationError } from '../src/contracts/errors';
import { appendUpsertsOnce, INDEX_EFFECT_FIELD, indexLogKey } from '../src/index-builder/upsert-stream';
import { instrumentProcessor } from '../src/telemetry';
import type { FleetMetrics } from '../src/telemetry/metrics';
import { CircuitOpenError } from '../src/warehouse/errors';
import { circuitOpenCause, runWorker } from '../src/workers/run-worker';
import { testRedis, uniquePrefix } from './helpers/redis';

const vec = (x: number) => [x, 1 - x, 0.5, 0.25];

describe('index upserts happen once per job (appendUpsertsOnce)', () => {
  let redis: Redis;
  let prefix: string;
  let queue: Queue;
  beforeEach(() => {
    redis = testRedis();
    prefix = uniquePrefix('effects');
    queue = new Queue('embeddings', { connection: redis, prefix });
  });
  afterEach(async () => {
    await queue.close();
    await redis.quit();
  });

  const entries = async () => {
    const rows = await redis.xrange(indexLogKey(prefix), '-', '+');
    return rows.map(([, f]) => {
      const o: Record<string, string> = {};
      for (let i = 0; i + 1 < f.length; i += 2) if (f[i] !== 'v') o[f[i]] = f[i + 1];
      return o;
    });
  };

  it('a second append for the same job is skipped atomically; other jobs still append', async () => {
    const [a, b] = await Promise.all([queue.add('e', { text: 'a' }), queue.add('e', { text: 'b' })]);
    const key = (j: Job) => `${j.queueQualifiedName}:${j.id}`;
    const first = await appendUpsertsOnce(redis, prefix, [
      { id: 'doc-a', namespace: 'notes', vector: vec(0.1), jobKey: key(a), jobId: a.id! },
      { id: 'doc-b', namespace: 'notes', vector: vec(0.2), jobKey: key(b), jobId: b.id! },
    ]);
    expect(first.every((id) => typeof id === 'string' && /^\d+-\d+$/.test(id))).toBe(true);
    // The job ran again (lost lock, killed worker): its upsert is not appended again.
    const again = await appendUpsertsOnce(redis, prefix, [{ id: 'doc-a', namespace: 'notes', vector: vec(0.1), jobKey: key(a), jobId: a.id! }]);
    expect(again).toEqual([null]);
    expect(await entries()).toEqual([
      { op: 'u', ns: 'notes', id: 'doc-a', j: a.id },
      { op: 'u', ns: 'notes', id: 'doc-b', j: b.id },
    ]);
    // The marker lives on the job's own hash, so it goes away with the job (no TTL to tune).
    expect(await redis.hget(key(a), INDEX_EFFECT_FIELD)).toBe(a.id);
    await a.remove();
    expect(await redis.exists(key(a))).toBe(0);
  });

  it('a job hash that no longer exists gets no marker and its upsert is still appended', async () => {
    const ids = await appendUpsertsOnce(redis, prefix, [{ id: 'x', vector: vec(0.3), jobKey: `${prefix}:embeddings:gone`, jobId: 'gone' }]);
    expect(ids[0]).toMatch(/^\d+-\d+$/);
    expect(await redis.exists(`${prefix}:embeddings:gone`)).toBe(0);
  });

  it('validates before touching Redis, naming each bad item', async () => {
    const err = await appendUpsertsOnce(redis, prefix, [
      { id: 'ok', vector: vec(0.1), jobKey: '', jobId: '1' },
      { id: '', vector: [Number.NaN], jobKey: 'k', jobId: '' },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(/\[0\]\.jobKey/);
    expect((err as Error).message).toMatch(/\[1\]\.id/);
    expect((err as Error).message).toMatch(/\[1\]\.jobId/);
    expect(await redis.exists(indexLogKey(prefix))).toBe(0);
  });
});

describe('a job that meets an open warehouse circuit goes back to waiting without spending an attempt', () => {
  it('finds the circuit error along a cause chain', () => {
    const open = new CircuitOpenError(1234);
    expect(circuitOpenCause(open)).toBe(open);
    expect(circuitOpenCause(new Error('batch failed', { cause: open }))).toBe(open);
    expect(circuitOpenCause(new Error('other'))).toBeUndefined();
    expect(circuitOpenCause(undefined)).toBeUndefined();
  });

  it('defers while the circuit is open, then completes on its first attempt; other errors still spend attempts', async () => {
    const redis = testRedis();
    const prefix = uniquePrefix('defer');
    const queue = new Queue('embeddings', { connection: redis, prefix });
    let outageCalls = 0;
    const deferred: number[] = [];
    const workerConnection = redis.duplicate();
    // Metrics see a deferral as its own outcome, not as a failure.
    const outcomes: unknown[] = [];
    const metrics = { job: (_q: string, _w: number, _d: number, ok: unknown) => outcomes.push(ok), tenantJob: () => undefined } as unknown as FleetMetrics;
    const worker = runWorker({
      queue: 'embeddings',
      connection: workerConnection,
      prefix,
      concurrency: 1,
      processor: instrumentProcessor(
        async (job: Job) => {
          if (job.data.mode === 'broken') throw new Error('a real failure');
          outageCalls += 1;
          if (outageCalls <= 3) throw new Error('batch failed', { cause: new CircuitOpenError(0) });
          return 'ok';
        },
        { metrics, isDeferral: (err) => circuitOpenCause(err) !== undefined },
      ),
      onDeferred: (_job, pauseMs) => deferred.push(pauseMs),
    });
    const finished = new Map<string, { ok: boolean; attemptsMade: number }>();
    worker.on('completed', (job) => finished.set(job.id!, { ok: true, attemptsMade: job.attemptsMade }));
    worker.on('failed', (job) => job && finished.set(job.id!, { ok: false, attemptsMade: job.attemptsMade }));
    /** Resolves when the worker has reported job `id` completed or failed (the listeners above run first). */
    const settled = (id: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!finished.has(id)) return;
          worker.off('completed', check).off('failed', check);
          resolve();
        };
        worker.on('completed', check).on('failed', check);
        check();
      });
    try {
      // attempts: 1, yet three outage-time failures do not fail it: each sends it back to waiting.
      const outage = await queue.add('e', { mode: 'outage' }, { attempts: 1 });
      await settled(outage.id!);
      expect(finished.get(outage.id!)).toEqual({ ok: true, attemptsMade: 1 });
      expect(outageCalls).toBe(4);
      expect(deferred).toEqual([500, 500, 500]);
      // A plain error (the call went out and failed) spends the attempt as usual.
      const broken = await queue.add('e', { mode: 'broken' }, { attempts: 1 });
      await settled(broken.id!);
      expect(finished.get(broken.id!)).toEqual({ ok: false, attemptsMade: 1 });
      expect(deferred).toHaveLength(3);
      expect(outcomes).toEqual(['deferred', 'deferred', 'deferred', true, false]);
    } finally {
      await worker.close();
      await workerConnection.quit();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await redis.quit();
    }
  });
});

describe('an enqueue that reaches Redis twice creates one job', () => {
  it('the producer chooses every job id, so a re-sent add (ioredis replays unanswered commands after a reconnect) is a no-op', async () => {
    const { createProducer } = await import('../src/producers');
    const redis = testRedis();
    const prefix = uniquePrefix('resend');
    const producer = createProducer({ connection: redis, prefix });
    try {
      const [a, b] = await producer.embed(['first note', 'second note']);
      const single = await producer.embed('third note');
      for (const h of [a, b, single]) expect(h.id).toMatch(/^j-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const queue = producer.queue('embeddings');
      // What a replay of the same command does: the same name, data and id.
      const original = await queue.getJob(a.id);
      await queue.add(original!.name, original!.data, { jobId: a.id });
      expect(await queue.count()).toBe(3);
    } finally {
      await producer.close();
      await redis.quit();
    }
  });
});
