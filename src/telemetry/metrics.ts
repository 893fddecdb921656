import type { Attributes, Meter, ObservableResult } from '@opentelemetry/api';
import { QUEUES } from '../contracts/queues';
import { shardOfPrefix } from '../contracts/shards';
import { withDeadline } from '../resilience/deadline';
import { SLOW_OPERATION_KINDS, type SlowLog } from './slow';

/**
 * Instrument names as the Prometheus endpoint exposes them (the exporter adds `_total` to counters and
 * `_bucket`/`_sum`/`_count` to histograms). ops/prometheus/alerts.yml and the dashboards use these.
 */
export const METRIC_NAMES = {
  /** Gauge {queue, state}: jobs per BullMQ state, read with getJobCounts at scrape time. */
  queueJobs: 'fleet_queue_jobs',
  /** Histogram {queue}: enqueue (or end of delay) to start of processing, ms. */
  jobWait: 'fleet_job_wait_ms',
  /** Histogram {queue, outcome}: processing time of one job attempt, ms. */
  jobDuration: 'fleet_job_duration_ms',
  /** Histogram {coalescer, outcome}: distinct keys per batched warehouse call. */
  batchSize: 'fleet_batch_size',
  /** Histogram {coalescer, outcome}: duration of one batch call, ms. */
  batchDuration: 'fleet_batch_duration_ms',
  /** Histogram {operation, outcome}: one warehouse call (one attempt), ms. */
  warehouseCallDuration: 'fleet_warehouse_call_duration_ms',
  /** Counter {operation, code}: failed warehouse calls. */
  warehouseErrors: 'fleet_warehouse_errors_total',
  /** Gauges: warehouse sessions open, borrowed, idle, callers waiting, configured maximum. */
  poolSize: 'fleet_pool_size',
  poolBorrowed: 'fleet_pool_borrowed',
  poolAvailable: 'fleet_pool_available',
  poolPending: 'fleet_pool_pending',
  poolMax: 'fleet_pool_max',
  /** Counters {cache, tier}: lookups answered / not answered at that tier (every lookup starts at `l1`). */
  cacheHits: 'fleet_cache_hits_total',
  cacheMisses: 'fleet_cache_misses_total',
  /** Gauge {cache, tier}: entries held. */
  cacheEntries: 'fleet_cache_entries',
  /**
   * Gauges {index_role}: vectors in the index and the version of its snapshot, as a search replica serves
   * it (`search`) and as the index builder last wrote it (`builder`).
   */
  indexVectors: 'fleet_index_vectors',
  indexSnapshotVersion: 'fleet_index_snapshot_version',
  /** Histogram {workflow, outcome}: a workflow from enqueue to its synthesis, ms. */
  workflowDuration: 'fleet_workflow_duration_ms',
  /** Histogram {method, route, status_code}: HTTP API response time, ms. */
  httpRequestDuration: 'fleet_http_request_duration_ms',
  /** Counter {queue}: enqueue requests refused with 429 because the queue's backlog was over its bound. */
  backlogRejections: 'fleet_api_backlog_rejections_total',
  /** Counter {queue, tenant, outcome}: job attempts per tenant (outcome `ok` = a completed job). */
  tenantJobs: 'fleet_tenant_jobs_total',
  /** Histogram {queue, tenant}: a completed job from enqueue to the end of its processing, ms. */
  tenantJobLatency: 'fleet_tenant_job_latency_ms',
  /** Counter {queue, tenant, kind}: enqueues refused because the tenant was over a limit (`queued`, `rate`). */
  tenantRejections: 'fleet_tenant_rejections_total',
  /** Gauge (up-down counter) {queue, tenant}: jobs being processed now by this process. */
  tenantActive: 'fleet_tenant_active_jobs',
  /**
   * Gauge {queue, tenant, lane}: jobs a tenant has accepted and not finished on a fair queue, read from its
   * lanes at scrape time: `slotted` (in the FIFO wait list, running or retrying) and `parked`. Waiting =
   * their sum minus `fleet_tenant_active_jobs`.
   */
  tenantQueued: 'fleet_tenant_queued_jobs',
  /** Counter {kind}: operations over their slow threshold (also logged). */
  slowOperations: 'fleet_slow_operations_total',
  /** Gauge: resident set size of the process, bytes (the memory alerts read it). */
  processMemory: 'fleet_process_resident_memory_bytes',
  /** Counter {queue, kind=warehouse|cortex}: Snowflake credits the queue's statements used (src/pool/cost.ts). */
  credits: 'fleet_warehouse_credits_total',
  /** Counter {queue}: Cortex input tokens (estimated at four characters a token, as Snowflake documents). */
  cortexTokens: 'fleet_cortex_tokens_total',
  /** Gauge {queue}: credits per 1,000 successful jobs of the queue since the process started. */
  creditsPer1kJobs: 'fleet_credits_per_1k_jobs',
  /** Gauge {queue}: the same in USD at SNOWFLAKE_CREDIT_PRICE_USD. */
  usdPer1kJobs: 'fleet_usd_per_1k_jobs',
} as const;

