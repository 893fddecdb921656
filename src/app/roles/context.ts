import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { FleetConfig } from '../../config';
import type { QueueName } from '../../contracts/queues';
import type { PooledWarehouse, WarehousePool } from '../../pool';
import { type FleetMetrics, instrumentProcessor } from '../../telemetry';
import type { Logger } from '../../telemetry/logger';
import type { BatchEvent } from '../../workers/coalescer';
import { createJobLogWriter, type JobLogWriter } from '../../workers/job-logs';
import { circuitOpenCause, runWorker } from '../../workers/run-worker';
import type { SearchProcessor } from '../../workers/search-processor';
import type { FleetCaches } from '../caches';
import type { Releasers } from '../releasers';

/** What every role is given, built once by the entry point; roles add what they open to `releasers`. */
export interface RoleContext {
  readonly config: FleetConfig;
  /** The role's own logger (`role` bound). */
  readonly logger: Logger;
  /** Creates a new Redis connection (each BullMQ worker gets its own). */
  readonly redis: () => Redis;
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

/** Records each coalesced warehouse batch (metrics) and logs failed ones. */
export function batchObserver(ctx: RoleContext) {
  return (e: BatchEvent) => {
    ctx.metrics?.batch(e.batch.size, e.durationMs, e.ok, e.name);
    if (!e.ok) ctx.logger.warn({ batch: e.batch, split: e.split, err: e.error }, 'batch call failed');
    else ctx.logger.debug({ batch: e.batch, ms: Math.round(e.durationMs) }, 'batch served');
  };
}

/** A job log writer on a connection of its own (a worker's connection blocks); both released with the role. */
export function jobLogs(ctx: RoleContext, name: string): { logs: JobLogWriter; connection: Redis } {
  const connection = ctx.redis();
  ctx.releasers.add(`${name} connection`, () => connection.quit());
  return { logs: createJobLogWriter(connection), connection };
}

/**
 * A BullMQ worker for `queue` on its own connection, with the fleet's lock, stall and retention settings,
 * instrumented; a job refused by an open warehouse circuit is deferred (logged once per outage phase).
 */
export function startWorker(ctx: RoleContext, queue: QueueName, processor: (job: Job) => Promise<unknown>, concurrency: number): Worker {
  const connection = ctx.redis();
  ctx.releasers.add(`${queue} worker connection`, () => connection.quit());
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
  return runWorker({
    queue,
    connection,
    processor: instrumented as (job: Job) => Promise<unknown>,
    concurrency,
    onDeferred,
    prefix: ctx.config.queuePrefix,
    lockDurationMs: j.lockDurationMs,
    stalledIntervalMs: j.stalledIntervalMs,
    maxStalledCount: j.maxStalledCount,
    keepCompleted: { age: j.keepCompletedS, count: j.keepCompletedCount },
    keepFailed: { age: j.keepFailedS },
  });
}
