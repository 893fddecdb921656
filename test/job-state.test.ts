import { Queue, Worker } from 'bullmq';
import { closeRedis } from '../src/app/redis';
import { jobWithState } from '../src/http/job-state';
import { testRedis, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';

/**
 * The job routes read a job's hash and then its state: a job that finished between the two reads must not
 * come back 'completed' with no result (seen as a workflow "completed" with `report: null`).
 */
describe('jobWithState: a finished state comes with what the job finished with', () => {
  it('reads again a job that finished after it was read, and keeps one that had not', async () => {
    const redis = testRedis();
    const prefix = uniquePrefix('job-state');
    const queue = new Queue('q', { connection: redis, prefix });
    const worker = new Worker('q', async (job) => (job.data.fail ? Promise.reject(new Error('no')) : { answer: job.data.n * 2 }), {
      connection: testRedis(),
      prefix,
      autorun: false,
    });
    try {
      const done = await queue.add('ok', { n: 21 });
      const failed = await queue.add('bad', { fail: true });
      const waiting = await queue.add('later', { n: 1 }, { delay: 60_000 });
      // Read while waiting, as a route does before the worker finishes them.
      const [staleDone, staleFailed] = await Promise.all([queue.getJob(done.id!), queue.getJob(failed.id!)]);
      expect(staleDone!.returnvalue ?? null).toBeNull();
      void worker.run();
      await waitUntil('both jobs finished', async () => {
        const counts = await queue.getJobCounts('completed', 'failed');
        return counts.completed === 1 && counts.failed === 1;
      });

      const ok = await jobWithState(queue, staleDone!);
      expect([ok.state, ok.job.returnvalue, typeof ok.job.finishedOn]).toEqual(['completed', { answer: 42 }, 'number']);
      const bad = await jobWithState(queue, staleFailed!);
      expect([bad.state, bad.job.failedReason]).toEqual(['failed', 'no']);
      const still = await jobWithState(queue, (await queue.getJob(waiting.id!))!);
      expect(still.state).toBe('delayed');
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
      await Promise.all([closeRedis(redis), closeRedis(worker.opts.connection as never)]);
    }
  });
});