export type MetricName = (typeof METRIC_NAMES)[keyof typeof METRIC_NAMES];

/** Every name above, for checks that alert rules and dashboards only use metrics the code exports. */
export const ALL_METRIC_NAMES: readonly MetricName[] = Object.freeze(Object.values(METRIC_NAMES));

/** BullMQ states reported by the queue depth gauge (BullMQ 6 keeps a paused queue's jobs in `waiting`). */
const QUEUE_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed', 'waiting-children'] as const;

/** Millisecond buckets with edges at the fleet's thresholds (100, 200, 500 ms). */
const MS_BUCKETS = [1, 2, 5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10_000, 30_000, 60_000];
const SIZE_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 200, 300, 500, 750, 1000, 2000, 5000];

/** Anything with BullMQ's `name` and `getJobCounts` (a Queue). */
interface QueueCountsSource {
  readonly name: string;
  /** A BullMQ queue's options: its prefix names its shard (src/contracts/shards.ts). */
  readonly opts?: { readonly prefix?: string };
  getJobCounts(...types: (typeof QUEUE_STATES)[number][]): Promise<Record<string, number>>;
}

/** A fair queue's tenant counts (src/fairness TenantLanes fits). */
interface TenantCountsSource {
  readonly queue: string;
  counts(): Promise<readonly { tenant: string; slotted: number; parked: number }[]>;
}

/** Distinct tenant label values one process reports; later tenants are reported as `_other` (bounded series). */
const MAX_TENANT_LABELS = 200;

/** The part of the pool's stats the gauges read (src/pool's PoolStats fits). */
interface PoolGaugeStats {
  size: number;
  borrowed: number;
  available: number;
  pending: number;
  max: number;
}

/** Cumulative lookups of one cache tier since the process started. */
export interface CacheTierStats {
  /** Which cache (`embeddings`, `deals`), as label `cache`; several caches may report. */
  cache?: string;
  /** `l1` (in-process) or `l2` (Redis); lookups start at `l1`. */
  tier: string;
  hits: number;
  misses: number;
  entries?: number;
}

interface IndexGaugeStats {
  vectors: number;
  snapshotVersion: number;
}

/** Who reports an index: a search replica (the snapshot it serves) or the builder (the snapshot it last wrote). */
type IndexRole = 'search' | 'builder';

/** The queues the HTTP API admits enqueues to, each with its own backlog bound (src/http/routes). */
const API_QUEUES = [QUEUES.embeddings, QUEUES.deals, QUEUES.workflows] as const;

/**
 * The fleet's instruments with typed record methods. Recording is cheap (no I/O); gauges that need
 * I/O (queue depth) are read at scrape time only.
 *
 * @example
 *   coalescer onBatch:  (e) => metrics.batch(e.batch.size, e.durationMs, e.ok, e.name)
 *   pooled warehouse:   (e) => metrics.warehouseCall(e.label, e.durationMs, e.ok, e.error?.code)
 *   entry point:        metrics.observePool(() => pool.stats())
 */
