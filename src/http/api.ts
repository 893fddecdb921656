import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Producer } from '../producers';
import type { FleetMetrics } from '../telemetry/metrics';
import type { MetricsEndpoint } from '../telemetry/prometheus';
import { createAdmission } from './admission';
import { type Credentials, createAuthenticator } from './auth';
import { BacklogGuard, type BacklogOptions } from './backlog';
import { type BoardOptions, mountBoard } from './board';
import { installErrorReplies } from './error-replies';
import { loadFastify } from './fastify';
import { listen, type ReadinessCheck, type RunningServer, registerHealthRoutes } from './health';
import { registerDocs } from './openapi';
import { QueueSet } from './queue-set';
import { dealRoutes } from './routes/deals';
import { jobRoutes } from './routes/jobs';
import { lookupRoutes } from './routes/lookup';
import { type SearchHandler, searchRoutes } from './routes/search';
import { workflowRoutes } from './routes/workflows';
import { secureV1 } from './v1-scope';

/** Bull Board access; the board is mounted when any credential exists (API tokens count as admin). */
interface ApiBoardOptions extends BoardOptions {
  /** Basic credentials of the board administrator (browsers). */
  admin?: Credentials;
  /** Basic credentials of a read-only viewer. */
  viewer?: Credentials;
  /** Bearer tokens that see the board read-only (and nothing else). */
  viewerTokens?: readonly string[];
}

export interface ApiOptions {
  /** The typed client library the API sits on (createProducer). Required. Not closed by the API. */
  producer: Producer;
  /**
   * BullMQ queues by which jobs are looked up, shown in Bull Board and checked for backlog; every shard of a sharded
   * queue (`producer.shardQueues`). Required (may be empty).
   */
  queues: readonly Queue[];
  /** Bearer tokens accepted on /v1 (and as admin on Bull Board); each at least 16 characters. Required, at least one. */
  tokens: readonly string[];
  /** Bull Board options, or false to not mount it. */
  board?: ApiBoardOptions | false;
  /** Largest request body; larger ones get 413. Default 1 MiB (1,048,576). */
  bodyLimitBytes?: number;
  /** Per-queue backlog bound (waiting + prioritized jobs) above which enqueues get 429. Default 100,000; Infinity disables. */
  maxBacklog?: BacklogOptions['maxBacklog'];
  /** How the backlog is counted: states, count cache, Retry-After. */
  backlog?: Omit<BacklogOptions, 'maxBacklog'>;
  /** Longest `?waitMs=` a client may ask for. Default 30,000 ms. */
  maxWaitMs?: number;
  /**
   * Deadline of the Redis work of one request (backlog count and enqueue, or a job lookup); past it the
   * API answers 503 with Retry-After (the client retries with the same Idempotency-Key). Default 5,000 ms.
   */
  redisTimeoutMs?: number;
  /** Checks behind /readyz. */
  readiness?: ReadinessCheck;
  readinessTimeoutMs?: number;
  /** Records request durations (fleet_http_request_duration_ms) and logs slow responses. */
  metrics?: FleetMetrics;
  /** Served at /metrics. */
  metricsEndpoint?: MetricsEndpoint;
  logger?: Logger;
  /** Registers `POST /v1/search` when given: where searches run is the host's choice (in-process or the search queue). */
  search?: SearchHandler;
  /** Serve the OpenAPI document at /docs/json and a page at /docs. Default true. */
  docs?: boolean;
  /** Key prefix of the replicas' caches (`CACHE_KEY_PREFIX`), for `POST /v1/deals/invalidate`. Default `fleet:cache`. */
  cachePrefix?: string;
  /** Trust X-Forwarded-* from a proxy (fastify's `trustProxy`). Default false. */
  trustProxy?: boolean | string;
}

const DEFAULT_BODY_LIMIT_BYTES = 1_048_576;

/** The options, checked: a wrong one is a TypeError/RangeError at start, never a surprise per request. */
function checkOptions(opts: ApiOptions): { bodyLimit: number; maxWaitMs: number; redisTimeoutMs: number } {
  if (!opts?.producer) throw new TypeError('buildApi: option `producer` is required');
  if (!Array.isArray(opts.queues)) throw new TypeError('buildApi: option `queues` must be an array of BullMQ queues');
  if (!Array.isArray(opts.tokens)) throw new TypeError('buildApi: option `tokens` must be an array of strings');
  if (opts.tokens.length === 0) {
    throw new TypeError('buildApi: option `tokens` is empty; give at least one API token (`fleet up` generates one)');
  }
  const bodyLimit = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024)
    throw new RangeError(`buildApi: option \`bodyLimitBytes\` must be an integer >= 1024, got ${String(opts.bodyLimitBytes)}`);
  const maxWaitMs = opts.maxWaitMs ?? 30_000;
  if (!Number.isInteger(maxWaitMs) || maxWaitMs < 0 || maxWaitMs > 600_000)
    throw new RangeError(`buildApi: option \`maxWaitMs\` must be an integer from 0 to 600000, got ${String(opts.maxWaitMs)}`);
  const redisTimeoutMs = opts.redisTimeoutMs ?? 5_000;
  if (!Number.isInteger(redisTimeoutMs) || redisTimeoutMs < 1)
    throw new RangeError(`buildApi: option \`redisTimeoutMs\` must be an integer >= 1, got ${String(opts.redisTimeoutMs)}`);
  return { bodyLimit, maxWaitMs, redisTimeoutMs };
}

