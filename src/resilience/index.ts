/**
 * The fleet's two failure-handling primitives, one of each, shared by every layer (pool, cache, telemetry,
 * http): a circuit breaker and a deadline around a promise. Imports nothing of the fleet, so any part may
 * import it without breaking the layer rules.
 */
export { CircuitBreaker, type CircuitState } from './circuit-breaker';
export { MAX_TIMER_MS, withDeadline, withDeadlineOr } from './deadline';
export { DeadlineExceededError } from './deadline-exceeded-error';
