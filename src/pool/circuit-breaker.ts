import { CircuitOpenError } from '../warehouse/errors';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  threshold?: number;
  /** Time the circuit stays open before one probe is let through (half-open). Default 10,000 ms. */
  resetMs?: number;
  /** Clock, injectable for tests. Default `Date.now`. */
  now?: () => number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * Fails fast while the warehouse is down. Counts consecutive transient failures only (a SQL error says
 * the warehouse is up); after `threshold` it opens for `resetMs`, then lets exactly one probe call
 * through: success closes it, failure opens it again.
 */
export class CircuitBreaker {
  private readonly threshold: number;
  private readonly resetMs: number;
  private readonly now: () => number;
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private lastError: unknown;
  private stateValue: CircuitState = 'closed';
  /** Times the circuit opened; for metrics. */
  opens = 0;

  constructor(opts: CircuitBreakerOptions = {}) {
    this.threshold = opts.threshold ?? 5;
    this.resetMs = opts.resetMs ?? 10_000;
    this.now = opts.now ?? Date.now;
    if (!Number.isInteger(this.threshold) || this.threshold < 1) throw new RangeError(`CircuitBreaker: threshold must be an integer >= 1, got ${opts.threshold}`);
    if (!(this.resetMs > 0)) throw new RangeError(`CircuitBreaker: resetMs must be > 0, got ${opts.resetMs}`);
  }

  get state(): CircuitState {
    if (this.stateValue === 'open' && this.now() - this.openedAt >= this.resetMs) return 'half-open';
    return this.stateValue;
  }

  /** Throws CircuitOpenError when the call must not go out; otherwise reserves the probe if half-open. */
  before(): void {
    const state = this.state;
    if (state === 'closed') return;
    if (state === 'half-open' && !this.probing) {
      this.probing = true;
      return;
    }
    throw new CircuitOpenError(Math.max(0, this.resetMs - (this.now() - this.openedAt)), this.lastError);
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    this.stateValue = 'closed';
  }

  /** Records a failure; only transient failures count towards opening. */
  failure(err: unknown, transient: boolean): void {
    const wasProbe = this.probing;
    this.probing = false;
    if (!transient) {
      if (wasProbe) this.success();
      return;
    }
    this.lastError = err;
    this.failures++;
    if (wasProbe || this.failures >= this.threshold) {
      if (this.stateValue !== 'open' || wasProbe) this.opens++;
      this.stateValue = 'open';
      this.openedAt = this.now();
    }
  }
}
