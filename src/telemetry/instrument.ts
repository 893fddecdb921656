import type { Logger } from 'pino';
import { tenantOfData } from '../contracts/tenants';
import type { FleetMetrics } from './metrics';
import { activeTraceIds, type TracedJob, withJobSpan } from './tracing';

/** The part of a BullMQ Job that `instrumentProcessor` reads (a bullmq `Job` fits). */
export interface InstrumentedJob extends TracedJob {
  /** Enqueue time, ms since epoch. */
  readonly timestamp: number;
  /** Start of the current attempt, ms since epoch (set by BullMQ when the job became active). */
  readonly processedOn?: number;
  readonly opts: { readonly delay?: number };
}

export interface InstrumentOptions {
  metrics?: FleetMetrics;
  /** Receives one debug line per failed attempt, with job and trace ids. */
  logger?: Logger;
  /** Wall clock for the wait time; default Date.now. */
  now?: () => number;
  /** Errors after which the job goes back to waiting without spending an attempt (recorded as `deferred`). */
  isDeferral?: (err: unknown) => boolean;
}

/**
 * Wraps a processor so each attempt runs in a CONSUMER span continuing the producer's trace, and
 * records wait time (first attempt only: retries wait for their backoff by design), processing time
 * and outcome; slow jobs are logged by `metrics` with the job id and trace id.
 *
 * @example
 *   runWorker({ queue: QUEUES.embeddings, processor: instrumentProcessor(embeddings.process, { metrics, logger }), ... })
 */
export function instrumentProcessor<J extends InstrumentedJob, R>(processor: (job: J) => Promise<R>, opts: InstrumentOptions = {}): (job: J) => Promise<R> {
  const now = opts.now ?? Date.now;
  return (job) =>
    withJobSpan(job, async () => {
      const startedAt = performance.now();
      const tenant = tenantOfData(job.data);
      opts.metrics?.tenantJob(job.queueName, tenant, 1);
      const waitMs = job.attemptsMade === 0 ? (job.processedOn ?? now()) - job.timestamp - (job.opts?.delay ?? 0) : -1;
      let ok: boolean | 'deferred' = false;
      try {
        const result = await processor(job);
        ok = true;
        return result;
      } catch (err) {
        if (opts.isDeferral?.(err)) ok = 'deferred';
        opts.logger?.debug(
          { queue: job.queueName, jobId: job.id, attempt: job.attemptsMade + 1, err: (err as Error)?.message, ...activeTraceIds() },
          'job attempt failed',
        );
        throw err;
      } finally {
        opts.metrics?.job(job.queueName, waitMs, performance.now() - startedAt, ok, { jobId: job.id });
        opts.metrics?.tenantJob(job.queueName, tenant, -1, ok, ok === true ? now() - job.timestamp : undefined);
      }
    });
}
