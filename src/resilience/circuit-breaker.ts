/** `half-open`: the cool-down has passed and the next call goes out as the single probe. */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive counted failures that open the circuit. Default 5. */
  threshold?: number;
  /** How long the circuit stays open before one probe call is let through (half-open). Default 10,000 ms. */
  resetMs?: number;
  /**
   * Called when the circuit opens (from closed) and when it closes again. A failed probe keeps it open
   * (no call; `opens` counts it). Runs synchronously inside `success`/`failure`; a throwing listener is
   * ignored. Default none.
   */
  onStateChange?: (state: Exclude<CircuitState, 'half-open'>) => void;
  /** Clock, injectable for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * Fails fast while a dependency is down, for the warehouse pool and the cache's L2 alike: after `threshold`
 * consecutive counted failures the circuit opens for `resetMs`, then lets exactly one call through as a
 * probe; its success closes the circuit, its failure opens it for another `resetMs`. So recovery is
 * automatic and costs one call per cool-down while the dependency stays down.
 *
 * The caller decides what a failure is: `failure(err, false)` reports one that proves the dependency
 * answered (a SQL error from the warehouse), which does not count, and closes the circuit if it was the probe.
 * Knows nothing of warehouses or caches, so every layer may use it; what to throw when `allow()` says no is
 * the caller's (`CircuitOpenError` in `src/pool`, `CacheUnavailableError` in `src/cache`).
 *
 * @example
 *   const breaker = new CircuitBreaker({ threshold: 3, resetMs: 5_000 });
 *   if (!breaker.allow()) throw new CircuitOpenError(breaker.retryInMs(), breaker.lastError);
 *   try {
 *     const result = await call();
 *     breaker.success();
 *     return result;
 *   } catch (err) {
 *     breaker.failure(err, isTransient(err));
 *     throw err;
 *   }
 */
export class CircuitBreaker {
  private readonly threshold: number;
  private readonly resetMs: number;
  private readonly now: () => number;
  private readonly onStateChange?: (state: Exclude<CircuitState, 'half-open'>) => void;
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private stateValue: Exclude<CircuitState, 'half-open'> = 'closed';
  /** The last counted failure, for the error a caller throws while the circuit is open. */
  lastError: unknown;
  /** Times the circuit opened, a failed probe included; for metrics. */
  opens = 0;

  constructor(opts: CircuitBreakerOptions = {}) {
    this.threshold = opts.threshold ?? 5;
    this.resetMs = opts.resetMs ?? 10_000;
    this.now = opts.now ?? Date.now;
    this.onStateChange = opts.onStateChange;
    if (!Number.isInteger(this.threshold) || this.threshold < 1)
      throw new RangeError(`CircuitBreaker: option \`threshold\` must be an integer >= 1, got ${opts.threshold}`);
    if (!(this.resetMs > 0)) throw new RangeError(`CircuitBreaker: option \`resetMs\` must be > 0, got ${opts.resetMs}`);
    if (opts.onStateChange !== undefined && typeof opts.onStateChange !== 'function')
      throw new TypeError('CircuitBreaker: option `onStateChange` must be a function');
  }

  get state(): CircuitState {
    if (this.stateValue === 'open' && this.now() - this.openedAt >= this.resetMs) return 'half-open';
    return this.stateValue;
  }

  /** True when a call may go out; while half-open, the first caller gets the single probe and the rest false. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'half-open' && !this.probing) {
      this.probing = true;
      return true;
    }
    return false;
  }

  /** Ms until the circuit lets a probe through; 0 when closed or half-open. */
  retryInMs(): number {
    return this.stateValue === 'open' ? Math.max(0, this.resetMs - (this.now() - this.openedAt)) : 0;
  }

  /** The call succeeded: resets the count and closes the circuit. */
  success(): void {
    const wasOpen = this.stateValue === 'open';
    this.failures = 0;
    this.probing = false;
    this.stateValue = 'closed';
    if (wasOpen) this.changed('closed');
  }

  /**
   * The call failed. With `counts` false (the dependency answered, e.g. with a SQL error) the failure is not
   * counted and leaves the count as it was; if it was the probe, the circuit closes.
   */
  failure(err?: unknown, counts = true): void {
    const wasProbe = this.probing;
    this.probing = false;
    if (!counts) {
      if (wasProbe) this.success();
      return;
    }
    this.lastError = err;
    this.failures++;
    if (wasProbe || this.failures >= this.threshold) {
      const wasOpen = this.stateValue === 'open';
      if (!wasOpen || wasProbe) this.opens++;
      this.stateValue = 'open';
      this.openedAt = this.now();
      if (!wasOpen) this.changed('open');
    }
  }

  private changed(state: Exclude<CircuitState, 'half-open'>): void {
    try {
      this.onStateChange?.(state);
    } catch {
      // a listener must never break the call it reports on
    }
  }
}
