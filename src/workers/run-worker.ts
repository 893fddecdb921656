import { type ConnectionOptions, type Job, Queue, Worker } from 'bullmq';
import IORedis, { Cluster, type Redis } from 'ioredis';
import { JOB_DEFAULTS } from '../contracts/job-defaults';
import type { QueueName } from '../contracts/queues';
import { attachWorkerLanes, type FairnessSettings, fairnessSettings, isFairQueue, TenantLanes, type WorkerLanesOptions } from '../fairness';
import { CircuitOpenError } from '../warehouse/errors';

export interface RunWorkerOptions<R> {
  queue: QueueName;
  /** Redis connection (an ioredis instance with `maxRetriesPerRequest: null`, or options). */
  connection: ConnectionOptions;
  /** BullMQ key prefix, e.g. `{fleet}`. */
  prefix: string;
  processor: (job: Job) => Promise<R>;
  /**
   * Jobs held at once. For a coalescing processor this is what lets batches fill: jobs held = jobs/s x
   * seconds each job is held (batch wait + warehouse call), up to the batch size times the batch calls in
   * flight (see docs/operations.md, "Sizing concurrency").
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
  /**
   * Called when a job went back to waiting because the warehouse circuit is open (see `runWorker`), with
   * the time this worker pauses fetching. For logs and metrics; called once per deferred job.
   */
  onDeferred?: (job: Job, pauseMs: number) => void;
  /**
   * The fleet's fairness settings, as the producers have them (src/fairness). On a fair queue the worker
   * frees each finished job's slot in its tenant's lane and reconciles the lanes, on `redis` (default the
   * connection given, or BullMQ's command connection; never a blocking one). Default on, `DEFAULT_FAIRNESS`;
   * `false` or `enabled: false` only when the producers run without fairness too.
   */
  fairness?: ({ settings?: Partial<FairnessSettings>; redis?: Redis | Cluster } & WorkerLanesOptions) | false;
}

/** Bounds of the fetch pause after a job met an open warehouse circuit. */
const DEFER_MIN_MS = 500;
const DEFER_MAX_MS = 30_000;

/** The CircuitOpenError behind `err` (itself or along its `cause` chain), if any. */
export function circuitOpenCause(err: unknown): CircuitOpenError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof CircuitOpenError || (e as { code?: unknown }).code === 'FLEET_CIRCUIT_OPEN') return e as CircuitOpenError;
  }
  return undefined;
}

/**
 * Wires a processor to a BullMQ Worker. The caller owns the returned worker and closes it
 * (`worker.close()` waits for active jobs; `close(true)` forces).
 *
 * A job that fails because the warehouse circuit is open (the warehouse is known to be down) does not
 * spend an attempt: it goes back to waiting (BullMQ's manual rate limit) and this worker stops fetching
 * until the circuit's next probe. So an outage longer than the job's whole retry budget fails nothing;
 * attempts are spent only on calls that really went out and failed.
 */
export function runWorker<R>(opts: RunWorkerOptions<R>): Worker {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
    throw new RangeError(`runWorker: option \`concurrency\` must be an integer >= 1, got ${opts.concurrency}`);
  }
  let worker: Worker | undefined;
  // The deferral sets the queue's rate limit through a Queue handle (worker.rateLimit is deprecated for
  // queue.rateLimit; both set the same limiter key). Made at the first deferral, on the worker's connection.
  let limiter: Queue | undefined;
  const processor = async (job: Job): Promise<R> => {
    try {
      return await opts.processor(job);
    } catch (err) {
      const open = circuitOpenCause(err);
      if (!open || !worker) throw err;
      const pauseMs = Math.min(DEFER_MAX_MS, Math.max(DEFER_MIN_MS, open.retryAfterMs));
      if (!limiter) {
        limiter = new Queue(opts.queue, { connection: opts.connection, prefix: opts.prefix });
        limiter.on('error', (e) => worker?.emit('error', e));
      }
      await limiter.rateLimit(pauseMs);
      opts.onDeferred?.(job, pauseMs);
      throw Worker.RateLimitError();
    }
  };
  worker = new Worker(opts.queue, processor, {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency,
    autorun: opts.autorun ?? true,
    lockDuration: opts.lockDurationMs ?? 30_000,
    stalledInterval: opts.stalledIntervalMs ?? 30_000,
    maxStalledCount: opts.maxStalledCount ?? 3,
    removeOnComplete: opts.keepCompleted ?? { age: JOB_DEFAULTS.keepCompletedS, count: JOB_DEFAULTS.keepCompletedCount },
    removeOnFail: opts.keepFailed ?? { age: JOB_DEFAULTS.keepFailedS },
  });
  const fairness = opts.fairness === false ? undefined : (opts.fairness ?? {});
  const settings = fairness && fairnessSettings(fairness.settings);
  if (fairness && settings?.enabled && isFairQueue(opts.queue)) {
    const redis = fairness.redis ?? (opts.connection instanceof IORedis || opts.connection instanceof Cluster ? opts.connection : worker.getBackend().client);
    const lanes = attachWorkerLanes(worker, new TenantLanes(redis as Redis | Cluster | Promise<Redis | Cluster>, opts.prefix, opts.queue, settings), {
      ...fairness,
      onError: fairness.onError ?? ((err) => worker?.emit('error', err)),
    });
    // After the worker's last job: its release is sent before the caller closes the connection.
    worker.on('closed', () => void lanes.close());
  }
  worker.on('closed', () => {
    void limiter?.close().catch(() => undefined);
  });
  return worker;
}
