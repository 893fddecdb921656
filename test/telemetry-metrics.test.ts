import { Queue } from 'bullmq';
import { warehouseCallReporter } from '../src/app/fleet';
import { QUEUES } from '../src/contracts/queues';
import { buildApi } from '../src/http';
import { createProducer } from '../src/producers';
import { ALL_METRIC_NAMES, createLogger, createMetricsRegistry, createSlowLog, METRIC_NAMES, slowThresholds, tieredCacheStats } from '../src/telemetry';
import { WarehouseError } from '../src/warehouse/errors';
import { captureLogs } from './helpers/logs';
import { testRedis, uniquePrefix } from './helpers/redis';

/** `name{labels} value` lines of an exposition, as [name, labels, value]. */
function samples(text: string): [string, string, number][] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(l)!;
      return [m[1], m[2] ?? '', Number(m[3])];
    });
}
const value = (text: string, name: string, ...labels: string[]) => samples(text).find(([n, l]) => n === name && labels.every((x) => l.includes(x)))?.[2];

describe('telemetry metrics: the Prometheus endpoint', () => {
  it('exposes every fleet metric, with the values recorded and observed', async () => {
    const registry = createMetricsRegistry();
    const redis = testRedis();
    const prefix = uniquePrefix('tm-all');
    const queues = [new Queue(QUEUES.embeddings, { connection: redis, prefix }), new Queue(QUEUES.deals, { connection: redis, prefix })];
    try {
      await queues[0].add('embed', { text: 'a' });
      await queues[0].add('embed', { text: 'b' });
      await queues[0].add('embed', { text: 'c' }, { priority: 3 });
      await queues[0].add('embed', { text: 'd' }, { delay: 60_000 });
      const m = registry.metrics;
      m.job('embeddings', 12, 80, true);
      m.job('embeddings', 5, 250, false);
      m.job('embeddings', 5, 3, 'deferred');
      m.batch(500, 40, true, 'emb');
      m.warehouseCall('embed_texts', 42, true);
      m.warehouseCall('get_deals', 3000, false, 'TIMEOUT');
      m.workflow(1500, true, 'deal-review');
      m.httpRequest('POST', '/v1/embeddings', 202, 3);
      m.backlogRejected('embeddings');
      m.observeQueues(queues);
      m.observePool(() => ({ size: 5, borrowed: 4, available: 1, pending: 2, max: 8 }));
      m.observeCache(() => tieredCacheStats('embeddings', { l1Hits: 70, l2Hits: 20, misses: 10, l1Entries: 1000 }));
      m.observeCache(() => tieredCacheStats('deals', { l1Hits: 1, l2Hits: 2, misses: 3 }));
      m.observeIndex(() => ({ vectors: 12_345, snapshotVersion: 7 }));
      // One successful embeddings job so far (above): 0.002 credits over it = 2 credits per 1,000 jobs.
      m.observeCost(() => new Map([['embeddings', { warehouseCredits: 0.0015, cortexCredits: 0.0005, cortexTokens: 16_000 }]]), 3);
      m.tenantJob('embeddings', 'acme', 1);
      m.tenantJob('embeddings', 'acme', 1);
      m.tenantJob('embeddings', 'acme', -1, true, 120);
      m.tenantJob('embeddings', 'beta', 1);
      m.tenantJob('embeddings', 'beta', -1, false);
      m.tenantRejected('embeddings', 'beta', 'rate');
      m.observeTenants([
        {
          queue: 'embeddings',
          counts: async () => [
            { tenant: 'acme', slotted: 64, parked: 1000 },
            { tenant: 'beta', slotted: 3, parked: 0 },
          ],
        },
      ]);

      const text = await registry.endpoint.render();
      const names = new Set(samples(text).map(([n]) => n.replace(/_(bucket|sum|count)$/, '')));
      for (const name of ALL_METRIC_NAMES) expect({ name, exposed: names.has(name) }).toEqual({ name, exposed: true });

      expect(value(text, 'fleet_queue_jobs', 'queue="embeddings"', 'state="waiting"')).toBe(2);
      expect(value(text, 'fleet_tenant_active_jobs', 'tenant="acme"')).toBe(1);
      expect(value(text, 'fleet_tenant_active_jobs', 'tenant="beta"')).toBe(0);
      expect(value(text, 'fleet_tenant_jobs_total', 'tenant="acme"', 'outcome="ok"')).toBe(1);
      expect(value(text, 'fleet_tenant_jobs_total', 'tenant="beta"', 'outcome="error"')).toBe(1);
      expect(value(text, 'fleet_tenant_job_latency_ms_count', 'tenant="acme"')).toBe(1);
      expect(value(text, 'fleet_tenant_queued_jobs', 'tenant="acme"', 'lane="parked"')).toBe(1000);
      expect(value(text, 'fleet_tenant_rejections_total', 'tenant="beta"', 'kind="rate"')).toBe(1);
      expect(value(text, 'fleet_tenant_queued_jobs', 'tenant="beta"', 'lane="slotted"')).toBe(3);
      expect(value(text, 'fleet_queue_jobs', 'queue="embeddings"', 'state="prioritized"')).toBe(1);
      expect(value(text, 'fleet_queue_jobs', 'queue="embeddings"', 'state="delayed"')).toBe(1);
      expect(value(text, 'fleet_queue_jobs', 'queue="deals"', 'state="waiting"')).toBe(0);
      expect(value(text, 'fleet_pool_borrowed')).toBe(4);
      expect(value(text, 'fleet_pool_max')).toBe(8);
      expect(value(text, 'fleet_pool_pending')).toBe(2);
      expect(value(text, 'fleet_cache_hits_total', 'cache="embeddings"', 'tier="l1"')).toBe(70);
      expect(value(text, 'fleet_cache_misses_total', 'cache="embeddings"', 'tier="l1"')).toBe(30);
      expect(value(text, 'fleet_cache_hits_total', 'cache="embeddings"', 'tier="l2"')).toBe(20);
      expect(value(text, 'fleet_cache_misses_total', 'cache="embeddings"', 'tier="l2"')).toBe(10);
      expect(value(text, 'fleet_cache_entries', 'cache="embeddings"', 'tier="l1"')).toBe(1000);
      expect(value(text, 'fleet_cache_misses_total', 'cache="deals"', 'tier="l2"')).toBe(3);
      expect(value(text, 'fleet_index_vectors')).toBe(12_345);
      expect(value(text, 'fleet_warehouse_credits_total', 'queue="embeddings"', 'kind="warehouse"')).toBeCloseTo(0.0015);
      expect(value(text, 'fleet_warehouse_credits_total', 'queue="embeddings"', 'kind="cortex"')).toBeCloseTo(0.0005);
      expect(value(text, 'fleet_cortex_tokens_total', 'queue="embeddings"')).toBe(16_000);
      expect(value(text, 'fleet_credits_per_1k_jobs', 'queue="embeddings"')).toBeCloseTo(2);
      expect(value(text, 'fleet_usd_per_1k_jobs', 'queue="embeddings"')).toBeCloseTo(6);
      expect(value(text, 'fleet_index_snapshot_version')).toBe(7);
      expect(value(text, 'fleet_index_vectors', 'index_role="search"')).toBe(12_345);
      expect(value(text, 'fleet_process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(value(text, 'fleet_warehouse_errors_total', 'operation="get_deals"', 'code="TIMEOUT"')).toBe(1);
      expect(value(text, 'fleet_job_duration_ms_count', 'queue="embeddings"', 'outcome="error"')).toBe(1);
      // sent back to waiting while the warehouse circuit is open: not a failure
      expect(value(text, 'fleet_job_duration_ms_count', 'queue="embeddings"', 'outcome="deferred"')).toBe(1);
      expect(value(text, 'fleet_batch_size_sum', 'coalescer="emb"')).toBe(500);
      expect(value(text, 'fleet_api_backlog_rejections_total', 'queue="embeddings"')).toBe(1);
      // bucket edges at the alert thresholds, so histogram_quantile is exact there
      for (const le of ['100', '200', '500']) expect(value(text, 'fleet_http_request_duration_ms_bucket', `le="${le}"`)).toBeDefined();
    } finally {
      await Promise.all(queues.map((q) => q.close()));
      await redis.quit();
      await registry.shutdown();
    }
  });

  it('exports counters that have not counted yet at 0: slow operations per kind, backlog rejections per API queue, errors per operation called', async () => {
    const registry = createMetricsRegistry();
    try {
      const before = await registry.endpoint.render();
      for (const kind of ['warehouse_query', 'job', 'api_response']) expect(value(before, METRIC_NAMES.slowOperations, `kind="${kind}"`)).toBe(0);
      for (const queue of [QUEUES.embeddings, QUEUES.deals, QUEUES.workflows])
        expect(value(before, METRIC_NAMES.backlogRejections, `queue="${queue}"`)).toBe(0);
      // An operation's error counter appears with its first call, before any error, without a code.
      expect(value(before, 'fleet_warehouse_errors_total')).toBeUndefined();
      registry.metrics.warehouseCall('get_deals', 3, true);
      registry.metrics.warehouseCall('get_deals', 3, false, 'FLEET_TIMEOUT');
      const after = await registry.endpoint.render();
      const errors = samples(after).filter(([n]) => n === 'fleet_warehouse_errors_total');
      expect(errors.map(([, l, v]) => [l.replace(/,?otel_scope_name="[^"]*"/, ''), v])).toEqual([
        ['{operation="get_deals"}', 0],
        ['{operation="get_deals",code="FLEET_TIMEOUT"}', 1],
      ]);
    } finally {
      await registry.shutdown();
    }
  });

  it('labels each index by who reports it: the snapshot a search replica serves, the one the builder last wrote', async () => {
    const registry = createMetricsRegistry();
    try {
      let served: { vectors: number; snapshotVersion: number } | undefined;
      registry.metrics.observeIndex(() => served, 'search');
      registry.metrics.observeIndex(() => ({ vectors: 10, snapshotVersion: 4 }), 'builder');
      // No snapshot served yet: absent, not 0 (0 would read as an empty index).
      expect(value(await registry.endpoint.render(), 'fleet_index_vectors', 'index_role="search"')).toBeUndefined();
      served = { vectors: 8, snapshotVersion: 3 };
      const text = await registry.endpoint.render();
      expect(value(text, 'fleet_index_vectors', 'index_role="search"')).toBe(8);
      expect(value(text, 'fleet_index_snapshot_version', 'index_role="search"')).toBe(3);
      expect(value(text, 'fleet_index_vectors', 'index_role="builder"')).toBe(10);
    } finally {
      await registry.shutdown();
    }
  });

  it('reads queue depth at scrape time only, and a queue that does not answer is left out, not waited for', async () => {
    const registry = createMetricsRegistry();
    const redis = testRedis();
    const prefix = uniquePrefix('tm-scrape');
    const live = new Queue(QUEUES.embeddings, { connection: redis, prefix });
    // A queue whose Redis never answers (as one behind a network partition would).
    const unreachable = { name: QUEUES.deals, getJobCounts: () => new Promise<Record<string, number>>(() => undefined) };
    const spy = jest.spyOn(live, 'getJobCounts');
    try {
      registry.metrics.observeQueues([live, unreachable], { timeoutMs: 300 });
      for (let i = 0; i < 100; i++) registry.metrics.job('embeddings', 1, 1, true);
      expect(spy).not.toHaveBeenCalled();
      const text = await registry.endpoint.render();
      expect(spy).toHaveBeenCalledTimes(1);
      expect(value(text, 'fleet_queue_jobs', 'queue="embeddings"', 'state="waiting"')).toBe(0);
      expect(value(text, 'fleet_queue_jobs', 'queue="deals"')).toBeUndefined();
    } finally {
      spy.mockRestore();
      await live.close();
      await redis.quit();
      await registry.shutdown();
    }
  });

  it('serves /metrics from the API itself, with request durations by route pattern', async () => {
    const registry = createMetricsRegistry();
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix: uniquePrefix('tm-api') });
    const token = 'metrics-token-0123456789ab';
    const app = await buildApi({
      producer,
      queues: [producer.queue(QUEUES.embeddings)],
      tokens: [token],
      metrics: registry.metrics,
      metricsEndpoint: registry.endpoint,
    });
    try {
      await app.inject({ method: 'GET', url: '/v1/jobs/embeddings/123', headers: { authorization: `Bearer ${token}` } });
      await app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${token}` }, payload: { text: 'hi' } });
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(value(res.body, 'fleet_http_request_duration_ms_count', 'route="/v1/jobs/:queue/:id"', 'status_code="404"')).toBe(1);
      expect(value(res.body, 'fleet_http_request_duration_ms_count', 'route="/v1/embeddings"', 'method="POST"', 'status_code="202"')).toBe(1);
      expect(res.body).not.toContain('/v1/jobs/embeddings/123');
    } finally {
      await app.close();
      await producer.close();
      await redis.quit();
      await registry.shutdown();
    }
  });
});

describe('telemetry: slow operations are logged with their threshold', () => {
  it('logs a warehouse query over 100 ms, a job over 200 ms and an API response over 500 ms, and counts them', async () => {
    const logs = captureLogs();
    const logger = createLogger({ destination: logs.stream, level: 'info' });
    const registry = createMetricsRegistry({ slow: createSlowLog(logger) });
    try {
      registry.metrics.warehouseCall('embed_texts', 99, true);
      registry.metrics.warehouseCall('embed_texts', 150, true);
      registry.metrics.job('deals', 0, 199, true, { jobId: '42' });
      registry.metrics.job('deals', 0, 201, true, { jobId: '43' });
      registry.metrics.httpRequest('POST', '/v1/embeddings', 202, 480);
      registry.metrics.httpRequest('POST', '/v1/embeddings', 202, 620);
      logger.flush();
      const lines = logs.lines();
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatchObject({
        level: 40,
        kind: 'warehouse_query',
        operation: 'embed_texts',
        durationMs: 150,
        thresholdMs: 100,
        msg: 'slow warehouse query: 150 ms (threshold 100 ms)',
      });
      expect(lines[1]).toMatchObject({ kind: 'job', queue: 'deals', jobId: '43', durationMs: 201, thresholdMs: 200 });
      expect(lines[2]).toMatchObject({ kind: 'api_response', route: '/v1/embeddings', durationMs: 620, thresholdMs: 500 });
      const text = await registry.endpoint.render();
      expect(value(text, 'fleet_slow_operations_total', 'kind="warehouse_query"')).toBe(1);
      expect(value(text, 'fleet_slow_operations_total', 'kind="job"')).toBe(1);
    } finally {
      await registry.shutdown();
    }
  });

  it("the process's warehouse call reporter logs a slow call once (the slow log's line) and a failed one once", async () => {
    const logs = captureLogs();
    const logger = createLogger({ destination: logs.stream, level: 'info' });
    const registry = createMetricsRegistry({ slow: createSlowLog(logger) });
    try {
      const report = warehouseCallReporter(registry.metrics, logger);
      report({ label: 'embed_texts', durationMs: 40, ok: true, rows: 500, attempt: 0 });
      report({ label: 'embed_texts', durationMs: 180, ok: true, rows: 500, attempt: 1 });
      // A failure the warehouse answered (an outage goes to the warehouse's dependency log instead).
      const answered = new WarehouseError('SQL compilation error: object does not exist', { code: '002003', transient: false });
      report({ label: 'get_deals', durationMs: 30, ok: false, rows: 0, attempt: 0, error: answered });
      logger.flush();
      const lines = logs.lines();
      expect(lines.map((l) => l.msg)).toEqual(['slow warehouse query: 180 ms (threshold 100 ms)', 'warehouse call failed']);
      expect(lines[0]).toMatchObject({ operation: 'embed_texts', attempt: 1 });
    } finally {
      await registry.shutdown();
    }
  });

  it('thresholds are configurable and bad ones are refused', () => {
    const logs = captureLogs();
    const slow = createSlowLog(createLogger({ destination: logs.stream }), { warehouseQueryMs: 250 });
    expect(slow.check('warehouse_query', 200)).toBe(false);
    expect(slow.check('warehouse_query', 251)).toBe(true);
    expect(slow.thresholds).toEqual({ warehouseQueryMs: 250, jobMs: 200, apiResponseMs: 500 });
    expect(() => slowThresholds({ jobMs: -1 })).toThrow(/slow threshold `jobMs` must be a finite number >= 0 \(ms\), got -1/);
    expect(() => slowThresholds({ apiResponseMs: Number.NaN })).toThrow(/apiResponseMs/);
  });
});
