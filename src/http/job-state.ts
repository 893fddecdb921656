import type { Job, Queue } from 'bullmq';

export type JobStateName = Awaited<ReturnType<Job['getState']>>;

/**
 * A job's state together with the job as of that state. The job's hash and its state are two reads, so a
 * job that finished between them would read 'completed' (or 'failed') with no result, finish time or
 * reason; such a job is read once more, and a finished state always comes with what it finished with.
 */
export async function jobWithState(queue: Queue, job: Job): Promise<{ job: Job; state: JobStateName }> {
  const state = await job.getState();
  if ((state === 'completed' || state === 'failed') && job.finishedOn === undefined) {
    const fresh = await queue.getJob(String(job.id));
    if (fresh) return { job: fresh, state };
  }
  return { job, state };
}
