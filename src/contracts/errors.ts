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
