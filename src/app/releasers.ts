import { withDeadlineOr } from '../resilience/deadline';
import type { Logger } from '../telemetry/logger';
import { briefError } from '../telemetry/outage-log';

export interface ReleaseOptions {
  /**
   * Ends the resource at once when its release did not finish within its share of the shutdown bound (e.g.
   * drop a Redis connection instead of waiting for QUIT's reply). Not awaited for long: the next step starts.
   */
  force?: () => unknown;
}

export interface ReleaseAllOptions {
  /**
   * The whole release ends within this many ms: each step gets what is left of it, a step still running
   * at its deadline is forced (`ReleaseOptions.force`) and the next step starts. Default: unbounded.
   */
  budgetMs?: number;
  /**
   * Failures that are part of a known situation and not a fault of the release (with Redis down at
   * shutdown: connection errors, and steps that waited on Redis past their deadline): logged in one line
   * without a stack, and they do not make `releaseAll` reject.
   */
  isExpected?: (err: unknown) => boolean;
}

/** A release step did not finish within its share of the shutdown bound; it was forced and left behind. */
export class ReleaseTimeoutError extends Error {
  constructor(
    readonly resource: string,
    readonly timeoutMs: number,
  ) {
    super(`release of ${resource} did not finish within ${timeoutMs} ms; forced`);
    this.name = 'ReleaseTimeoutError';
  }
}

/** How long a forced step may take before the next one starts (a force is a disconnect or a kill: immediate). */
const FORCE_WAIT_MS = 200;

/** `'done'` when `promise` settles within `ms` (rejecting if it rejects), else `'timeout'`. */
function within(promise: Promise<unknown>, ms: number): Promise<'done' | 'timeout'> {
  return withDeadlineOr(
    promise.then(() => 'done' as const),
    ms,
    'timeout' as const,
  );
}

/**
 * Resources registered as they are created and released last-in-first-out, each one even if an
 * earlier release throws (so a failing `close()` never leaks the next resource), and - with a budget -
 * each within what is left of the shutdown bound, so one release waiting on a dependency that is down
 * cannot hold the others (or the process) past it.
 */
export class Releasers {
  private readonly stack: { name: string; release: () => unknown; force?: () => unknown }[] = [];
  private releasing?: Promise<void>;

  add(name: string, release: () => unknown, opts: ReleaseOptions = {}): void {
    if (this.releasing) throw new Error(`cannot register ${name}: resources are being released`);
    this.stack.push({ name, release, force: opts.force });
  }

  /**
   * Releases everything in reverse order of registration. Idempotent (a second call gets the first one's
   * promise); resolves after the last one, rejects with what failed (a step past its deadline is a
   * `ReleaseTimeoutError`) unless `isExpected` says it was expected.
   */
  releaseAll(logger?: Logger, opts: ReleaseAllOptions = {}): Promise<void> {
    this.releasing ??= (async () => {
      const deadline = opts.budgetMs === undefined ? Infinity : Date.now() + opts.budgetMs;
      const errors: unknown[] = [];
      const failed = (name: string, err: unknown) => {
        if (opts.isExpected?.(err)) {
          logger?.warn({ resource: name, reason: briefError(err).message }, 'release cut short (expected while a dependency is down)');
          return;
        }
        errors.push(err);
        logger?.error({ resource: name, err }, 'release failed');
      };
      while (this.stack.length) {
        const { name, release, force } = this.stack.pop()!;
        const released = Promise.resolve().then(release);
        const left = Math.max(0, deadline - Date.now());
        try {
          if (left === Infinity) await released;
          else if ((await within(released, left)) === 'timeout') {
            // The step keeps running in the background; its late failure must not be an unhandled rejection.
            released.catch(() => undefined);
            if (force) await within(Promise.resolve().then(force), FORCE_WAIT_MS).catch(() => undefined);
            failed(name, new ReleaseTimeoutError(name, left));
            continue;
          }
          logger?.debug({ resource: name }, 'released');
        } catch (err) {
          failed(name, err);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, `${errors.length} resources failed to release`);
    })();
    return this.releasing;
  }
}
