import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createJobLogWriter, perJobLogs } from '../src/workers/job-logs';
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
});
