import { type Job, UnrecoverableError } from 'bullmq';
import { ValidationError } from '../contracts/errors';
import { validate } from '../contracts/validate';

/** How a processor batches its warehouse calls; every coalescing processor takes it. */
export interface BatchingOptions {
  /** Most distinct keys per warehouse call. Default 500. */
  maxBatchSize?: number;
  /** Longest a key waits for its batch to fill. Default 25 ms. */
  maxWaitMs?: number;
  /** Adaptive batching when set: the longest a key waits for company (`maxWaitMs` unused). Default unset. */
  targetMs?: number;
  /** Batch calls in flight; the warehouse pool size. Default 8. */
  maxConcurrentBatches?: number;
}

/**
 * Validates job data inside a worker with the same schema the producer used: a payload that can never
 * succeed (written by something other than the producer, or an older version) fails without retries.
 */
export function parseJobData<T>(schema: Parameters<typeof validate>[0], job: Job): T {
  try {
    return validate(schema, job.data) as T;
  } catch (err) {
    if (err instanceof ValidationError) throw new UnrecoverableError(err.message);
    throw err;
  }
}
