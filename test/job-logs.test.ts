import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { describeBatches, lookupKeys, textHash } from '../src/contracts/batch-log';
import { CircuitOpenError } from '../src/warehouse/errors';
import { type BatchEvent, Coalescer } from '../src/workers/coalescer';
import { createJobLogWriter, logFailedBatches, perJobLogs } from '../src/workers/job-logs';
import { testRedis, uniquePrefix } from './helpers/redis';

/** Script calls (EVALSHA + EVAL) the test Redis has served: the suite runs in band, so a delta is ours. */
async function scriptCalls(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) calls += Number(m[2]);
  return calls;
}

describe('job log writer (rows of one event-loop turn in one script call)', () => {
  let redis: Redis;
  let logConn: Redis;
  let queue: Queue;
  let prefix: string;

  beforeEach(() => {
    redis = testRedis();
    logConn = testRedis();
    prefix = uniquePrefix('joblogs');
    queue = new Queue('embeddings', { connection: redis, prefix });
  });

  afterEach(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await Promise.all([redis.quit(), logConn.quit()]);
  });

  const addJobs = async (n: number, opts: { keepLogs?: number } = {}): Promise<Job[]> =>
    queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'embed', data: { text: `t${i}` }, opts: { jobId: `j-${i}`, ...opts } })));

  it('writes 300 rows logged together with one script call, each to its own job, readable as BullMQ logs', async () => {
    const jobs = await addJobs(300);
    const writer = createJobLogWriter(logConn);
    await writer.log(jobs[0], 'warm-up'); // the first call on a connection sends the script text (EVAL), later ones its sha (EVALSHA)
    const before = await scriptCalls(redis);
    await Promise.all(jobs.map((job) => writer.log(job, `served by batch b-${job.id}`)));
    const after = await scriptCalls(redis);
    expect(after - before).toBe(1);
    for (const job of [jobs[1], jobs[150], jobs[299]]) {
      const { logs, count } = await queue.getJobLogs(job.id!);
      expect(count).toBe(1);
      expect(logs).toEqual([`served by batch b-${job.id}`]);
    }
    expect((await queue.getJobLogs(jobs[0].id!)).logs).toEqual(['warm-up', 'served by batch b-j-0']);
    await writer.close();
  });

  it('costs one script per job with job.log, the default it replaces', async () => {
    const jobs = await addJobs(50);
    await perJobLogs.log(jobs[0], 'warm-up');
    const before = await scriptCalls(redis);
    await Promise.all(jobs.slice(1).map((job) => perJobLogs.log(job, 'row')));
    expect((await scriptCalls(redis)) - before).toBe(49);
  });

  it('keeps only the last keepLogs rows of a job, as job.log does', async () => {
    const [job] = await addJobs(1, { keepLogs: 2 });
    const writer = createJobLogWriter(logConn);
    for (const row of ['one', 'two', 'three']) await writer.log(job, row);
    expect((await queue.getJobLogs(job.id!)).logs).toEqual(['two', 'three']);
    await writer.close();
  });

  it('rejects only the row of a job that is gone; the rest of the batch is written', async () => {
    const jobs = await addJobs(3);
    await jobs[1].remove();
    const writer = createJobLogWriter(logConn);
    const results = await Promise.allSettled(jobs.map((job) => writer.log(job, 'row')));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/Missing key for job .*j-1/);
    expect((await queue.getJobLogs('j-1')).logs).toEqual([]);
    expect((await queue.getJobLogs('j-2')).logs).toEqual(['row']);
    await writer.close();
  });

  it('splits more rows than maxBatchSize into several calls, and refuses rows after close', async () => {
    const jobs = await addJobs(25);
    const writer = createJobLogWriter(logConn, { maxBatchSize: 10 });
    await writer.log(jobs[0], 'warm-up');
    const before = await scriptCalls(redis);
    await Promise.all(jobs.map((job) => writer.log(job, 'row')));
    expect((await scriptCalls(redis)) - before).toBe(3);
    await writer.close();
    await expect(writer.log(jobs[0], 'late')).rejects.toThrow(/closed/);
  });

  describe('lookup indexes, written in the same script call as the rows', () => {
    const served = (batchId: string, size: number, opts: Partial<BatchEvent> = {}): BatchEvent => ({
      name: 'emb',
      batch: { batchId, size, jobs: size },
      durationMs: 12.4,
      ok: true,
      split: false,
      ...opts,
    });
    const queueKey = () => `${prefix}:embeddings`;
    const members = (key: string) => redis.zrange(key, 0, -1);

    it('indexes 300 jobs of two batches by batch and text, with both batch records, in one script call', async () => {
      const jobs = await addJobs(300);
      const writer = createJobLogWriter(logConn, { retentionS: 600 });
      await writer.log(jobs[0], 'warm-up');
      writer.observe(served('emb-aa11bb-1', 150));
      writer.observe(served('emb-aa11bb-2', 150));
      const batchOf = (i: number) => (i < 150 ? 'emb-aa11bb-1' : 'emb-aa11bb-2');
      const before = await scriptCalls(redis);
      await Promise.all(jobs.map((job, i) => writer.log(job, `served by ${describeBatches([{ batchId: batchOf(i), size: 150 }], 'texts')}`)));
      expect((await scriptCalls(redis)) - before).toBe(1);
      const first = await members(lookupKeys.batchJobs(queueKey(), 'emb-aa11bb-1'));
      expect(first.sort()).toEqual(
        jobs
          .slice(0, 150)
          .map((j) => j.id!)
          .sort(),
      );
      expect(await redis.zcard(lookupKeys.batchJobs(queueKey(), 'emb-aa11bb-2'))).toBe(150);
      expect(await members(lookupKeys.text(queueKey(), textHash('t7')))).toEqual(['j-7']);
      const record = await redis.hgetall(lookupKeys.batch(queueKey(), 'emb-aa11bb-2'));
      expect(record).toMatchObject({ batchId: 'emb-aa11bb-2', name: 'emb', size: '150', jobs: '150', outcome: 'ok', split: '0', durationMs: '12' });
      expect(JSON.parse(record.queryTag)).toEqual({ queue: 'embeddings', batchId: 'emb-aa11bb-2', jobs: 150 });
      for (const key of [
        lookupKeys.batch(queueKey(), 'emb-aa11bb-1'),
        lookupKeys.batchJobs(queueKey(), 'emb-aa11bb-1'),
        lookupKeys.text(queueKey(), textHash('t0')),
      ]) {
        const ttl = await redis.ttl(key);
        expect({ key, ok: ttl > 540 && ttl <= 600 }).toEqual({ key, ok: true });
      }
      await writer.close();
    });

    it('records the failed batch a split half came from, with its error and query id', async () => {
      const jobs = await addJobs(2);
      const writer = createJobLogWriter(logConn);
      const failure = Object.assign(new Error('statement failed'), { queryId: '01b2-0000-q' });
      writer.observe(served('emb-cc22dd-4', 2, { ok: false, error: failure }));
      writer.observe(served('emb-cc22dd-4.1', 1, { split: true }));
      await writer.log(jobs[0], `served by ${describeBatches([{ batchId: 'emb-cc22dd-4.1', size: 1 }], 'texts')}`);
      expect(await redis.hgetall(lookupKeys.batch(queueKey(), 'emb-cc22dd-4.1'))).toMatchObject({ outcome: 'ok', split: '1', parent: 'emb-cc22dd-4' });
      expect(await redis.hgetall(lookupKeys.batch(queueKey(), 'emb-cc22dd-4'))).toMatchObject({
        outcome: 'failed',
        error: 'statement failed',
        queryId: '01b2-0000-q',
      });
      expect(await members(lookupKeys.batchJobs(queueKey(), 'emb-cc22dd-4.1'))).toEqual(['j-0']);
      await writer.close();
    });

    /** A coalescer over `loadBatch` whose batches the writer observes, as the worker roles wire it. */
    const observedCoalescer = (
      writer: ReturnType<typeof createJobLogWriter>,
      loadBatch: ConstructorParameters<typeof Coalescer<string, string>>[0]['loadBatch'],
    ) => new Coalescer<string, string>({ name: 'emb', maxBatchSize: 500, maxWaitMs: 5, loadBatch, onBatch: (e) => writer.observe(e) });

    it("writes the rows of the 300 jobs a failed batch failed, and the batch's record, in one script call", async () => {
      const jobs = await addJobs(300);
      const writer = createJobLogWriter(logConn, { retentionS: 600 });
      await writer.log(jobs[0], 'warm-up');
      // Its statement ran and then failed: the failed statement's query id is the one recorded.
      const c = observedCoalescer(writer, async (_keys, _batch, call) => {
        call.onQueryId('01-q-ran');
        throw Object.assign(new Error('warehouse said no'), { transient: true, queryId: '01-q-failed' });
      });
      const before = await scriptCalls(redis);
      await Promise.all(
        jobs.map((job) =>
          c.load(job.data.text).then(
            () => undefined,
            (err: unknown) => logFailedBatches(writer, job, [err], 'texts'),
          ),
        ),
      );
      expect((await scriptCalls(redis)) - before).toBe(1);
      const row = (await queue.getJobLogs('j-7')).logs.at(-1)!;
      const batchId = /^failed in batch (\S+) \(300 texts\)$/.exec(row)?.[1];
      expect(batchId).toEqual(expect.any(String));
      expect(await redis.zcard(lookupKeys.batchJobs(queueKey(), batchId!))).toBe(300);
      expect(await redis.hgetall(lookupKeys.batch(queueKey(), batchId!))).toMatchObject({
        outcome: 'failed',
        error: 'warehouse said no',
        queryId: '01-q-failed',
        size: '300',
        jobs: '300',
      });
      await c.close();
      await writer.close();
    });

    it('indexes a job under the failed batch its half came from; a served batch records the query id its call named', async () => {
      const jobs = await addJobs(2);
      const writer = createJobLogWriter(logConn);
      const c = observedCoalescer(writer, async (keys, batch, call) => {
        call.onQueryId(`q-${batch.batchId}`);
        if (keys.includes('t0')) throw new Error('t0 breaks the statement');
        return keys;
      });
      await Promise.all(
        jobs.map((job) =>
          c.load(job.data.text).then(
            ({ batch }) => writer.log(job, `served by ${describeBatches([batch], 'texts')}`),
            (err: unknown) => logFailedBatches(writer, job, [err], 'texts'),
          ),
        ),
      );
      const failedHalf = /^failed in batch (\S+) /.exec((await queue.getJobLogs('j-0')).logs[0])![1];
      const servedHalf = /^served by batch (\S+) /.exec((await queue.getJobLogs('j-1')).logs[0])![1];
      const root = failedHalf.replace(/\.1$/, '');
      expect(servedHalf).toBe(`${root}.2`);
      expect(await members(lookupKeys.batchJobs(queueKey(), failedHalf))).toEqual(['j-0']);
      expect(await members(lookupKeys.batchJobs(queueKey(), servedHalf))).toEqual(['j-1']);
      expect((await members(lookupKeys.batchJobs(queueKey(), root))).sort()).toEqual(['j-0', 'j-1']);
      expect(await redis.hgetall(lookupKeys.batch(queueKey(), root))).toMatchObject({ outcome: 'failed', queryId: `q-${root}` });
      expect(await redis.hgetall(lookupKeys.batch(queueKey(), failedHalf))).toMatchObject({ outcome: 'failed', parent: root });
      expect(await redis.hgetall(lookupKeys.batch(queueKey(), servedHalf))).toMatchObject({ outcome: 'ok', queryId: `q-${servedHalf}`, parent: root });
      await c.close();
      await writer.close();
    });

    it('logs no failed row for an error no batch call raised, nor for a call the open circuit refused', async () => {
      const jobs = await addJobs(2);
      const writer = createJobLogWriter(logConn);
      const c = observedCoalescer(writer, async () => {
        throw new CircuitOpenError(1_000);
      });
      const refused = await c.load('t0').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(CircuitOpenError);
      await logFailedBatches(writer, jobs[0], [refused], 'texts');
      await logFailedBatches(writer, jobs[1], [new Error('validation')], 'texts');
      expect((await queue.getJobLogs('j-0')).logs).toEqual([]);
      expect((await queue.getJobLogs('j-1')).logs).toEqual([]);
      await c.close();
      await writer.close();
    });

    it('indexes nothing for a job that is gone, and links rows to the lookup page only when asked', async () => {
      const jobs = await addJobs(2);
      await jobs[1].remove();
      const writer = createJobLogWriter(logConn, { batchPage: '/admin/jobs' });
      const row = `served by ${describeBatches([{ batchId: 'emb-ee33ff-9', size: 2 }], 'texts')}`;
      const settled = await Promise.allSettled(jobs.map((job) => writer.log(job, row)));
      expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
      expect(await members(lookupKeys.batchJobs(queueKey(), 'emb-ee33ff-9'))).toEqual(['j-0']);
      expect(await members(lookupKeys.text(queueKey(), textHash('t1')))).toEqual([]);
      expect((await queue.getJobLogs('j-0')).logs).toEqual([`${row} · /admin/jobs?batch=emb-ee33ff-9`]);
      await writer.close();
    });

    it("indexes a job under its tenant (its own, else its index target's), hashed", async () => {
      const [own, target, none] = await queue.addBulk([
        { name: 'embed', data: { text: 'a', tenant: 'acme' }, opts: { jobId: 'own' } },
        { name: 'embed', data: { text: 'b', index: { namespace: 'calls', id: 'c-1', tenant: 'acme' } }, opts: { jobId: 'target' } },
        { name: 'embed', data: { text: 'c' }, opts: { jobId: 'none' } },
      ]);
      const writer = createJobLogWriter(logConn);
      await Promise.all([own, target, none].map((job) => writer.log(job, 'served from cache (l1)')));
      expect((await members(lookupKeys.tenant(queueKey(), 'acme'))).sort()).toEqual(['own', 'target']);
      expect(await redis.keys(`${prefix}:*acme*`)).toEqual([]);
      await writer.close();
    });

    it('rejects a retention that is not a positive integer', () => {
      expect(() => createJobLogWriter(logConn, { retentionS: 0 })).toThrow(/retentionS.*got 0/);
    });
  });
});
