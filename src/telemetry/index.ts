/**
 * Telemetry of the fleet: structured logs, OpenTelemetry traces that follow a job from its producer
 * through the worker to the warehouse, and metrics served in Prometheus format.
 */

export { type InstrumentedJob, type InstrumentOptions, instrumentProcessor, jobLogger } from './instrument';
export { createLogger, type Logger, type LoggerOptions } from './logger';
export {
  ALL_METRIC_NAMES,
  type CacheTierStats,
  createFleetMetrics,
  type FleetMetrics,
  type FleetMetricsOptions,
  type IndexGaugeStats,
  METRIC_NAMES,
  type MetricName,
  type PoolGaugeStats,
  QUEUE_STATES,
  type QueueCountsSource,
  tieredCacheStats,
} from './metrics';
export { createMetricsRegistry, type MetricsEndpoint, type MetricsRegistry, type MetricsRegistryOptions, PROMETHEUS_CONTENT_TYPE } from './prometheus';
export { createSlowLog, DEFAULT_SLOW_THRESHOLDS, type SlowLog, type SlowOperationKind, type SlowThresholds, slowThresholds } from './slow';
export { startTelemetry, type Telemetry, type TelemetryOptions } from './telemetry';
export {
  activeTraceIds,
  currentSpanContext,
  extractTraceContext,
  injectTraceContext,
  runInSpan,
  startServerSpan,
  TRACER_NAME,
  type TracedJob,
  withBatchSpan,
  withEnqueueSpan,
  withJobSpan,
  withServerSpan,
  withWarehouseSpan,
} from './tracing';