export interface FleetMetrics {
  /**
   * One job attempt finished: its wait before processing (negative: not recorded), its processing time
   * and whether it succeeded. Logs a slow job with `fields` (e.g. the job id).
   */
  /**
   * One job attempt ended: `ok`, failed, or `'deferred'` (sent back to waiting without spending an attempt,
   * e.g. while the warehouse circuit is open), recorded as outcome `ok` / `error` / `deferred`.
   */
  job(queue: string, waitMs: number, durationMs: number, ok: boolean | 'deferred', fields?: Record<string, unknown>): void;
  /** One batched warehouse call served `size` keys. */
  batch(size: number, durationMs: number, ok: boolean, coalescer?: string): void;
  /** One warehouse call (attempt). Logs a slow query. */
  warehouseCall(operation: string, durationMs: number, ok: boolean, errorCode?: string, fields?: Record<string, unknown>): void;
  /** One workflow finished. */
  workflow(durationMs: number, ok: boolean, workflow?: string): void;
  /** One HTTP response; `route` is the route pattern (`/v1/jobs/:queue/:id`), never the raw URL. Logs a slow response. */
  httpRequest(method: string, route: string, statusCode: number, durationMs: number): void;
  /** An enqueue refused because the queue's backlog is over its bound. */
  backlogRejected(queue: string): void;
  /**
   * A job attempt of `tenant` starts (`+1`) or ends (`-1`, with its outcome and, when it completed, the time
   * since it was enqueued).
   */
  tenantJob(queue: string, tenant: string, delta: 1 | -1, ok?: boolean | 'deferred', latencyMs?: number): void;
  /** An enqueue refused because `tenant` was over its `kind` limit on `queue`. */
  tenantRejected(queue: string, tenant: string, kind: 'queued' | 'rate'): void;
  /** Reports each tenant's unfinished jobs on these fair queues (TenantLanes.counts) at each scrape. */
  observeTenants(sources: readonly TenantCountsSource[], opts?: { timeoutMs?: number }): () => void;
  /** Reports job counts per state of these queues at each scrape. Returns an unregister function. */
  observeQueues(queues: readonly QueueCountsSource[], opts?: { timeoutMs?: number }): () => void;
  /** Reports the pool's sessions at each scrape. */
  observePool(stats: () => PoolGaugeStats): () => void;
  /** Reports cumulative cache hits and misses per tier at each scrape. */
  observeCache(stats: () => readonly CacheTierStats[]): () => void;
  /**
   * Reports an index's size and snapshot version at each scrape, labelled `index_role` (undefined: no
   * snapshot yet). Returns an unregister function.
   */
  observeIndex(stats: () => IndexGaugeStats | undefined, role?: IndexRole): () => void;
  /**
   * Reports credits and Cortex tokens per queue at each scrape, and credits (and USD at `creditPriceUsd`)
   * per 1,000 jobs the queue completed in this process.
   */
  observeCost(totals: () => ReadonlyMap<string, CostGaugeTotals>, creditPriceUsd: number): () => void;
}

/** Cumulative cost figures of one queue (src/pool's CostTotals fits). */
interface CostGaugeTotals {
  warehouseCredits: number;
  cortexCredits: number;
  cortexTokens: number;
}

export interface FleetMetricsOptions {
  /** Meter to create the instruments on (from a MeterProvider with the Prometheus reader). Required. */
  meter: Meter;
  /** Logs operations over their threshold; none when omitted. */
  slow?: SlowLog;
}

const outcome = (ok: boolean) => (ok ? 'ok' : 'error');

/** Registers a callback in a list and returns its remover; a list keeps one OTel callback per instrument. */
function registry<T>() {
  const items = new Set<T>();
  return {
    items,
    add(item: T): () => void {
      items.add(item);
      return () => {
        items.delete(item);
      };
    },
  };
}

