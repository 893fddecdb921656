import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { QueueName } from '../contracts/queues';

export interface RunWorkerOptions<R> {
  queue: QueueName;
  /** Redis connection (an ioredis instance with `maxRetriesPerRequest: null`, or options). */
  connection: ConnectionOptions;
  /** BullMQ key prefix, e.g. `{fleet}`. */
  prefix: string;
  processor: (job: Job) => Promise<R>;
  /**
   * Jobs held at once. For a coalescing processor this is what lets batches fill: it must be at least
   * the batch size times the batch calls in flight (see README, "Sizing concurrency").
   */
  concurrency: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  maxStalledCount?: number;
  /** Retention applied when the job is finished (BullMQ's worker-level removeOnComplete/Fail). */
  keepCompleted?: { age: number; count: number };
  keepFailed?: { age: number };
  /** Start fetching at once (default true). */
  autorun?: boolean;
}

/**
 * Wires a processor to a BullMQ Worker. The caller owns the returned worker and closes it
 * (`worker.close()` waits for active jobs; `close(true)` forces).
 */
export function runWorker<R>(opts: RunWorkerOptions<R>): Worker {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
    throw new RangeError(`runWorker: option \`concurrency\` must be an integer >= 1, got ${opts.concurrency}`);
  }
  return new Worker(opts.queue, opts.processor, {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency,
    autorun: opts.autorun ?? true,
    lockDuration: opts.lockDurationMs ?? 30_000,
    stalledInterval: opts.stalledIntervalMs ?? 30_000,
    maxStalledCount: opts.maxStalledCount ?? 3,
    removeOnComplete: opts.keepCompleted ?? { age: 86_400, count: 50_000 },
    removeOnFail: opts.keepFailed ?? { age: 7 * 86_400 },
  });
}
