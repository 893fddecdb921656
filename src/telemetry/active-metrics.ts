import type { FleetMetrics } from './metrics';

let active: FleetMetrics | undefined;

/**
 * The instruments of the telemetry started in this process (`startTelemetry`), or undefined before it and
 * in tests that start none. Components deep inside a role (the search service, the index builder, the
 * workflow synthesis) take `metrics` as an option and fall back to this, as spans fall back to the global
 * tracer provider. A module of its own so that they need not load the OpenTelemetry SDK to ask.
 */
export function activeFleetMetrics(): FleetMetrics | undefined {
  return active;
}

/** Set by `startTelemetry`, cleared by its `shutdown()`. */
export function setActiveFleetMetrics(metrics: FleetMetrics | undefined): void {
  active = metrics;
}
