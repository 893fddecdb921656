import { randomUUID } from 'node:crypto';
import { context, metrics as metricsApi, propagation, trace } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  NoopSpanProcessor,
  ParentBasedSampler,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import type { Logger } from 'pino';
import { nativeRequire } from '../runtime/native-require';
import { setActiveFleetMetrics } from './active-metrics';
import type { FleetMetrics } from './metrics';
import { createMetricsRegistry, type MetricsEndpoint } from './prometheus';
import { createSlowLog, type SlowLog, type SlowThresholds } from './slow';

export interface TelemetryOptions {
  /** `service.name` of traces and metrics. Default `warehouse-fleet`. */
  serviceName?: string;
  /** `service.version`. Default: unset. */
  serviceVersion?: string;
  /** The process's role (`api`, `embeddings`, `deals`, `up`...), as resource attribute `fleet.role`. */
  role?: string;
  /** `service.instance.id`; default a random UUID per process (pod name in Kubernetes is a good value). */
  instanceId?: string;
  /**
   * OTLP/HTTP (JSON) endpoint for traces, e.g. `http://otel-collector:4318/v1/traces`. Without it (and
   * without `traceExporter`/`spanProcessors`) spans are still created, so trace ids reach logs and jobs,
   * but nothing is exported.
   */
  otlpTracesUrl?: string;
  /** Headers for the OTLP endpoint (e.g. an API key). Secret. */
  otlpHeaders?: Record<string, string>;
  /** A span exporter to use instead of OTLP (batched). */
  traceExporter?: SpanExporter;
  /** Span processors to use as-is (tests pass a SimpleSpanProcessor over an InMemorySpanExporter). Overrides the two above. */
  spanProcessors?: SpanProcessor[];
  /** Share of new traces sampled, 0..1 (child spans follow their parent's decision). Default 1. */
  sampleRatio?: number;
  /** Thresholds of the slow-operation log. Defaults: warehouse query 100 ms, job 200 ms, API response 500 ms. */
  slowThresholds?: Partial<SlowThresholds>;
  /** Receives slow-operation warnings and telemetry errors. */
  logger?: Logger;
  /** OpenTelemetry instrumentations (none are installed by default). */
  instrumentations?: NodeSDKConfiguration['instrumentations'];
}

/** The running telemetry of one process. */
export interface Telemetry {
  /** The fleet's instruments; pass it to processors, the pool's onCall, the API. */
  readonly metrics: FleetMetrics;
  /** Serve it at `GET /metrics` (buildApi / startHealthServer take it). */
  readonly metricsEndpoint: MetricsEndpoint;
  readonly slow: SlowLog;
  readonly resource: Resource;
  /** Flushes pending spans, stops the readers and unregisters the globals. Idempotent. */
  shutdown(): Promise<void>;
}

let running: Telemetry | undefined;

/**
 * Starts OpenTelemetry for this process (NodeSDK: context manager, W3C propagator, tracer provider;
 * a MeterProvider whose reader is the Prometheus exporter, served from the fleet's own HTTP server).
 * Call it first in the entry point, before the modules it should observe are loaded (instrumentations
 * patch modules as they are required). One per process: a second call throws until `shutdown()`.
 *
 * @example
 *   const config = loadConfig();
 *   const telemetry = startTelemetry({ role: 'api', otlpTracesUrl: config.telemetry.otlpTracesUrl, logger });
 *   const { startApi } = await import('../http');   // loaded after telemetry started
 *   ...
 *   releasers.add('telemetry', () => telemetry.shutdown());   // registered first, released last
 */
export function startTelemetry(opts: TelemetryOptions = {}): Telemetry {
  if (running) throw new Error('startTelemetry: telemetry is already started in this process; call shutdown() first');
  const sampleRatio = opts.sampleRatio ?? 1;
  if (typeof sampleRatio !== 'number' || !(sampleRatio >= 0 && sampleRatio <= 1)) {
    throw new RangeError(`startTelemetry: option \`sampleRatio\` must be a number from 0 to 1, got ${String(opts.sampleRatio)}`);
  }
  if (opts.otlpTracesUrl !== undefined) {
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(opts.otlpTracesUrl).protocol);
    } catch {
      ok = false;
    }
    if (!ok) throw new TypeError(`startTelemetry: option \`otlpTracesUrl\` must be an http(s) URL, got ${JSON.stringify(opts.otlpTracesUrl)}`);
  }

  const resource = resourceFromAttributes({
    'service.name': opts.serviceName ?? 'warehouse-fleet',
    'service.instance.id': opts.instanceId ?? randomUUID(),
    ...(opts.serviceVersion ? { 'service.version': opts.serviceVersion } : {}),
    ...(opts.role ? { 'fleet.role': opts.role } : {}),
  });

  const slow = createSlowLog(opts.logger, opts.slowThresholds);
  const registry = createMetricsRegistry({ resource, slow });

  const spanProcessors =
    opts.spanProcessors ??
    (() => {
      const exporter = opts.traceExporter ?? (opts.otlpTracesUrl ? otlpExporter(opts.otlpTracesUrl, opts.otlpHeaders) : undefined);
      // With no exporter a tracer provider is still registered: spans get real ids, so logs carry trace ids
      // and jobs carry traceparent to processes that do export.
      return [exporter ? new BatchSpanProcessor({ exporter }) : new NoopSpanProcessor()];
    })();

  const sdk = new NodeSDK({
    resource,
    autoDetectResources: false,
    spanProcessors,
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sampleRatio) }),
    textMapPropagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    // Metrics are registered below (our MeterProvider with the Prometheus reader); an empty list keeps
    // the SDK from adding its default OTLP metric and log exporters.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: opts.instrumentations ?? [],
  });
  sdk.start();
  metricsApi.setGlobalMeterProvider(registry.meterProvider);

  let closing: Promise<void> | undefined;
  const telemetry: Telemetry = {
    metrics: registry.metrics,
    metricsEndpoint: registry.endpoint,
    slow,
    resource,
    shutdown() {
      closing ??= (async () => {
        const results = await Promise.allSettled([sdk.shutdown(), registry.shutdown()]);
        trace.disable();
        context.disable();
        propagation.disable();
        metricsApi.disable();
        if (running === telemetry) {
          running = undefined;
          setActiveFleetMetrics(undefined);
        }
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      })();
      return closing;
    },
  };
  running = telemetry;
  setActiveFleetMetrics(registry.metrics);
  return telemetry;
}

function otlpExporter(url: string, headers?: Record<string, string>): SpanExporter {
  // Loaded only when configured (see src/runtime/native-require.ts). It ships with @opentelemetry/sdk-node.
  const { OTLPTraceExporter } = nativeRequire<typeof import('@opentelemetry/exporter-trace-otlp-http')>('@opentelemetry/exporter-trace-otlp-http');
  return new OTLPTraceExporter({ url, headers });
}
