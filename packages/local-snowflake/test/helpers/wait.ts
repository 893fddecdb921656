/**
 * Waiting in the package's tests: its one poll helper (the same as the fleet's test/helpers/wait.ts; a
 * published package does not import the tests of the project that uses it).
 *
 * Wait for what happened, not for a while: when a condition can be read (a job count, a log line, a status
 * code), poll it with `waitUntil`; when something emits an event, await the event. `sleep` is for time that IS
 * the scenario (a token outlives its TTL), and each use says so in a comment.
 */

export interface WaitOptions {
  /** Give up after this long and fail with what was awaited. Default 30 s (under jest's 60 s test timeout). */
  timeoutMs?: number;
  /** Pause between two checks. Default 25 ms. */
  everyMs?: number;
}

/** What a check may answer: a falsy value means "not yet". */
type Falsy = false | 0 | '' | null | undefined;

/**
 * Calls `check` until it returns a truthy value and resolves with that value. A check that throws ends
 * the wait at once with its error: throw when waiting further cannot help (the process exited, the job
 * failed). On timeout the error names `what` and the last value seen.
 *
 * @example
 *   await waitUntil('the statement to run', () => wh.queryHistory({ status: 'RUNNING' }).some((e) => e.queryText === sql));
 *   const done = await waitUntil('the statement to end', () => wh.queryHistory().find((e) => e.queryText === sql && e.status !== 'RUNNING'), { timeoutMs: 5_000 });
 */
export async function waitUntil<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 30_000, everyMs = 25 }: WaitOptions = {},
): Promise<Exclude<T, Falsy>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, Falsy>;
    if (Date.now() >= deadline) {
      const last = value === false || value === undefined ? '' : `; last saw ${describe(value)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    }
    await sleep(Math.min(everyMs, Math.max(0, deadline - Date.now())));
  }
}

/** Resolves after `ms`. Only for durations that are part of the scenario; see the file's comment. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 500) ?? String(value);
  } catch {
    return String(value);
  }
}
