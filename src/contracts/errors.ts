/**
 * A payload or argument failed validation before it reached Redis or the warehouse. `issues` lists
 * every problem with the path of the field (`dealIds[3]`, `text`) so a caller can fix them all at once.
 * Never retried: the same input fails the same way.
 */
export class ValidationError extends Error {
  constructor(readonly issues: readonly { path: string; message: string }[]) {
    super(`invalid input: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`);
    this.name = 'ValidationError';
  }
}

/** Waiting for a job's result took longer than the caller allowed. The job itself may still complete. */
export class ResultTimeoutError extends Error {
  constructor(
    readonly queue: string,
    readonly jobId: string,
    readonly timeoutMs: number,
  ) {
    super(`job ${queue}/${jobId} did not finish within ${timeoutMs} ms (it may still complete)`);
    this.name = 'ResultTimeoutError';
  }
}

/** The job failed for good (its retries are exhausted); `reason` is the worker's last error message. */
export class JobFailedError extends Error {
  constructor(
    readonly queue: string,
    readonly jobId: string,
    readonly reason: string,
  ) {
    super(`job ${queue}/${jobId} failed: ${reason}`);
    this.name = 'JobFailedError';
  }
}

/**
 * Redis could not be reached, so the enqueue was not sent and will never appear later (nothing was
 * buffered: buffering is off, or the call cannot be buffered). `redis` is where the producer looked
 * (`redis://host:port`), `cause` the last connection error. Safe to retry, with the same idempotency key.
 */
export class RedisUnavailableError extends Error {
  constructor(
    readonly redis: string,
    readonly reason: string,
  ) {
    super(`Redis is unreachable at ${redis} (${reason}); nothing was enqueued`);
    this.name = 'RedisUnavailableError';
  }
}

/**
 * Redis is unreachable and the producer's outage buffer has no room for this call (`maxJobs` or
 * `maxBytes`): nothing of the call was enqueued or buffered, and nothing will appear later.
 */
export class BufferFullError extends Error {
  constructor(
    readonly redis: string,
    readonly limit: 'maxJobs' | 'maxBytes',
    readonly bound: number,
    readonly jobs: number,
  ) {
    super(`Redis is unreachable at ${redis} and the producer's buffer is full (${limit} ${bound}); ${jobs} job${jobs === 1 ? ' was' : 's were'} not enqueued`);
    this.name = 'BufferFullError';
  }
}

/**
 * A buffered enqueue was removed before it reached Redis (the caller's AbortSignal, or `close()` ran out of
 * time): it was never sent and will never appear. Thrown by the call itself or by its handle's `persisted`.
 */
export class EnqueueDroppedError extends Error {
  constructor(
    readonly queue: string,
    readonly jobIds: readonly string[],
    readonly why: 'aborted' | 'closed' | 'rejected by Redis',
    detail?: string,
  ) {
    super(`enqueue of ${jobIds.length} job(s) to ${queue} was dropped before it reached Redis (${why}${detail ? `: ${detail}` : ''}); it will not appear`);
    this.name = 'EnqueueDroppedError';
  }
}

/**
 * An enqueue was sent but the connection failed before Redis answered (a bulk add can be cut part-way):
 * some or all of its jobs may be in Redis. With buffering off the producer cannot resend it later, so the
 * caller decides: retrying with the same idempotency key (or the same `jobIds`) never doubles a job.
 */
export class EnqueueOutcomeUnknownError extends Error {
  constructor(
    readonly redis: string,
    readonly queue: string,
    readonly jobIds: readonly string[],
    readonly reason: string,
  ) {
    super(
      `the connection to Redis at ${redis} failed during the enqueue of ${jobIds.length} job(s) to ${queue} (${reason}): some may have been enqueued; retry with the same idempotency key, which never doubles a job`,
    );
    this.name = 'EnqueueOutcomeUnknownError';
  }
}

/**
 * A tenant is over one of its limits on a queue, so nothing of the call was enqueued: `queued` — it already
 * has `limit` jobs accepted and not yet finished there (`current` of them); `rate` — it enqueued faster than
 * `limit` jobs per second. `retryAfterMs` says when a retry can succeed (for `rate`; for `queued` it
 * depends on how fast the tenant's jobs finish). The HTTP API answers 429 with `Retry-After`.
 */
export class TenantLimitError extends Error {
  readonly code = 'FLEET_TENANT_LIMIT';
  constructor(
    readonly tenant: string,
    readonly queue: string,
    readonly kind: 'queued' | 'rate',
    readonly limit: number,
    readonly current: number,
    readonly retryAfterMs: number,
    readonly jobs: number,
  ) {
    super(
      kind === 'queued'
        ? `tenant ${JSON.stringify(tenant)} has ${current} unfinished job(s) in ${queue}, its limit is ${limit}; ${jobs} job(s) not enqueued`
        : `tenant ${JSON.stringify(tenant)} is over its rate of ${limit} job(s)/s in ${queue}; ${jobs} job(s) not enqueued, retry in ${Math.ceil(retryAfterMs / 1000)} s`,
    );
    this.name = 'TenantLimitError';
  }
}
