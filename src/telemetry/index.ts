/**
 * Telemetry of the fleet: structured logs, OpenTelemetry traces that follow a job from its producer
 * through the worker to the warehouse, and metrics served in Prometheus format.
 */
export { createLogger, type Logger, type LoggerOptions } from './logger';
export { instrumentProcessor, jobLogger, type InstrumentedJob, type InstrumentOptions } from './instrument';
export {
  ALL_METRIC_NAMES,
  createFleetMetrics,
  METRIC_NAMES,
  QUEUE_STATES,
  tieredCacheStats,
  type CacheTierStats,
  type FleetMetrics,
  type FleetMetricsOptions,
  type IndexGaugeStats,
  type MetricName,
  type PoolGaugeStats,
  type QueueCountsSource,
} from './metrics';
export { createMetricsRegistry, PROMETHEUS_CONTENT_TYPE, type MetricsEndpoint, type MetricsRegistry, type MetricsRegistryOptions } from './prometheus';
export { createSlowLog, DEFAULT_SLOW_THRESHOLDS, slowThresholds, type SlowLog, type SlowOperationKind, type SlowThresholds } from './slow';
export { startTelemetry, type Telemetry, type TelemetryOptions } from './telemetry';
export {
  activeTraceIds,
  currentSpanContext,
  extractTraceContext,
  injectTraceContext,
  runInSpan,
  startServerSpan,
  TRACER_NAME,
  withBatchSpan,
  withEnqueueSpan,
  withJobSpan,
  withServerSpan,
  withWarehouseSpan,
  type TracedJob,
} from './tracing';
