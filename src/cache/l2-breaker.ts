export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * A small circuit breaker for the L2 tier. After `threshold` consecutive failures it opens for
 * `cooldownMs`: L2 is skipped (reads go straight to the loader). Then exactly one call is let through
 * as a probe; success closes the circuit, failure opens it for another cool-down. So recovery after a
 * Redis restart is automatic and costs one call's deadline per cool-down while Redis stays down.
 *
 * Separate from `src/pool`'s breaker on purpose: the cache must not depend on the warehouse layer.
 */
export class L2Breaker {
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private stateValue: BreakerState = 'closed';

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly onChange: (state: BreakerState) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    if (this.stateValue === 'open' && this.now() - this.openedAt >= this.cooldownMs) return 'half-open';
    return this.stateValue;
  }

  /** True when a call may go out; reserves the single probe while half-open. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'half-open' && !this.probing) {
      this.probing = true;
      return true;
    }
    return false;
  }

  success(): void {
    const wasOpen = this.stateValue !== 'closed';
    this.failures = 0;
    this.probing = false;
    this.stateValue = 'closed';
    if (wasOpen) this.onChange('closed');
  }

  failure(): void {
    const wasProbe = this.probing;
    this.probing = false;
    this.failures++;
    if (wasProbe || this.failures >= this.threshold) {
      const wasOpen = this.stateValue === 'open';
      this.stateValue = 'open';
      this.openedAt = this.now();
      if (!wasOpen) this.onChange('open');
    }
  }
}
