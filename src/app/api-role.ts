import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import { type FleetConfig, jobOptionsFrom } from '../config';
import { EnqueueDroppedError, JobFailedError, ResultTimeoutError } from '../contracts/errors';
import { QUEUES } from '../contracts/queues';
import { FAIR_QUEUES, TenantLanes } from '../fairness';
import { HttpError, type ReadinessCheck, type RunningApi, type SearchHandler, startApi } from '../http';
import { IndexNotReadyError } from '../index-builder';
import { type BufferLimits, createProducer, type Producer, type SearchRequestInput } from '../producers';
import type { Telemetry } from '../telemetry';
import type { Logger } from '../telemetry/logger';
import { type DependencyLog, isConnectionError } from '../telemetry/outage-log';
import type { SearchProcessor } from '../workers/search-processor';
import { closeRedis, dropRedis, type RedisClient } from './redis';
import type { Releasers } from './releasers';

export interface ApiWiring {
  config: FleetConfig;
  logger: Logger;
  redis: () => RedisClient;
  releasers: Releasers;
  /** The process's Redis availability log (src/telemetry/outage-log.ts). */
  redisLog: DependencyLog;
  telemetry: Telemetry;
  readiness: ReadinessCheck;
  /** Serves POST /v1/search when this process runs the search role. */
  search?: SearchProcessor;
  /** Bind address override (`fleet up` listens on loopback only). */
  host?: string;
  /** Tokens to use when FLEET_API_TOKENS is unset (`fleet up` generates one); `fleet api` refuses to start without. */
  generateToken?: boolean;
}

/**
 * Where `POST /v1/search` runs: co-located with the search role (`fleet up`), in this process; otherwise
 * (the api Deployment) on the search replicas through the `search` queue, waiting for their answer. Either
 * way an index that is not ready, or replicas that do not answer, is a 503 to retry; an index that
 * disagrees with the contract (dimensions, k) is a logged 500, never the caller's 400.
 */
function searchHandler(w: ApiWiring, producer: Producer): SearchHandler {
  return async (body, ctx) => {
    try {
      if (w.search) return await w.search.run(body);
      const handle = await producer.search((body ?? {}) as SearchRequestInput, { trace: ctx.trace });
      return await handle.result({ timeoutMs: w.config.http.maxWaitMs });
    } catch (err) {
      // No snapshot yet (a fresh fleet) or the service is swapping out: tell the caller to retry.
      if (err instanceof IndexNotReadyError) throw new HttpError(503, 'index_not_ready', err.message, undefined, { 'Retry-After': '5' });
      if (err instanceof JobFailedError && /not ready/i.test(err.reason))
        throw new HttpError(503, 'index_not_ready', err.reason, undefined, { 'Retry-After': '5' });
      if (err instanceof ResultTimeoutError)
        throw new HttpError(503, 'search_timeout', `no search replica answered within ${w.config.http.maxWaitMs} ms`, undefined, { 'Retry-After': '5' });
      throw err;
    }
  };
}

/** The API producer's outage buffer: `PRODUCER_BUFFER_MAX_JOBS` / `PRODUCER_BUFFER_MAX_BYTES` (0 jobs: off). */
function producerBuffer(config: FleetConfig): BufferLimits | false {
  const { maxJobs, maxBytes } = config.http.producerBuffer;
  return maxJobs === 0 ? false : { maxJobs, maxBytes };
}

/**
 * The producer's notices while Redis is away. Connection errors join the process's one Redis log (one line
 * for the outage, then counted); "N jobs buffered" notices are left to the `fleet_producer_buffered_jobs`
 * gauge while that log says Redis is down; a dropped enqueue is always an error line.
 */
function producerNotice(w: ApiWiring, err: Error): void {
  if (isConnectionError(err)) w.redisLog.failed(err);
  else if (err instanceof EnqueueDroppedError)
    w.logger.error({ err: err.message, jobs: err.jobIds.length, queue: err.queue }, 'api producer dropped an enqueue');
  else if (!w.redisLog.down) w.logger.warn({ err: err.message }, 'api producer');
}

/** Starts the HTTP API over the producer library; everything it creates is released with the rest. */
export async function startApiRole(w: ApiWiring): Promise<{ api: RunningApi; tokens: readonly string[]; generated: boolean }> {
  let tokens = w.config.http.tokens;
  let generated = false;
  if (tokens.length === 0) {
    if (!w.generateToken) throw new Error('FLEET_API_TOKENS is not set: the API refuses to serve without authentication');
    tokens = [randomBytes(24).toString('base64url')];
    generated = true;
  }
  const connection = w.redis();
  // quit() on a connection that is down would wait for a reconnect that may never come.
  w.releasers.add('api redis connection', () => closeRedis(connection), { force: () => dropRedis(connection) });
  // Buffered enqueues (Redis away) were answered 202: on shutdown they get what is left of the shutdown
  // deadline to reach Redis, and any dropped are logged with their count (the callers were told "buffered").
  const producer = createProducer({
    connection,
    prefix: w.config.queuePrefix,
    defaultJobOptions: jobOptionsFrom(w.config.jobs),
    buffer: producerBuffer(w.config),
    fairness: w.config.fairness,
    shards: w.config.shards.counts,
    previousShards: w.config.shards.previous,
    onError: (err) => producerNotice(w, err),
  });
  w.releasers.add('api producer', async () => {
    const outcome = await producer.close({ timeoutMs: Math.max(1, Math.floor(w.config.shutdownTimeoutMs / 2)) });
    if (outcome.dropped || outcome.unknown) w.logger.error(outcome, 'api producer closed with buffered enqueues that did not reach Redis');
    else if (outcome.flushed) w.logger.info(outcome, 'api producer flushed its buffer on close');
  });
  // Every shard of every queue (FLEET_QUEUE_SHARDS): Bull Board, lookups, backlog bounds and metrics see them all.
  const queues: Queue[] = Object.values(QUEUES).flatMap((name) => producer.shardQueues(name));
  w.telemetry.metrics.observeQueues(queues);
  if (w.config.fairness.enabled) {
    // A tenant's counts on a queue are the sum over the queue's shards (each shard has its own lanes).
    w.telemetry.metrics.observeTenants(
      FAIR_QUEUES.map((q) => {
        const lanes = producer.shardQueues(q).map((shard) => new TenantLanes(connection, shard.opts.prefix ?? w.config.queuePrefix, q, w.config.fairness));
        return { queue: q, counts: async () => (await Promise.all(lanes.map((l) => l.counts()))).flat() };
      }),
    );
  }
  const api = await startApi({
    port: w.config.http.port,
    host: w.host ?? w.config.http.host,
    producer,
    queues,
    tokens,
    board: { admin: w.config.http.boardAdmin, viewer: w.config.http.boardViewer },
    bodyLimitBytes: w.config.http.bodyLimitBytes,
    maxBacklog: w.config.http.maxBacklog,
    cachePrefix: w.config.cache.keyPrefix,
    maxWaitMs: w.config.http.maxWaitMs,
    readiness: w.readiness,
    metrics: w.telemetry.metrics,
    metricsEndpoint: w.telemetry.metricsEndpoint,
    logger: w.logger,
    search: searchHandler(w, producer),
  });
  w.releasers.add('http api', () => api.close());
  return { api, tokens, generated };
}
