import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { Resource } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { createFleetMetrics, type FleetMetrics } from './metrics';
import type { SlowLog } from './slow';

/** Prometheus text exposition format (what Prometheus expects from a scrape). */
const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What an HTTP server needs to answer `GET /metrics`: the fleet serves it from its own server, not a second port. */
export interface MetricsEndpoint {
  readonly contentType: string;
  /** Collects every instrument (observable callbacks run now) and renders the exposition text. */
  render(): Promise<string>;
}

export interface MetricsRegistryOptions {
  /** Resource (service name, role, instance) attached to the metrics; `target_info` shows it. */
  resource?: Resource;
  /** Slow-operation logger used by the record methods. */
  slow?: SlowLog;
  /** Meter name (instrumentation scope). Default `warehouse-fleet`. */
  meterName?: string;
}

/** A MeterProvider whose only reader is the Prometheus exporter (pull), with the fleet's instruments on it. */
export interface MetricsRegistry {
  readonly meterProvider: MeterProvider;
  readonly reader: PrometheusExporter;
  readonly endpoint: MetricsEndpoint;
  readonly metrics: FleetMetrics;
  /** Stops the reader. Idempotent. */
  shutdown(): Promise<void>;
}

/**
 * Builds the fleet's metrics without touching OpenTelemetry globals: `startTelemetry` uses it and
 * registers the provider globally; tests and libraries can use it directly.
 *
 * @example
 *   const registry = createMetricsRegistry();
 *   registry.metrics.batch(500, 42, true, 'emb');
 *   const text = await registry.endpoint.render();   // "# HELP fleet_batch_size ..."
 */
export function createMetricsRegistry(opts: MetricsRegistryOptions = {}): MetricsRegistry {
  // preventServerStart: no second port; the fleet's own HTTP server calls `render()`.
  const reader = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ resource: opts.resource, readers: [reader] });
  const serializer = new PrometheusSerializer();
  const metrics = createFleetMetrics({ meter: meterProvider.getMeter(opts.meterName ?? 'warehouse-fleet'), slow: opts.slow });
  let closed: Promise<void> | undefined;
  return {
    meterProvider,
    reader,
    metrics,
    endpoint: {
      contentType: PROMETHEUS_CONTENT_TYPE,
      async render() {
        const { resourceMetrics } = await reader.collect();
        return serializer.serialize(resourceMetrics);
      },
    },
    shutdown() {
      closed ??= meterProvider.shutdown();
      return closed;
    },
  };
}
