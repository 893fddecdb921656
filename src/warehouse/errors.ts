/**
 * A warehouse call failed. `transient` says whether the same call may succeed if retried (network
 * failure, session expired, server busy); a SQL error (bad statement, constraint) is not transient and
 * retrying it only repeats the failure.
 */
export class WarehouseError extends Error {
  /** Snowflake error code (e.g. `390100` wrong credentials, `002003` object does not exist), if any. */
  readonly code?: string;
  readonly sqlState?: string;
  readonly transient: boolean;
  readonly queryId?: string;

  constructor(message: string, opts: { code?: string | number; sqlState?: string; transient: boolean; queryId?: string; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = 'WarehouseError';
    this.code = opts.code === undefined ? undefined : String(opts.code);
    this.sqlState = opts.sqlState;
    this.transient = opts.transient;
    this.queryId = opts.queryId;
  }
}

/** A call did not finish within its own deadline. Usually means the warehouse is slow or unreachable. */
export class WarehouseTimeoutError extends WarehouseError {
  constructor(label: string, timeoutMs: number, detail?: string) {
    super(`warehouse call ${label} did not finish within ${timeoutMs} ms${detail ? `: ${detail}` : ''}`, { transient: true, code: 'FLEET_TIMEOUT' });
    this.name = 'WarehouseTimeoutError';
  }
}

/**
 * The circuit breaker is open: recent calls kept failing, so this one fails fast instead of piling up
 * on a warehouse that is down. Retry after `retryAfterMs`.
 */
export class CircuitOpenError extends WarehouseError {
  constructor(
    readonly retryAfterMs: number,
    cause?: unknown,
  ) {
    super(`warehouse circuit is open after repeated failures; next probe in ${retryAfterMs} ms`, { transient: true, code: 'FLEET_CIRCUIT_OPEN', cause });
    this.name = 'CircuitOpenError';
  }
}

/** The warehouse answered with something the fleet cannot parse (wrong vector size, missing column). */
export class WarehouseResultError extends WarehouseError {
  constructor(message: string) {
    super(message, { transient: false, code: 'FLEET_BAD_RESULT' });
    this.name = 'WarehouseResultError';
  }
}

/**
 * No pooled session came free in time. `exhausted` true means every session was borrowed by other calls
 * (the process asked for more than its pool holds): the warehouse was not asked anything, so this must not
 * count toward the circuit breaker. False means sessions could not be opened in time (logins failing or
 * slow, `cause` holds the last login error): that is the warehouse's failure and counts.
 */
export class PoolAcquireTimeoutError extends WarehouseError {
  constructor(
    readonly waitedMs: number,
    readonly exhausted: boolean,
    detail?: string,
    cause?: unknown,
  ) {
    super(`no warehouse session within ${waitedMs} ms${detail ? `; ${detail}` : ''}`, { transient: true, code: 'FLEET_POOL_TIMEOUT', cause });
    this.name = 'PoolAcquireTimeoutError';
  }
}
