import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { jobOptionsFrom, type FleetConfig } from '../config';
import { QUEUES } from '../contracts/queues';
import { WorkflowJobData } from '../contracts/workflows';
import { validate } from '../contracts/validate';
import { HttpError, startApi, type ReadinessCheck, type RunningApi } from '../http';
import { IndexNotReadyError } from '../index-builder';
import { createProducer, type SearchRequestInput } from '../producers';
import { JobFailedError, ResultTimeoutError } from '../contracts/errors';
import type { Telemetry } from '../telemetry';
import type { Logger } from '../telemetry/logger';
import type { SearchProcessor } from '../workers/search-processor';
import type { Releasers } from './releasers';

export interface ApiWiring {
  config: FleetConfig;
  logger: Logger;
  redis: () => Redis;
  releasers: Releasers;
  telemetry: Telemetry;
  readiness: ReadinessCheck;
  /** Serves POST /v1/search when this process runs the search role. */
  search?: SearchProcessor;
  /** Bind address override (`fleet up` listens on loopback only). */
  host?: string;
  /** Tokens to use when FLEET_API_TOKENS is unset (`fleet up` generates one); `fleet api` refuses to start without. */
  generateToken?: boolean;
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
  w.releasers.add('api redis connection', () => connection.quit());
  const producer = createProducer({ connection, prefix: w.config.queuePrefix, defaultJobOptions: jobOptionsFrom(w.config.jobs) });
  w.releasers.add('api producer', () => producer.close());
  const queues: Queue[] = Object.values(QUEUES).map((name) => producer.queue(name));
  w.telemetry.metrics.observeQueues(queues);
  const api = await startApi({
    port: w.config.http.port,
    host: w.host ?? w.config.http.host,
    producer,
    queues,
    tokens,
    board: { admin: w.config.http.boardAdmin, viewer: w.config.http.boardViewer },
    bodyLimitBytes: w.config.http.bodyLimitBytes,
    maxBacklog: w.config.http.maxBacklog,
    maxWaitMs: w.config.http.maxWaitMs,
    readiness: w.readiness,
    metrics: w.telemetry.metrics,
    metricsEndpoint: w.telemetry.metricsEndpoint,
    logger: w.logger,
    // Co-located with the search role (`fleet up`): answer in-process. Otherwise (the api Deployment)
    // hand the request to the search replicas through the `search` queue and wait for their answer.
    search: async (body, ctx) => {
          try {
            if (w.search) return await w.search.run(body);
            const handle = await producer.search((body ?? {}) as SearchRequestInput, { trace: ctx.trace });
            return await handle.result({ timeoutMs: w.config.http.maxWaitMs });
          } catch (err) {
            // No snapshot yet (a fresh fleet) or the service is swapping out: tell the caller to retry.
            if (err instanceof IndexNotReadyError) throw new HttpError(503, 'index_not_ready', err.message, undefined, { 'Retry-After': '5' });
            // A RangeError from the index here is not the caller's: the request passed validation, so the
            // index disagrees with the contract (dimensions, k, namespace rules) - a 500, logged.
            if (err instanceof ResultTimeoutError) throw new HttpError(503, 'search_timeout', `no search replica answered within ${w.config.http.maxWaitMs} ms`, undefined, { 'Retry-After': '5' });
            if (err instanceof JobFailedError && /not ready/i.test(err.reason)) throw new HttpError(503, 'index_not_ready', err.reason, undefined, { 'Retry-After': '5' });
            throw err;
          }
        },
    workflows: {
      async start(body, ctx) {
        const input = (body ?? {}) as Record<string, unknown>;
        const data = validate(WorkflowJobData, { ...input, trace: ctx.trace });
        const handle = await producer.workflow(data.question, { type: data.type, requiredSources: data.requiredSources, asOf: data.asOf, idempotencyKey: ctx.idempotencyKey, trace: ctx.trace });
        return { id: handle.id, queue: handle.queue, status: `/v1/workflows/${handle.id}` };
      },
      async get(id) {
        const job = await producer.queue(QUEUES.workflows).getJob(id);
        if (!job) return undefined;
        const state = await job.getState();
        return { id, state, report: job.returnvalue ?? null, failedReason: job.failedReason || undefined, dependencies: await job.getDependenciesCount() };
      },
    },
  });
  w.releasers.add('http api', () => api.close());
  return { api, tokens, generated };
}
