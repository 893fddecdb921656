/**
 * Telemetry of the fleet: structured logs, OpenTelemetry traces that follow a job from its producer
 * through the worker to the warehouse, and metrics served in Prometheus format.
 */

export { instrumentProcessor } from './instrument';
export { createLogger } from './logger';
export {
  ALL_METRIC_NAMES,
  type FleetMetrics,
  METRIC_NAMES,
  tieredCacheStats,
} from './metrics';
export { createMetricsRegistry } from './prometheus';
export { createSlowLog, DEFAULT_SLOW_THRESHOLDS, slowThresholds } from './slow';
export { startTelemetry, type Telemetry } from './telemetry';
export {
  currentSpanContext,
  injectTraceContext,
  withBatchSpan,
  withEnqueueSpan,
  withWarehouseSpan,
} from './tracing';
