import type { Queue } from 'bullmq';
import type { QueueName } from '../contracts/queues';
import type { Producer } from '../producers';
import { withDeadline } from '../resilience';
import type { FleetMetrics } from '../telemetry/metrics';
import { withEnqueueSpan } from '../telemetry/tracing';
import type { BacklogGuard } from './backlog';
import { HttpError } from './http-error';

/** How the API's routes reach Redis: within a deadline, and enqueues only within the queue's backlog bound. */
export interface Admission {
  /** A queue by name: one the API was given, else the producer's. */
  queue(name: QueueName): Queue;
  /** Redis work of a request, bounded: past the deadline a 503 with Retry-After. */
  withinDeadline<T>(work: Promise<T>, what: 'enqueue' | 'job lookup'): Promise<T>;
  /**
   * Admits `count` jobs against the queue's backlog bound (429 past it), then runs the enqueue in an
   * enqueue span; both within the deadline. A refused or failed enqueue gives its admission back.
   */
  enqueue<T>(queue: QueueName, count: number, fn: (trace: Record<string, string>) => Promise<T>): Promise<T>;
}

export function createAdmission(opts: {
  producer: Producer;
  queues: ReadonlyMap<string, Queue>;
  backlog: BacklogGuard;
  redisTimeoutMs: number;
  metrics?: FleetMetrics;
}): Admission {
  const { producer, queues, backlog, redisTimeoutMs, metrics } = opts;
  const queue = (name: QueueName): Queue => queues.get(name) ?? producer.queue(name);
  const withinDeadline = <T>(work: Promise<T>, what: 'enqueue' | 'job lookup') =>
    withDeadline(
      work,
      redisTimeoutMs,
      () =>
        new HttpError(
          503,
          'redis_timeout',
          `Redis did not answer within ${redisTimeoutMs} ms (${what}); retry later${what === 'enqueue' ? ' with the same Idempotency-Key' : ''}`,
          undefined,
          { 'retry-after': '1' },
        ),
    );
  return {
    queue,
    withinDeadline,
    async enqueue(name, count, fn) {
      let admitted = false;
      try {
        return await withinDeadline(
          (async () => {
            await backlog.admit(queue(name), count);
            admitted = true;
            return withEnqueueSpan(name, fn, { 'messaging.batch.message_count': count });
          })(),
          'enqueue',
        );
      } catch (err) {
        if (admitted) backlog.release(name, count);
        if (err instanceof HttpError && err.status === 429) metrics?.backlogRejected(name);
        throw err;
      }
    },
  };
}
