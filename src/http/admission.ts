import type { Queue } from 'bullmq';
import { EnqueueDroppedError, TenantLimitError } from '../contracts/errors';
import type { QueueName } from '../contracts/queues';
import type { Producer } from '../producers';
import { withDeadline, withDeadlineOr } from '../resilience';
import type { FleetMetrics } from '../telemetry/metrics';
import { withEnqueueSpan } from '../telemetry/tracing';
import type { BacklogGuard } from './backlog';
import { HttpError } from './http-error';
import { QueueSet } from './queue-set';

/** How the API's routes reach Redis: within a deadline, and enqueues only within the queue's backlog bound. */
export interface Admission {
  /** A queue by name: one the API was given, else the producer's. */
  queue(name: QueueName): Queue;
  /** Redis work of a request, bounded: past the deadline a 503 with Retry-After. */
  withinDeadline<T>(work: Promise<T>, what: 'enqueue' | 'job lookup'): Promise<T>;
  /** A lookup whose answer is optional: `fallback` past the deadline or on an error, never a 503. */
  lookupOr<T, F>(work: Promise<T>, fallback: F): Promise<T | F>;
  /**
   * Admits `count` jobs against the queue's backlog bound (429 past it), then runs the enqueue in an
   * enqueue span, within the deadline. Past the deadline the enqueue is aborted: if it had not been sent,
   * a 503 (it will never appear); if it had, a 504 saying its outcome is unknown and naming the
   * Idempotency-Key to retry with. A refused or unsent enqueue gives its admission back.
   */
  enqueue<T>(queue: QueueName, count: number, idempotencyKey: string, fn: (trace: Record<string, string>, signal: AbortSignal) => Promise<T>): Promise<T>;
}

const TIMED_OUT = Symbol('timed out');

export function createAdmission(opts: {
  producer: Producer;
  queues: QueueSet;
  backlog: BacklogGuard;
  redisTimeoutMs: number;
  metrics?: FleetMetrics;
}): Admission {
  const { producer, queues, backlog, redisTimeoutMs, metrics } = opts;
  const queue = (name: QueueName): Queue => queues.shards(name)[0] ?? producer.queue(name);
  // The backlog of every shard of the queue: the bound is the queue's, however it is split.
  const backlogOf = (name: QueueName) => (queues.has(name) ? queues : new QueueSet(producer.shardQueues(name))).backlogSource(name);
  const withinDeadline = <T>(work: Promise<T>, what: 'enqueue' | 'job lookup') =>
    withDeadline(
      work,
      redisTimeoutMs,
      () => new HttpError(503, 'redis_timeout', `Redis did not answer within ${redisTimeoutMs} ms (${what}); retry later`, undefined, { 'retry-after': '1' }),
    );
  return {
    queue,
    withinDeadline,
    lookupOr: <T, F>(work: Promise<T>, fallback: F) => withDeadlineOr<T | F>(work, redisTimeoutMs, fallback).catch(() => fallback),
    async enqueue(name, count, idempotencyKey, fn) {
      const abort = new AbortController();
      let admitted = false;
      let sending = false;
      let dropped = false;
      const work = (async () => {
        // With Redis away the count cannot be read, and the producer's buffer is the bound that holds.
        if (producer.stats().connected) {
          await backlog.admit(backlogOf(name), count);
          admitted = true;
        }
        if (abort.signal.aborted) throw new EnqueueDroppedError(name, [], 'aborted');
        sending = true;
        // The request's server span is the publish span: an enqueue route does nothing else.
        return withEnqueueSpan(name, (trace) => fn(trace, abort.signal), { 'messaging.batch.message_count': count }, { inRequest: true });
      })();
      work.catch((err) => {
        if (err instanceof EnqueueDroppedError) dropped = true;
      });
      try {
        return await withDeadline(work, redisTimeoutMs, () => TIMED_OUT);
      } catch (err) {
        if (err !== TIMED_OUT) {
          if (admitted) backlog.release(name, count);
          if (err instanceof HttpError && err.status === 429) metrics?.backlogRejected(name);
          if (err instanceof TenantLimitError) metrics?.tenantRejected(name, err.tenant, err.kind);
          throw err;
        }
        // The producer drops an aborted enqueue synchronously if it was still waiting; its rejection lands
        // within this turn's microtasks, so one macrotask later `dropped` is settled.
        abort.abort();
        await new Promise((resolve) => setImmediate(resolve));
        if (!sending || dropped) {
          if (admitted) backlog.release(name, count);
          throw new HttpError(
            503,
            'redis_unavailable',
            `Redis did not answer within ${redisTimeoutMs} ms and nothing was enqueued: no job will appear from this request. Retry later (Idempotency-Key ${idempotencyKey}).`,
            undefined,
            { 'retry-after': '1' },
          );
        }
        throw new HttpError(
          504,
          'enqueue_outcome_unknown',
          `the enqueue was sent but Redis did not answer within ${redisTimeoutMs} ms: the job(s) may or may not have been enqueued. Retry with the same Idempotency-Key (${idempotencyKey}); a retry never adds a second job.`,
          undefined,
          { 'retry-after': '1' },
        );
      }
    },
  };
}
