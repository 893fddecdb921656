import type { Logger } from '../telemetry/logger';

export interface ShutdownOptions {
  /** Graceful deadline; past it the process exits with code 1. */
  timeoutMs: number;
  logger: Logger;
  /** Exit function (injectable for tests). Default `process.exit`. */
  exit?: (code: number) => void;
}

/**
 * The one owner of SIGTERM/SIGINT for a fleet process: the first signal runs `shutdown` (in-flight jobs
 * finish, resources are released) within `timeoutMs`; a second signal, or the deadline, forces exit.
 * Jobs cut off by a forced exit are not lost: their locks expire and another worker picks them up.
 */
export function handleSignals(shutdown: () => Promise<void>, opts: ShutdownOptions): () => void {
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
    const deadline = setTimeout(() => {
      opts.logger.error({ timeoutMs: opts.timeoutMs }, 'graceful shutdown deadline passed: forcing exit');
      exit(1);
    }, opts.timeoutMs);
    deadline.unref();
    shutdown().then(
      () => {
        clearTimeout(deadline);
        opts.logger.info('stopped');
        exit(0);
      },
      (err) => {
        clearTimeout(deadline);
        opts.logger.error({ err }, 'shutdown failed');
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
