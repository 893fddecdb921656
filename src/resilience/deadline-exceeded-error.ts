/**
 * Something did not answer within its deadline (`withDeadline` given a name instead of its own error).
 * Usually means the other side (Redis, a queue, a health check) is slow or unreachable; the work itself
 * may still finish later, but nobody waits for it.
 */
export class DeadlineExceededError extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
  ) {
    super(`${what} did not answer within ${timeoutMs} ms`);
    this.name = 'DeadlineExceededError';
  }
}