/** Creates the fleet's instruments on `meter`. */
export function createFleetMetrics(opts: FleetMetricsOptions): FleetMetrics {
  if (!opts?.meter) throw new TypeError('createFleetMetrics: option `meter` is required');
  const { meter, slow } = opts;
  const ms = (name: string, description: string) => meter.createHistogram(name, { description, unit: 'ms', advice: { explicitBucketBoundaries: MS_BUCKETS } });

  const jobWait = ms(METRIC_NAMES.jobWait, 'Time from enqueue (or end of delay) to start of processing');
  const jobDuration = ms(METRIC_NAMES.jobDuration, 'Processing time of one job attempt');
  const batchSize = meter.createHistogram(METRIC_NAMES.batchSize, {
    description: 'Distinct keys per batched warehouse call',
    unit: '{key}',
    advice: { explicitBucketBoundaries: SIZE_BUCKETS },
  });
  const batchDuration = ms(METRIC_NAMES.batchDuration, 'Duration of one batched warehouse call');
  const warehouseDuration = ms(METRIC_NAMES.warehouseCallDuration, 'Duration of one warehouse call attempt');
  const warehouseErrors = meter.createCounter(METRIC_NAMES.warehouseErrors.replace(/_total$/, ''), { description: 'Failed warehouse calls' });
  const workflowDuration = ms(METRIC_NAMES.workflowDuration, 'Duration of a workflow from enqueue to synthesis');
  const httpDuration = ms(METRIC_NAMES.httpRequestDuration, 'HTTP API response time');
  const backlogRejections = meter.createCounter(METRIC_NAMES.backlogRejections.replace(/_total$/, ''), {
    description: 'Enqueues refused with 429 (backlog over its bound)',
  });
  const slowOps = meter.createCounter(METRIC_NAMES.slowOperations.replace(/_total$/, ''), { description: 'Operations slower than their threshold' });

  // Counters that have not counted yet are exported at 0 (Prometheus' instrumentation advice), so a
  // rate() over them is 0, not "no data", and an alert on them can tell "none" from "not scraped".
  for (const kind of SLOW_OPERATION_KINDS) slowOps.add(0, { kind });
  for (const queue of API_QUEUES) backlogRejections.add(0, { queue });
  // Warehouse errors are labelled by the code of the error, which is not known before it happens: each
  // operation this process calls gets a code-less series at 0 from its first call.
  const callsSeen = new Set<string>();

  const checkSlow = (kind: Parameters<SlowLog['check']>[0], durationMs: number, fields: Record<string, unknown>) => {
    if (slow?.check(kind, durationMs, fields)) slowOps.add(1, { kind });
  };

  // --- observables: one instrument each, callbacks from registries so several sources can report.
  const queueSources = registry<{ queues: readonly QueueCountsSource[]; timeoutMs: number }>();
  meter
    .createObservableGauge(METRIC_NAMES.queueJobs, { description: 'Jobs per queue and state (read at scrape time)', unit: '{job}' })
    .addCallback(async (result) => {
      const reads: Promise<void>[] = [];
      for (const { queues, timeoutMs } of queueSources.items) {
        for (const q of queues) {
          reads.push(
            withDeadline(q.getJobCounts(...QUEUE_STATES), timeoutMs, `getJobCounts(${q.name})`).then(
              (counts) => {
                const shard = String(shardOfPrefix(q.opts?.prefix ?? '', q.name));
                for (const state of QUEUE_STATES) result.observe(counts[state] ?? 0, { queue: q.name, shard, state });
              },
              // A queue that does not answer is left out of this scrape (absent, not zero).
              () => undefined,
            ),
          );
        }
      }
      await Promise.all(reads);
    });

  const poolSources = registry<() => PoolGaugeStats>();
  const poolGauge = (name: string, description: string, pick: (s: PoolGaugeStats) => number) =>
    meter.createObservableGauge(name, { description, unit: '{session}' }).addCallback((result) => {
      for (const read of poolSources.items) observeSafely(result, () => pick(read()));
    });
  poolGauge(METRIC_NAMES.poolSize, 'Warehouse sessions open (idle + borrowed)', (s) => s.size);
  poolGauge(METRIC_NAMES.poolBorrowed, 'Warehouse sessions borrowed', (s) => s.borrowed);
  poolGauge(METRIC_NAMES.poolAvailable, 'Warehouse sessions idle', (s) => s.available);
  poolGauge(METRIC_NAMES.poolPending, 'Callers waiting for a warehouse session', (s) => s.pending);
  poolGauge(METRIC_NAMES.poolMax, 'Most warehouse sessions allowed', (s) => s.max);

  const cacheSources = registry<() => readonly CacheTierStats[]>();
  const readCache = (): CacheTierStats[] => {
    const out: CacheTierStats[] = [];
    for (const read of cacheSources.items) {
      try {
        out.push(...read());
      } catch {
        // a failing stats callback must not break the scrape
      }
    }
    return out;
  };
  meter.createObservableCounter(METRIC_NAMES.cacheHits.replace(/_total$/, ''), { description: 'Cache lookups answered at this tier' }).addCallback((result) => {
    for (const s of readCache()) result.observe(s.hits, cacheAttrs(s));
  });
  meter
    .createObservableCounter(METRIC_NAMES.cacheMisses.replace(/_total$/, ''), { description: 'Cache lookups not answered at this tier' })
    .addCallback((result) => {
      for (const s of readCache()) result.observe(s.misses, cacheAttrs(s));
    });
  meter.createObservableGauge(METRIC_NAMES.cacheEntries, { description: 'Entries held per cache tier', unit: '{entry}' }).addCallback((result) => {
    for (const s of readCache()) if (s.entries !== undefined) result.observe(s.entries, cacheAttrs(s));
  });

  const indexSources = registry<{ read: () => IndexGaugeStats | undefined; role: IndexRole }>();
  const indexGauge = (name: string, description: string, pick: (s: IndexGaugeStats) => number) =>
    meter.createObservableGauge(name, { description }).addCallback((result) => {
      for (const { read, role } of indexSources.items) {
        observeSafely(
          result,
          () => {
            const s = read();
            return s ? pick(s) : undefined;
          },
          { index_role: role },
        );
      }
    });
  indexGauge(METRIC_NAMES.indexVectors, 'Vectors in the search index (served by a replica, or last written by the builder)', (s) => s.vectors);
  indexGauge(
    METRIC_NAMES.indexSnapshotVersion,
    'Version of the index snapshot (served by a replica, or last written by the builder)',
    (s) => s.snapshotVersion,
  );

  meter
    .createObservableGauge(METRIC_NAMES.processMemory, { description: 'Resident set size of the process', unit: 'By' })
    .addCallback((result) => observeSafely(result, () => process.memoryUsage.rss()));

  // Successful jobs per queue, the denominator of the per-1,000-jobs cost gauges.
  const jobsOk = new Map<string, number>();
  const costSources = registry<{ totals: () => ReadonlyMap<string, CostGaugeTotals>; price: number }>();
  const readCost = (): Array<[string, CostGaugeTotals, number]> => {
    const out: Array<[string, CostGaugeTotals, number]> = [];
    for (const { totals, price } of costSources.items) {
      try {
        for (const [queue, t] of totals()) out.push([queue, t, price]);
      } catch {
        // a failing stats callback must not break the scrape
      }
    }
    return out;
  };
  meter
    .createObservableCounter(METRIC_NAMES.credits.replace(/_total$/, ''), {
      description: "Snowflake credits used by the queue's statements (warehouse time share, Cortex input)",
      unit: '{credit}',
    })
    .addCallback((result) => {
      for (const [queue, t] of readCost()) {
        result.observe(t.warehouseCredits, { queue, kind: 'warehouse' });
        result.observe(t.cortexCredits, { queue, kind: 'cortex' });
      }
    });
  meter
    .createObservableCounter(METRIC_NAMES.cortexTokens.replace(/_total$/, ''), {
      description: 'Cortex input tokens (estimated, four characters a token)',
      unit: '{token}',
    })
    .addCallback((result) => {
      for (const [queue, t] of readCost()) result.observe(t.cortexTokens, { queue });
    });
  const perJobGauge = (name: string, description: string, scale: (credits: number, price: number) => number) =>
    meter.createObservableGauge(name, { description }).addCallback((result) => {
      for (const [queue, t, price] of readCost()) {
        const jobs = jobsOk.get(queue) ?? 0;
        if (jobs > 0) result.observe((1000 * scale(t.warehouseCredits + t.cortexCredits, price)) / jobs, { queue });
      }
    });
  perJobGauge(METRIC_NAMES.creditsPer1kJobs, 'Credits per 1,000 successful jobs of the queue since start', (c) => c);
  perJobGauge(METRIC_NAMES.usdPer1kJobs, 'USD per 1,000 successful jobs of the queue since start (SNOWFLAKE_CREDIT_PRICE_USD)', (c, price) => c * price);

  const tenantsSeen = new Set<string>();
  const tenantLabel = (tenant: string) => {
    if (tenantsSeen.has(tenant)) return tenant;
    if (tenantsSeen.size >= MAX_TENANT_LABELS) return '_other';
    tenantsSeen.add(tenant);
    return tenant;
  };
  const tenantJobs = meter.createCounter(METRIC_NAMES.tenantJobs.replace(/_total$/, ''), { description: 'Job attempts per tenant and outcome' });
  const tenantLatency = ms(METRIC_NAMES.tenantJobLatency, 'A completed job from enqueue to the end of its processing, per tenant');
  const tenantRejections = meter.createCounter(METRIC_NAMES.tenantRejections.replace(/_total$/, ''), {
    description: 'Enqueues refused because the tenant was over a limit',
  });
  const tenantActive = meter.createUpDownCounter(METRIC_NAMES.tenantActive, { description: 'Jobs of the tenant being processed by this process' });
  const tenantSources = registry<{ sources: readonly TenantCountsSource[]; timeoutMs: number }>();
  meter
    .createObservableGauge(METRIC_NAMES.tenantQueued, { description: 'Jobs a tenant has accepted and not finished on a fair queue, by lane (slotted, parked)' })
    .addCallback(async (result) => {
      const reads = [...tenantSources.items].flatMap(({ sources, timeoutMs }) =>
        sources.map(async (src) => {
          try {
            const counts = await withDeadline(src.counts(), timeoutMs, 'tenant counts');
            const byLabel = new Map<string, { slotted: number; parked: number }>();
            for (const c of counts) {
              const label = tenantLabel(c.tenant);
              const sum = byLabel.get(label) ?? { slotted: 0, parked: 0 };
              sum.slotted += c.slotted;
              sum.parked += c.parked;
              byLabel.set(label, sum);
            }
            for (const [tenant, c] of byLabel) {
              result.observe(c.slotted, { queue: src.queue, tenant, lane: 'slotted' });
              result.observe(c.parked, { queue: src.queue, tenant, lane: 'parked' });
            }
          } catch {
            // Redis away or slow: this scrape has no tenant counts for the queue
          }
        }),
      );
      await Promise.all(reads);
    });

  return {
    tenantJob(queue, tenant, delta, ok, latencyMs) {
      const label = tenantLabel(tenant);
      tenantActive.add(delta, { queue, tenant: label });
      if (delta === -1) {
        tenantJobs.add(1, { queue, tenant: label, outcome: ok === 'deferred' ? 'deferred' : outcome(ok === true) });
        if (ok === true && latencyMs !== undefined && latencyMs >= 0) tenantLatency.record(latencyMs, { queue, tenant: label });
      }
    },
    tenantRejected(queue, tenant, kind) {
      tenantRejections.add(1, { queue, tenant: tenantLabel(tenant), kind });
    },
    observeTenants(sources, o = {}) {
      const timeoutMs = o.timeoutMs ?? 2_000;
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000)
        throw new RangeError(`observeTenants: option \`timeoutMs\` must be an integer in [1, 600000] ms, got ${timeoutMs}`);
      return tenantSources.add({ sources: [...sources], timeoutMs });
    },
    job(queue, waitMs, durationMs, ok, fields = {}) {
      if (ok === true) jobsOk.set(queue, (jobsOk.get(queue) ?? 0) + 1);
      if (waitMs >= 0) jobWait.record(waitMs, { queue });
      jobDuration.record(durationMs, { queue, outcome: ok === 'deferred' ? 'deferred' : outcome(ok) });
      checkSlow('job', durationMs, { ...fields, queue });
    },
    batch(size, durationMs, ok, coalescer = 'default') {
      const attrs: Attributes = { coalescer, outcome: outcome(ok) };
      batchSize.record(size, attrs);
      batchDuration.record(durationMs, attrs);
    },
    warehouseCall(operation, durationMs, ok, errorCode, fields = {}) {
      if (!callsSeen.has(operation)) {
        callsSeen.add(operation);
        warehouseErrors.add(0, { operation });
      }
      warehouseDuration.record(durationMs, { operation, outcome: outcome(ok) });
      if (!ok) warehouseErrors.add(1, { operation, code: errorCode ?? 'unknown' });
      checkSlow('warehouse_query', durationMs, { ...fields, operation });
    },
    workflow(durationMs, ok, workflow = 'default') {
      workflowDuration.record(durationMs, { workflow, outcome: outcome(ok) });
    },
    httpRequest(method, route, statusCode, durationMs) {
      httpDuration.record(durationMs, { method, route, status_code: String(statusCode) });
      checkSlow('api_response', durationMs, { method, route, statusCode });
    },
    backlogRejected(queue) {
      backlogRejections.add(1, { queue });
    },
    observeQueues(queues, o = {}) {
      const timeoutMs = o.timeoutMs ?? 2_000;
      // Checked here, not at scrape time, where a bad value would only drop every queue from the gauge.
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000)
        throw new RangeError(`observeQueues: option \`timeoutMs\` must be an integer in [1, 600000] ms, got ${timeoutMs}`);
      return queueSources.add({ queues: [...queues], timeoutMs });
    },
    observePool: (stats) => poolSources.add(stats),
    observeCache: (stats) => cacheSources.add(stats),
    observeIndex: (stats, role = 'search') => indexSources.add({ read: stats, role }),
    observeCost: (totals, creditPriceUsd) => costSources.add({ totals, price: creditPriceUsd }),
  };
}

const cacheAttrs = (s: CacheTierStats): Attributes => (s.cache ? { cache: s.cache, tier: s.tier } : { tier: s.tier });

/**
 * Per-tier figures from a two-tier cache's counters (src/cache's `stats()` fits): every lookup starts at
 * L1; an L1 miss is an L2 lookup; an L2 miss goes to the loader.
 *
 * @example
 *   metrics.observeCache(() => [...tieredCacheStats('embeddings', caches.embeddings.stats()), ...tieredCacheStats('deals', caches.deals.stats())])
 */
export function tieredCacheStats(cache: string, s: { l1Hits: number; l2Hits: number; misses: number; l1Entries?: number }): CacheTierStats[] {
  return [
    { cache, tier: 'l1', hits: s.l1Hits, misses: s.l2Hits + s.misses, entries: s.l1Entries },
    { cache, tier: 'l2', hits: s.l2Hits, misses: s.misses },
  ];
}

function observeSafely(result: ObservableResult, read: () => number | undefined, attrs?: Attributes): void {
  try {
    const v = read();
    if (typeof v === 'number' && Number.isFinite(v)) result.observe(v, attrs);
  } catch {
    // a failing stats callback must not break the scrape
  }
}
