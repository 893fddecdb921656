import { DeadlineExceededError } from './deadline-exceeded-error';

/** Largest delay `setTimeout` honours; a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `work`'s outcome, or a rejection once `ms` have passed without one: with `onTimeout()`, or, given a name,
 * a `DeadlineExceededError` ("<what> did not answer within <ms> ms"). The timer is cleared as soon as
 * either side settles. `work` is not cancelled: it may still settle later, and that outcome is dropped
 * (a late rejection is handled, never unhandled).
 *
 * @example
 *   const counts = await withDeadline(queue.getJobCounts(), 2_000, `getJobCounts(${queue.name})`);
 *   await withDeadline(pipeline.exec(), 100, () => new CacheUnavailableError('read', 'timeout'));
 */
export function withDeadline<T>(work: PromiseLike<T>, ms: number, onTimeout: string | (() => unknown)): Promise<T> {
  return race(work, ms, (_resolve, reject) => reject(typeof onTimeout === 'string' ? new DeadlineExceededError(onTimeout, ms) : onTimeout()));
}

/**
 * `work`'s value, or `fallback` once `ms` have passed without one (a rejection of `work` still rejects).
 * For waits whose outcome is optional: a validation that counts "no answer" as "invalid", a bounded
 * wait during close. Same timer and late-outcome rules as `withDeadline`.
 *
 * @example
 *   const ok = await withDeadlineOr(connection.isValidAsync(), 5_000, false);
 */
export function withDeadlineOr<T, F = T>(work: PromiseLike<T>, ms: number, fallback: F): Promise<T | F> {
  return race<T | F>(work, ms, (resolve) => resolve(fallback));
}

function race<T>(work: PromiseLike<T>, ms: number, expire: (resolve: (v: T) => void, reject: (e: unknown) => void) => void): Promise<T> {
  if (typeof ms !== 'number' || !(ms >= 0) || ms > MAX_TIMER_MS)
    throw new RangeError(`withDeadline: ms must be a number of milliseconds in [0, ${MAX_TIMER_MS}], got ${String(ms)}`);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => expire(resolve, reject), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
