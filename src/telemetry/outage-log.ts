import type { Logger } from 'pino';

/** How often a dependency that stays down (and keeps failing) gets one summary line, unless configured (LOG_OUTAGE_SUMMARY_MS). */
export const DEFAULT_OUTAGE_SUMMARY_MS = 30_000;

/** Error codes a network client reports when its peer is away: part of an outage, not a bug. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);
/**
 * ioredis's words for a connection that is gone: commands rejected after a disconnect or while offline, the
 * unanswered rest of a pipeline when its connection closes, a command out of retries while reconnecting, a
 * cluster client that reaches none of its nodes (also when it is closed while a call waits) or has ended.
 * A network code named in a message without a `code` field counts too.
 */
const CONNECTION_MESSAGES = [
  /connection is closed/i,
  /stream isn't writeable/i,
  /^connect etimedout/i,
  /socket closed unexpectedly/i,
  /command aborted due to connection close/i,
  /reached the max retries per request limit/i,
  /none of startup nodes is available/i,
  /failed to refresh slots cache/i,
  /^cluster is ended/i,
  // A cluster failing over: the slot's master is gone and its replica not yet promoted (ioredis gave up redirecting).
  /too many cluster redirections/i,
  /^CLUSTERDOWN/,
  /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH)\b/,
];

/**
 * True for the errors a client raises because its server is unreachable (refused, reset, timed out, closed).
 * The one test of it: the logs, the outage logs and the producer's outage gate all ask this.
 * They say where the outage is, not what is wrong in the code, so they are logged without a stack.
 */
export function isConnectionError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
    if (typeof message === 'string' && CONNECTION_MESSAGES.some((m) => m.test(message))) return true;
  }
  return false;
}

/** An error as one log field without its stack: message and code are what an operator acts on in an outage. */
export function briefError(err: unknown): { message: string; code?: string } {
  const e = err as { message?: unknown; code?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.code === 'string' || typeof e?.code === 'number' ? { message, code: String(e.code) } : { message };
}

export interface DependencyLogOptions {
  /** The dependency as operators name it: `redis`, `warehouse`, `cache L2`. Required. */
  name: string;
  /** While the dependency stays down, at most one summary line per this many ms. Default 30,000. */
  summaryEveryMs?: number;
  /** Which failures mean "the dependency is away" (logged once, then counted). Default `isConnectionError`. */
  isOutage?: (err: unknown) => boolean;
}

/** The log of one dependency's availability (see `dependencyLog`). */
export interface DependencyLog {
  /** True from the first outage failure until `recovered()`. */
  readonly down: boolean;
  /**
   * Reports a failure. An outage failure logs one line when the dependency goes away and is then only
   * counted; any other error is logged in full each time, as it may be a bug. `fields` are added to the
   * lines (e.g. `{ queue }`).
   */
  failed(err: unknown, fields?: Record<string, unknown>): void;
  /** Reports that the dependency answered: one line if it was down, nothing otherwise. Cheap to call often. */
  recovered(): void;
  /** Calls `listener` each time the dependency goes down; returns a function that removes it. */
  onDown(listener: () => void): () => void;
  /** Stops the summary timer (the process is stopping). */
  close(): void;
}

/**
 * Keeps a dependency's outage readable in the log: one line when it goes away, one when it returns, and
 * while it stays down at most one summary line per `summaryEveryMs` with the number of failures it did not
 * log (none when there were none). Every connection to the dependency reports to the same log, so ten connections retrying are still
 * one outage. Expected connection errors are logged without a stack.
 *
 * @example
 *   const redisLog = dependencyLog(logger, { name: 'redis', summaryEveryMs: 30_000 });
 *   connection.on('error', (err) => redisLog.failed(err));
 *   connection.on('ready', () => redisLog.recovered());
 */
export function dependencyLog(logger: Logger, opts: DependencyLogOptions): DependencyLog {
  const summaryEveryMs = opts.summaryEveryMs ?? DEFAULT_OUTAGE_SUMMARY_MS;
  if (!Number.isInteger(summaryEveryMs) || summaryEveryMs < 1) {
    throw new RangeError(`dependencyLog: option \`summaryEveryMs\` must be an integer >= 1, got ${String(opts.summaryEveryMs)}`);
  }
  const isOutage = opts.isOutage ?? isConnectionError;
  const dependency = opts.name;
  let downSince: number | undefined;
  let suppressed = 0;
  let lastError: { message: string; code?: string } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const downListeners = new Set<() => void>();

  const summary = () => {
    // Nothing new to count: the down line (or the last summary) still says all there is.
    if (downSince === undefined || suppressed === 0) return;
    logger.warn({ dependency, downForMs: Date.now() - downSince, suppressed, lastError }, `${dependency} still unavailable`);
    suppressed = 0;
  };

  return {
    get down() {
      return downSince !== undefined;
    },
    failed(err, fields) {
      if (!isOutage(err)) {
        logger.error({ dependency, ...fields, err }, `${dependency} error`);
        return;
      }
      lastError = briefError(err);
      if (downSince !== undefined) {
        suppressed++;
        return;
      }
      downSince = Date.now();
      suppressed = 0;
      logger.warn(
        { dependency, ...fields, err: lastError, summaryEveryMs },
        `${dependency} unavailable; further connection errors are counted, not logged, until it returns`,
      );
      timer = setInterval(summary, summaryEveryMs);
      // The summary must never keep a stopping process alive.
      timer.unref();
      for (const listener of downListeners) {
        try {
          listener();
        } catch (listenerErr) {
          logger.error({ dependency, err: listenerErr }, 'outage listener failed');
        }
      }
    },
    recovered() {
      if (downSince === undefined) return;
      clearInterval(timer);
      logger.info({ dependency, downForMs: Date.now() - downSince, suppressed }, `${dependency} available again`);
      downSince = undefined;
      suppressed = 0;
    },
    onDown(listener) {
      downListeners.add(listener);
      return () => downListeners.delete(listener);
    },
    close() {
      clearInterval(timer);
    },
  };
}