/**
 * Builds the fleet's HTTP API (not listening; `startApi` listens): the error table, health and metrics,
 * the OpenAPI document, Bull Board, and the authenticated, traced /v1 scope with its route plugins (jobs,
 * workflows, and search when a handler is given).
 *
 * @example
 *   const app = await buildApi({ producer, queues: [producer.queue('embeddings'), producer.queue('deals')], tokens: [token] });
 *   const res = await app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${token}` }, payload: { text: 'hi' } });
 */
export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  const { bodyLimit, maxWaitMs, redisTimeoutMs } = checkOptions(opts);
  const { producer, logger, metrics } = opts;
  const board = opts.board === false ? undefined : (opts.board ?? {});
  const auth = createAuthenticator({ tokens: opts.tokens, viewerTokens: board?.viewerTokens, admin: board?.admin, viewer: board?.viewer });
  // A sharded queue is one name over several BullMQ queues: lookups and counts go through its shards.
  const queues = new QueueSet(opts.queues);
  const admission = createAdmission({ producer, queues, backlog: new BacklogGuard({ ...opts.backlog, maxBacklog: opts.maxBacklog }), redisTimeoutMs, metrics });

  const { fastify, LogController } = loadFastify();
  const app = fastify({
    bodyLimit,
    trustProxy: opts.trustProxy ?? false,
    // Per-request lines are off: slow responses and 5xx are logged by the fleet with their thresholds.
    logController: new LogController({ disableRequestLogging: true }),
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  // zod validates every request (one set of messages, shared with the producer); the JSON Schemas on
  // routes only document them, and responses are plain JSON.stringify.
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  // Only JSON bodies: text/plain would reach handlers as a string.
  app.removeContentTypeParser('text/plain');
  installErrorReplies(app, { bodyLimit, logger });

  // Request duration for every route, by route pattern (never the raw URL: ids would explode the series).
  if (metrics) {
    app.addHook('onResponse', async (req, reply) => {
      metrics.httpRequest(req.method, req.routeOptions?.url ?? 'unmatched', reply.statusCode, reply.elapsedTime);
    });
  }

  if (opts.docs !== false) await registerDocs(app);
  registerHealthRoutes(app, { readiness: opts.readiness, metrics: opts.metricsEndpoint, readinessTimeoutMs: opts.readinessTimeoutMs });
  if (board) await mountBoard(app, { ...board, queues: opts.queues, auth, logger });

  await app.register(async (v1) => {
    const scope = secureV1(v1, { auth, logger });
    await v1.register(jobRoutes, { scope, producer, queues, admission, maxWaitMs, redisTimeoutMs });
    await v1.register(lookupRoutes, { scope, queues, redisTimeoutMs });
    await v1.register(workflowRoutes, { scope, producer, admission });
    await v1.register(dealRoutes, { scope, producer, cachePrefix: opts.cachePrefix, redisTimeoutMs });
    if (opts.search) await v1.register(searchRoutes, { scope, search: opts.search });
  });
  return app;
}

export interface StartApiOptions extends ApiOptions {
  /** Port to listen on (0 = any free port). Default 3000. */
  port?: number;
  /** Interface to bind. Default `0.0.0.0`. */
  host?: string;
}

export interface RunningApi extends RunningServer {
  readonly app: FastifyInstance;
}

/**
 * Builds the API and listens. `close()` stops accepting requests and waits for in-flight ones; it
 * does not close the producer or queues (the caller created them and releases them after).
 *
 * @example
 *   const api = await startApi({ port: 3000, producer, queues, tokens, metricsEndpoint: telemetry.metricsEndpoint });
 *   releasers.add('http api', () => api.close());
 */
export async function startApi(opts: StartApiOptions): Promise<RunningApi> {
  const port = opts.port ?? 3000;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new RangeError(`startApi: option \`port\` must be an integer from 0 to 65535, got ${String(opts.port)}`);
  const app = await buildApi(opts);
  try {
    const running = await listen(app, port, opts.host ?? '0.0.0.0', opts.logger, 'HTTP API');
    return { ...running, app };
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
}
