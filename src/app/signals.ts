import type { Logger } from '../telemetry/logger';

export interface ShutdownOptions {
  /** The bound of the whole shutdown (FLEET_SHUTDOWN_TIMEOUT_MS); past it the process exits with code 1. */
  timeoutMs: number;
  logger: Logger;
  /** Exit function (injectable for tests). Default `process.exit`. */
  exit?: (code: number) => void;
}

/**
 * What the graceful path leaves of the bound for the process to log its last line and exit: the release
 * ends this much before the hard deadline, so a release that had to cut steps short still exits by itself
 * (with its own code) rather than by the deadline's exit 1.
 */
const EXIT_MARGIN_MS = 1_000;

/**
 * The one owner of SIGTERM/SIGINT for a fleet process: the first signal runs `shutdown` (in-flight jobs
 * finish, resources are released) given a budget that ends before `timeoutMs`; a second signal, or the
 * deadline, forces exit. Exit codes: 0 when `shutdown` resolved (also when it cut short what waited on a
 * dependency that is down - those jobs go to stalled-job recovery), 1 when it failed or the deadline
 * passed, 130 on a second signal. Jobs cut off by a forced exit are not lost: their locks expire and
 * another worker picks them up.
 */
export function handleSignals(shutdown: (opts: { budgetMs: number }) => Promise<void>, opts: ShutdownOptions): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let started = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (started) {
      opts.logger.warn({ signal }, 'second signal: forcing exit');
      exit(130);
      return;
    }
    started = true;
    opts.logger.info({ signal, timeoutMs: opts.timeoutMs }, 'shutting down gracefully (send the signal again to force)');
    const startedAt = Date.now();
    const deadline = setTimeout(() => {
      opts.logger.error({ timeoutMs: opts.timeoutMs }, 'graceful shutdown deadline passed: forcing exit');
      exit(1);
    }, opts.timeoutMs);
    deadline.unref();
    const budgetMs = Math.max(opts.timeoutMs - EXIT_MARGIN_MS, Math.floor(opts.timeoutMs / 2));
    Promise.resolve()
      .then(() => shutdown({ budgetMs }))
      .then(
        () => {
          clearTimeout(deadline);
          opts.logger.info({ tookMs: Date.now() - startedAt }, 'stopped');
          exit(0);
        },
        (err) => {
          clearTimeout(deadline);
          opts.logger.error({ err, tookMs: Date.now() - startedAt }, 'shutdown failed');
          exit(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
