import type { Job, Worker } from 'bullmq';
import type { FleetConfig } from '../../config';
import { JOB_LOOKUP_PAGE } from '../../contracts/batch-log';
import type { QueueName } from '../../contracts/queues';
import { shardCount, shardPrefix } from '../../contracts/shards';
import { fairnessSettings, shardShare } from '../../fairness';
import type { PooledWarehouse, WarehousePool } from '../../pool';
import { type FleetMetrics, instrumentProcessor } from '../../telemetry';
import type { Logger } from '../../telemetry/logger';
import type { DependencyLog } from '../../telemetry/outage-log';
import type { BatchEvent } from '../../workers/coalescer';
import { createJobLogWriter, type IndexingJobLogWriter, type JobLogWriter } from '../../workers/job-logs';
import { circuitOpenCause, runWorker } from '../../workers/run-worker';
import type { SearchProcessor } from '../../workers/search-processor';
import type { FleetCaches } from '../caches';
import { closeRedis, dropRedis, type RedisClient } from '../redis';
import type { Releasers } from '../releasers';

/** What every role is given, built once by the entry point; roles add what they open to `releasers`. */
export interface RoleContext {
  readonly config: FleetConfig;
  /** The role's own logger (`role` bound). */
  readonly logger: Logger;
  /** Creates a new Redis connection (each BullMQ worker gets its own). */
  readonly redis: () => RedisClient;
  /** Redis's availability log: every connection made by `redis` reports to it; so do the role's workers. */
  readonly redisLog: DependencyLog;
  readonly pool: WarehousePool;
  readonly warehouse: PooledWarehouse;
  readonly releasers: Releasers;
  /** The process's metric instruments. */
  readonly metrics?: FleetMetrics;
  /** The process's caches (absent when CACHE_ENABLED=false). */
  readonly caches?: FleetCaches;
}

/** What a role started: its BullMQ workers, start-up work still running, and what it serves in-process. */
export interface StartedRole {
  /** Workers consuming the role's queues; the caller watches them and closes them first on shutdown. */
  workers: Worker[];
  /** Start-up work the role began (index load, snapshot open); the entry point awaits it. */
  ready?: Promise<unknown>;
  /** The search role's processor, behind POST /v1/search when the API runs in this process. */
  search?: SearchProcessor;
}

/** One role: opens what it needs, registers each thing for release as it opens it. */
export type RoleModule = (ctx: RoleContext) => StartedRole;

/** The job log writer of each role context (`jobLogs`), told about the batches `batchObserver` sees. */
const logWriters = new WeakMap<RoleContext, IndexingJobLogWriter>();

/**
 * Records each coalesced warehouse batch (metrics), logs failed ones, and hands each to the role's job
 * log writer (`jobLogs`), which writes the batch's lookup record with the rows that name it.
 */
export function batchObserver(ctx: RoleContext) {
  return (e: BatchEvent) => {
    logWriters.get(ctx)?.observe(e);
    ctx.metrics?.batch(e.batch.size, e.durationMs, e.ok, e.name);
    if (!e.ok) ctx.logger.warn({ batch: e.batch, split: e.split, err: e.error }, 'batch call failed');
    else ctx.logger.debug({ batch: e.batch, ms: Math.round(e.durationMs) }, 'batch served');
  };
}

/** A job log writer on a connection of its own (a worker's connection blocks); both released with the role. */
export function jobLogs(ctx: RoleContext, name: string): { logs: JobLogWriter; connection: RedisClient } {
  const connection = ctx.redis();
  ctx.releasers.add(`${name} connection`, () => closeRedis(connection), { force: () => dropRedis(connection) });
  const j = ctx.config.jobs;
  // Lookup indexes live as long as the longest-kept job they point to; rows naming a batch link to its page.
  const logs = createJobLogWriter(connection, { retentionS: Math.max(j.keepCompletedS, j.keepFailedS), batchPage: JOB_LOOKUP_PAGE });
  logWriters.set(ctx, logs);
  return { logs, connection };
}

/**
 * The shards of `queue` this process consumes: every shard of the current layout and, during a change, of the
 * previous one (so the old layout drains), narrowed to FLEET_WORKER_SHARDS's pins when it names the queue.
 */
export function consumedShards(config: FleetConfig, queue: QueueName): number[] {
  const { counts, previous, consume } = config.shards;
  const held = Math.max(shardCount(counts, queue), shardCount(previous, queue));
  const all = Array.from({ length: held }, (_, k) => k);
  const pinned = consume[queue];
  return pinned ? all.filter((k) => pinned.includes(k)) : all;
}

/**
 * BullMQ workers for `queue`, one per shard this process consumes (`consumedShards`), each on its own
 * connection, with the fleet's lock, stall and retention settings, instrumented, all running the same
 * `processor` (so one coalescer and one pool serve every shard: a batch mixes their jobs). `concurrency` is the
 * process's: the shards' workers share it. A job refused by an open warehouse circuit is deferred (logged once
 * per outage phase).
 */
export function startWorkers(ctx: RoleContext, queue: QueueName, processor: (job: Job) => Promise<unknown>, concurrency: number): Worker[] {
  const { metrics, logger } = ctx;
  const instrumented = metrics
    ? instrumentProcessor(processor as never, { metrics, logger, isDeferral: (err) => circuitOpenCause(err) !== undefined })
    : processor;
  let lastDeferLog = 0;
  const onDeferred = (_job: Job, pauseMs: number) => {
    if (Date.now() - lastDeferLog < 5_000) return; // one line per outage phase, not one per job
    lastDeferLog = Date.now();
    logger.warn({ queue, pauseMs }, 'warehouse circuit open: jobs go back to waiting without spending an attempt; fetching paused');
  };
  const j = ctx.config.jobs;
  const shards = consumedShards(ctx.config, queue);
  const shardCountNow = shardCount(ctx.config.shards.counts, queue);
  const fairness = shardShare(fairnessSettings(ctx.config.fairness), shardCountNow);
  return shards.map((shard) => {
    const connection = ctx.redis();
    const label = shards.length > 1 || shard > 0 ? `${queue} shard ${shard}` : queue;
    ctx.releasers.add(`${label} worker connection`, () => closeRedis(connection), { force: () => dropRedis(connection) });
    return runWorker({
      queue,
      connection,
      processor: instrumented as (job: Job) => Promise<unknown>,
      concurrency: Math.max(1, Math.ceil(concurrency / shards.length)),
      onDeferred,
      prefix: shardPrefix(ctx.config.queuePrefix, queue, shard),
      lockDurationMs: j.lockDurationMs,
      stalledIntervalMs: j.stalledIntervalMs,
      maxStalledCount: j.maxStalledCount,
      keepCompleted: { age: j.keepCompletedS, count: j.keepCompletedCount },
      keepFailed: { age: j.keepFailedS },
      // Frees finished jobs' slots in their tenants' lanes (on the worker's command connection, never a blocking one).
      fairness: { settings: fairness, redis: connection, onError: (err) => ctx.redisLog.failed(err, { queue, shard, op: 'tenant lanes' }) },
    });
  });
}
