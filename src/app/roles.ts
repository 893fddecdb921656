import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createDealInsightCache, createEmbeddingCache, type CacheEvent, type TieredCache } from '../cache';
import type { Deal } from '../contracts/deals';
import type { FleetConfig } from '../config';
import { QUEUES } from '../contracts/queues';
import type { PooledWarehouse, WarehousePool } from '../pool';
import type { Logger } from '../telemetry/logger';
import { instrumentProcessor, type FleetMetrics } from '../telemetry';
import type { BatchEvent } from '../workers/coalescer';
import { createDealProcessor } from '../workers/deal-processor';
import { createFlowProcessors } from '../workers/flow-processors';
import { createEmbeddingProcessor, createEmbeddingService } from '../workers/embedding-processor';
import { createJobLogWriter } from '../workers/job-logs';
import { createSearchProcessor, type SearchProcessor } from '../workers/search-processor';
import { appendUpsertsOnce, createIndexBuilder, createSearchService } from '../index-builder';
import { EMBEDDING_DIMS } from '../warehouse/queries/embed-texts';
import { circuitOpenCause, runWorker } from '../workers/run-worker';
import type { Releasers } from './releasers';

export const WORKER_ROLES = ['embeddings', 'deals', 'flows', 'index', 'search'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

/** What a role needs, built once by the entry point. */
export interface RoleContext {
  config: FleetConfig;
  logger: Logger;
  /** Creates a new Redis connection (each BullMQ worker gets its own). */
  redis: () => Redis;
  pool: WarehousePool;
  warehouse: PooledWarehouse;
  releasers: Releasers;
  /** The process's metric instruments. */
  metrics?: FleetMetrics;
  /** Start-up work a role began (index load, snapshot open); the entry point awaits it. */
  pending: Promise<unknown>[];
  /** The process's caches (absent when CACHE_ENABLED=false). */
  caches?: FleetCaches;
  /** Set by the search role: the processor behind POST /v1/search and the `search` queue. */
  search?: SearchProcessor;
}

export interface FleetCaches {
  embeddings: TieredCache<Float32Array>;
  deals: TieredCache<Deal>;
}

/** Builds the process's two caches on their own Redis connection; released with the rest. */
export function createCaches(config: FleetConfig, redis: () => Redis, releasers: Releasers, logger: Logger): FleetCaches | undefined {
  if (!config.cache.enabled) return undefined;
  const c = config.cache;
  const connection = redis();
  releasers.add('cache connection', () => connection.quit());
  const onEvent = (e: CacheEvent) => {
    if (e.type === 'l2-error' || e.type === 'circuit') logger.warn({ cache: e.cache, event: e.type, ...('reason' in e ? { reason: e.reason } : { state: e.state }) }, 'cache L2 degraded');
  };
  const embeddings = createEmbeddingCache({
    redis: connection, prefix: c.keyPrefix, l2TimeoutMs: c.l2TimeoutMs,
    l1MaxEntries: c.embeddings.l1MaxEntries, l1MaxBytes: c.embeddings.l1MaxBytes, l1TtlMs: c.embeddings.l1TtlMs, l2TtlMs: c.embeddings.l2TtlMs,
    onEvent,
  });
  const deals = createDealInsightCache<Deal>({
    redis: connection, prefix: c.keyPrefix, l2TimeoutMs: c.l2TimeoutMs,
    l1TtlMs: c.deals.l1TtlMs, l2TtlMs: c.deals.l2TtlMs, graceMs: c.deals.graceMs,
    onEvent,
  });
  releasers.add('caches', () => Promise.all([embeddings.close(), deals.close()]));
  return { embeddings, deals };
}

function batchLogger(logger: Logger, metrics?: FleetMetrics) {
  return (e: BatchEvent) => {
    metrics?.batch(e.batch.size, e.durationMs, e.ok, e.name);
    if (!e.ok) logger.warn({ batch: e.batch, split: e.split, err: e.error }, 'batch call failed');
    else logger.debug({ batch: e.batch, ms: Math.round(e.durationMs) }, 'batch served');
  };
}

function workerCommon(ctx: RoleContext) {
  const j = ctx.config.jobs;
  return {
    prefix: ctx.config.queuePrefix,
    lockDurationMs: j.lockDurationMs,
    stalledIntervalMs: j.stalledIntervalMs,
    maxStalledCount: j.maxStalledCount,
    keepCompleted: { age: j.keepCompletedS, count: j.keepCompletedCount },
    keepFailed: { age: j.keepFailedS },
  };
}

function watch(worker: Worker, logger: Logger): void {
  worker.on('failed', (job, err) => logger.warn({ queue: worker.name, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'job failed'));
  worker.on('error', (err) => logger.error({ queue: worker.name, err }, 'worker error'));
  worker.on('stalled', (jobId) => logger.warn({ queue: worker.name, jobId }, 'job stalled: its worker stopped renewing the lock; it will run again'));
}

/** Starts one worker role in this process; everything it creates is registered for release. */
export function startRole(role: WorkerRole, ctx: RoleContext): Worker[] {
  const logger = ctx.logger.child({ role });
  const maxConcurrentBatches = ctx.config.pool.max;
  const started: Worker[] = [];
  const start = (queue: (typeof QUEUES)[keyof typeof QUEUES], processor: (job: Job) => Promise<unknown>, concurrency: number) => {
    const connection = ctx.redis();
    ctx.releasers.add(`${queue} worker connection`, () => connection.quit());
    const instrumented = ctx.metrics ? instrumentProcessor(processor as never, { metrics: ctx.metrics, logger, isDeferral: (err) => circuitOpenCause(err) !== undefined }) : processor;
    let lastDeferLog = 0;
    const onDeferred = (_job: Job, pauseMs: number) => {
      if (Date.now() - lastDeferLog < 5_000) return; // one line per outage phase, not one per job
      lastDeferLog = Date.now();
      logger.warn({ queue, pauseMs }, 'warehouse circuit open: jobs go back to waiting without spending an attempt; fetching paused');
    };
    started.push(runWorker({ queue, connection, processor: instrumented as (job: Job) => Promise<unknown>, concurrency, onDeferred, ...workerCommon(ctx) }));
  };
  if (role === 'embeddings') {
    const s = ctx.config.embeddings;
    // Index upserts and job logs: small scripts, one per batch, on a connection of their own.
    const indexConn = ctx.redis();
    ctx.releasers.add('index log connection', () => indexConn.quit());
    const logs = createJobLogWriter(indexConn);
    const processor = createEmbeddingProcessor({
      logs,
      warehouse: ctx.warehouse,
      cache: ctx.caches?.embeddings,
      indexSink: (items) => appendUpsertsOnce(indexConn, ctx.config.queuePrefix, items, { dimensions: EMBEDDING_DIMS }),
      batching: { maxBatchSize: s.maxBatchSize, maxWaitMs: s.maxWaitMs, maxConcurrentBatches },
      onBatch: batchLogger(logger, ctx.metrics),
    });
    ctx.releasers.add('embedding coalescers', async () => {
      await processor.close();
      await logs.close();
    });
    start(QUEUES.embeddings, processor.process, s.concurrency);
  } else if (role === 'deals') {
    const s = ctx.config.deals;
    const logConn = ctx.redis();
    ctx.releasers.add('job log connection', () => logConn.quit());
    const logs = createJobLogWriter(logConn);
    const processor = createDealProcessor({
      logs,
      warehouse: ctx.warehouse,
      cache: ctx.caches?.deals,
      batching: { maxBatchSize: s.maxBatchSize, maxWaitMs: s.maxWaitMs, maxConcurrentBatches },
      onBatch: batchLogger(logger, ctx.metrics),
    });
    ctx.releasers.add('deal coalescer', async () => {
      await processor.close();
      await logs.close();
    });
    start(QUEUES.deals, processor.process, s.concurrency);
  } else if (role === 'index') {
    const i = ctx.config.index;
    const connection = ctx.redis();
    ctx.releasers.add('index builder connection', () => connection.quit());
    const builder = createIndexBuilder({
      redis: connection,
      prefix: ctx.config.queuePrefix,
      snapshotDir: i.snapshotDir,
      snapshotEveryMs: i.snapshotEveryMs,
      settings: { dimensions: EMBEDDING_DIMS, metric: i.metric, dtype: i.dtype, connectivity: i.connectivity, expansionAdd: i.expansionAdd, expansionSearch: i.expansionSearch },
      logger: logger as never,
    });
    ctx.releasers.add('index builder (final snapshot)', () => builder.close());
    ctx.pending.push(builder.start().then(() => logger.info({ snapshotDir: i.snapshotDir }, 'index builder started')));
  } else if (role === 'search') {
    const i = ctx.config.index;
    const connection = ctx.redis();
    ctx.releasers.add('search service connection', () => connection.quit());
    const service = createSearchService({
      redis: connection, prefix: ctx.config.queuePrefix, snapshotDir: i.snapshotDir, mode: i.searchMode, expansionSearch: i.expansionSearch, logger: logger as never,
    });
    ctx.releasers.add('search service', () => service.close());
    ctx.pending.push(service.start().then(() => logger.info({ snapshotVersion: service.snapshotVersion, ready: service.ready }, 'search service started')));
    const embeddings = createEmbeddingService({
      warehouse: ctx.warehouse,
      cache: ctx.caches?.embeddings,
      batching: { maxBatchSize: ctx.config.embeddings.maxBatchSize, maxWaitMs: ctx.config.embeddings.maxWaitMs, maxConcurrentBatches },
    });
    ctx.releasers.add('search embeddings', () => embeddings.close());
    ctx.search = createSearchProcessor({ index: service, embeddings });
    start(QUEUES.search, ctx.search.process, i.searchConcurrency);
  } else {
    const s = ctx.config.flows;
    const logConn = ctx.redis();
    ctx.releasers.add('job log connection', () => logConn.quit());
    const logs = createJobLogWriter(logConn);
    const processors = createFlowProcessors({
      logs,
      warehouse: ctx.warehouse,
      batching: { maxWaitMs: s.maxWaitMs, maxConcurrentBatches },
      onBatch: batchLogger(logger, ctx.metrics),
    });
    ctx.releasers.add('workflow coalescers', async () => {
      await processors.close();
      await logs.close();
    });
    start(QUEUES.collect, processors.collect, s.concurrency);
    start(QUEUES.analyze, processors.analyze, s.concurrency);
    start(QUEUES.workflows, processors.synthesize, s.concurrency);
  }
  for (const worker of started) {
    watch(worker, logger);
    // Registered last, released first: stop taking jobs and let active ones finish before the rest closes.
    ctx.releasers.add(`${worker.name} worker`, () => worker.close());
    logger.info({ queue: worker.name, concurrency: worker.opts.concurrency }, 'worker started');
  }
  return started;
}
