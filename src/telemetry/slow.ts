import type { Logger } from 'pino';

/** The kinds of operation the fleet times against a threshold (label `kind` of fleet_slow_operations_total). */
export const SLOW_OPERATION_KINDS = ['warehouse_query', 'job', 'api_response'] as const;
type SlowOperationKind = (typeof SLOW_OPERATION_KINDS)[number];

/** Thresholds above which an operation is logged as slow (the alert rules in ops/prometheus use the same). */
export interface SlowThresholds {
  /** One warehouse call (database query). Default 100 ms. */
  warehouseQueryMs: number;
  /** Processing one job (an agent, an embedding, a deal batch). Default 200 ms. */
  jobMs: number;
  /** One HTTP API response. Default 500 ms. */
  apiResponseMs: number;
}

export const DEFAULT_SLOW_THRESHOLDS: Readonly<SlowThresholds> = Object.freeze({ warehouseQueryMs: 100, jobMs: 200, apiResponseMs: 500 });

const KIND_TO_OPTION: Record<SlowOperationKind, keyof SlowThresholds> = {
  warehouse_query: 'warehouseQueryMs',
  job: 'jobMs',
  api_response: 'apiResponseMs',
};

const KIND_LABEL: Record<SlowOperationKind, string> = {
  warehouse_query: 'slow warehouse query',
  job: 'slow job',
  api_response: 'slow API response',
};

/** Compiles user thresholds over the defaults, rejecting values that are not finite non-negative numbers. */
export function slowThresholds(input: Partial<SlowThresholds> = {}): Readonly<SlowThresholds> {
  const merged = { ...DEFAULT_SLOW_THRESHOLDS, ...input };
  for (const [name, value] of Object.entries(merged)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new RangeError(`slow threshold \`${name}\` must be a finite number >= 0 (ms), got ${String(value)}`);
    }
  }
  return Object.freeze(merged);
}

/**
 * Logs operations that took longer than their threshold, with the threshold in the line so a reader
 * knows what "slow" meant. Returns whether it was slow.
 */
export interface SlowLog {
  readonly thresholds: Readonly<SlowThresholds>;
  check(kind: SlowOperationKind, durationMs: number, fields?: Record<string, unknown>): boolean;
}

/**
 * @example
 *   const slow = createSlowLog(logger, { warehouseQueryMs: 250 });
 *   slow.check('warehouse_query', 312, { operation: 'embed_texts' });
 *   // {"level":40,"kind":"warehouse_query","durationMs":312,"thresholdMs":250,"operation":"embed_texts","msg":"slow warehouse query: 312 ms (threshold 250 ms)"}
 */
export function createSlowLog(logger: Logger | undefined, thresholds: Partial<SlowThresholds> = {}): SlowLog {
  const compiled = slowThresholds(thresholds);
  return {
    thresholds: compiled,
    check(kind, durationMs, fields = {}) {
      const thresholdMs = compiled[KIND_TO_OPTION[kind]];
      if (!(durationMs > thresholdMs)) return false;
      const ms = Math.round(durationMs);
      logger?.warn({ ...fields, kind, durationMs: ms, thresholdMs }, `${KIND_LABEL[kind]}: ${ms} ms (threshold ${thresholdMs} ms)`);
      return true;
    },
  };
}
