import { withDeadline, withDeadlineOr } from '../resilience';
import { context as otelContext, SpanStatusCode, type Context, type Span } from '@opentelemetry/api';
import type { Queue } from 'bullmq';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { BatchRef } from '../contracts/embedding';
import { JobFailedError, ResultTimeoutError, ValidationError } from '../contracts/errors';
import { QUEUES, type QueueName } from '../contracts/queues';
import type { JobHandle, Producer } from '../producers';
import type { FleetMetrics } from '../telemetry/metrics';
import type { MetricsEndpoint } from '../telemetry/prometheus';
import { injectTraceContext, startServerSpan, withEnqueueSpan } from '../telemetry/tracing';
import { createAuthenticator, type Credentials, type Principal } from './auth';
import { BacklogGuard, type BacklogOptions } from './backlog';
import { mountBoard, type BoardOptions } from './board';
import { registerDocs } from './docs';
import { listen, registerHealthRoutes, type ReadinessCheck, type RunningServer } from './health';
import { HttpError, type HttpIssue } from './http-error';
import { loadFastify } from './fastify';
import {
  DealInsightsRequest,
  EmbeddingsRequest,
  IDEMPOTENCY_HEADER,
  IdempotencyKey,
  JobParams,
  openApiSchema,
  validateRequest,
  waitQuery,
} from './schemas';

/** What optional handlers (search, workflows) receive besides the body. */
export interface HandlerContext {
  /** The `Idempotency-Key` header, validated (1-512 characters). */
  idempotencyKey?: string;
  /** W3C trace headers of the request's span: store them in the jobs you enqueue (`trace` field). */
  trace: Record<string, string>;
  principal?: Principal;
  logger?: Logger;
}

/**
 * `POST /v1/search`: validates its own body (throw the contracts' ValidationError for a 400 naming the
 * field, or an HttpError) and returns the JSON answer (200).
 */
export type SearchHandler = (body: unknown, ctx: HandlerContext) => Promise<unknown>;

/** `POST /v1/workflows` (202 with the returned object) and `GET /v1/workflows/:id` (200, or 404 for null/undefined). */
export interface WorkflowHandlers {
  start(body: unknown, ctx: HandlerContext): Promise<{ id: string } & Record<string, unknown>>;
  get(id: string, ctx: HandlerContext): Promise<unknown>;
}

/** Bull Board access; the board is mounted when any credential exists (API tokens count as admin). */
export interface ApiBoardOptions extends BoardOptions {
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
  /** BullMQ queues by which jobs are looked up, shown in Bull Board and checked for backlog. Required (may be empty). */
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
  /** Registers `POST /v1/search` when given. */
  search?: SearchHandler;
  /** Registers `POST /v1/workflows` and `GET /v1/workflows/:id` when given. */
  workflows?: WorkflowHandlers;
  /** JSON Schemas of the optional routes' bodies, for the OpenAPI document. */
  optionalSchemas?: { search?: Record<string, unknown>; workflow?: Record<string, unknown> };
  /** Serve the OpenAPI document at /docs/json and a page at /docs. Default true. */
  docs?: boolean;
  /** Trust X-Forwarded-* from a proxy (fastify's `trustProxy`). Default false. */
  trustProxy?: boolean | string;
}

export const DEFAULT_BODY_LIMIT_BYTES = 1_048_576;

const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        issues: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
  },
};
const JOB_ENTRY_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: ['queued', 'pending', 'completed', 'failed'] },
    href: { type: 'string' },
    result: { description: 'The job result (embedding: { model, dims, vector (base64 float32 LE), batch, cached }; deals: { requested, found, deals, batches })' },
    failedReason: { type: 'string' },
  },
};
const ENQUEUED_SCHEMA = { type: 'object', properties: { queue: { type: 'string' }, jobs: { type: 'array', items: JOB_ENTRY_SCHEMA } } };
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, { description: errorDescription(c), ...ERROR_SCHEMA }]));

function errorDescription(code: number): string {
  return (
    {
      400: 'Invalid request: `error.issues` names each bad field',
      401: 'Missing or wrong bearer token',
      404: 'Unknown queue or job',
      413: 'Body larger than the limit',
      415: 'Content-Type is not application/json',
      429: 'Queue backlog over its bound; see Retry-After',
      503: 'Redis did not accept the job in time',
    } as Record<number, string>
  )[code] ?? 'Error';
}

type JobOutcome = { state: 'completed'; result: unknown } | { state: 'failed'; failedReason: string };

interface RequestTrace {
  span: Span;
  context: Context;
}

/** Batch references from a job's result (`batch` or `batches`), else from its log lines. */
function batchesOf(result: unknown, logs: readonly string[]): BatchRef[] {
  const r = result as { batch?: BatchRef; batches?: BatchRef[] } | null | undefined;
  if (r && typeof r === 'object') {
    if (Array.isArray(r.batches)) return r.batches;
    if (r.batch && typeof r.batch === 'object') return [r.batch];
  }
  const out: BatchRef[] = [];
  for (const line of logs) {
    for (const m of line.matchAll(/([A-Za-z0-9_-]+-[A-Za-z0-9_-]+) \((\d+) (?:texts|ids|keys)\)/g)) out.push({ batchId: m[1], size: Number(m[2]) });
  }
  return out;
}

const iso = (ms: number | undefined | null) => (typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString() : null);

/**
 * Builds the fleet's HTTP API (not listening; `startApi` listens): enqueue routes over the producer,
 * job lookup, Bull Board, health, metrics and the OpenAPI document.
 *
 * @example
 *   const app = await buildApi({ producer, queues: [producer.queue('embeddings'), producer.queue('deals')], tokens: [token] });
 *   const res = await app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${token}` }, payload: { text: 'hi' } });
 */
export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  if (!opts?.producer) throw new TypeError('buildApi: option `producer` is required');
  if (!Array.isArray(opts.queues)) throw new TypeError('buildApi: option `queues` must be an array of BullMQ queues');
  if (!Array.isArray(opts.tokens)) throw new TypeError('buildApi: option `tokens` must be an array of strings');
  if (opts.tokens.length === 0) {
    throw new TypeError('buildApi: option `tokens` is empty; give at least one API token (`fleet up` generates one)');
  }
  const bodyLimit = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024) throw new RangeError(`buildApi: option \`bodyLimitBytes\` must be an integer >= 1024, got ${String(opts.bodyLimitBytes)}`);
  const maxWaitMs = opts.maxWaitMs ?? 30_000;
  if (!Number.isInteger(maxWaitMs) || maxWaitMs < 0 || maxWaitMs > 600_000) throw new RangeError(`buildApi: option \`maxWaitMs\` must be an integer from 0 to 600000, got ${String(opts.maxWaitMs)}`);
  const redisTimeoutMs = opts.redisTimeoutMs ?? 5_000;
  if (!Number.isInteger(redisTimeoutMs) || redisTimeoutMs < 1) throw new RangeError(`buildApi: option \`redisTimeoutMs\` must be an integer >= 1, got ${String(opts.redisTimeoutMs)}`);
  const redisDeadline = <T>(p: Promise<T>, what: string) =>
    withDeadline(p, redisTimeoutMs, () => new HttpError(503, 'redis_timeout', `Redis did not answer within ${redisTimeoutMs} ms (${what}); retry later${what === 'enqueue' ? ' with the same Idempotency-Key' : ''}`, undefined, { 'retry-after': '1' }));

  const board = opts.board === false ? undefined : (opts.board ?? {});
  const auth = createAuthenticator({ tokens: opts.tokens, viewerTokens: board?.viewerTokens, admin: board?.admin, viewer: board?.viewer });
  const backlog = new BacklogGuard({ ...opts.backlog, maxBacklog: opts.maxBacklog });
  const { producer, logger, metrics } = opts;
  const queues = new Map<string, Queue>();
  for (const q of opts.queues) queues.set(q.name, q);
  const queueFor = (name: QueueName): Queue => queues.get(name) ?? producer.queue(name);
  const waitSchema = waitQuery(maxWaitMs);

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

  app.setErrorHandler((err: FastifyError | Error, req, reply) => sendError(err, req, reply));
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  function sendError(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply) {
    if (err instanceof HttpError) {
      for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
      return reply.code(err.status).send({ error: { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) } });
    }
    if (err instanceof ValidationError || (err.name === 'ValidationError' && Array.isArray((err as ValidationError).issues))) {
      const issues = (err as ValidationError).issues as HttpIssue[];
      return reply.code(400).send({ error: { code: 'invalid_request', message: err.message, issues } });
    }
    const fe = err as FastifyError;
    switch (fe.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return reply.code(400).send({ error: { code: 'malformed_json', message: 'request body is not valid JSON' } });
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reply.code(400).send({ error: { code: 'malformed_json', message: 'request body is empty but Content-Type is application/json' } });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.code(413).send({ error: { code: 'payload_too_large', message: `request body is larger than the limit of ${bodyLimit} bytes` } });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.code(415).send({ error: { code: 'unsupported_media_type', message: 'send the body as JSON with Content-Type: application/json' } });
      default:
        break;
    }
    const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
    if (status >= 400 && status < 500) return reply.code(status).send({ error: { code: 'bad_request', message: fe.message } });
    logger?.error({ err, reqId: req.id, method: req.method, route: req.routeOptions?.url }, 'request failed');
    return reply.code(500).send({ error: { code: 'internal_error', message: `internal error (request id ${req.id})` } });
  }

  // Request duration for every route, by route pattern (never the raw URL: ids would explode the series).
  if (metrics) {
    app.addHook('onResponse', async (req, reply) => {
      metrics.httpRequest(req.method, req.routeOptions?.url ?? 'unmatched', reply.statusCode, reply.elapsedTime);
    });
  }

  if (opts.docs !== false) await registerDocs(app);
  registerHealthRoutes(app, { readiness: opts.readiness, metrics: opts.metricsEndpoint, readinessTimeoutMs: opts.readinessTimeoutMs });

  const hasBoardCredentials = opts.tokens.length > 0 || Boolean(board?.admin || board?.viewer || board?.viewerTokens?.length);
  if (board && hasBoardCredentials) {
    await mountBoard(app, { ...board, queues: opts.queues, auth, logger });
  } else if (board) {
    logger?.warn('Bull Board not mounted: no API token, admin or viewer credentials configured');
  }

  // ---- /v1: authenticated, traced --------------------------------------------------------------
  const traces = new WeakMap<FastifyRequest, RequestTrace>();
  const principals = new WeakMap<FastifyRequest, Principal>();

  await app.register(async (v1) => {
    v1.addHook('onRequest', async (req, reply) => {
      const started = startServerSpan(`${req.method} ${req.routeOptions?.url ?? req.url.split('?')[0]}`, req.headers, {
        'http.request.method': req.method,
        'http.route': req.routeOptions?.url ?? '',
      });
      traces.set(req, started);
      const who = auth.authenticate(req.headers.authorization);
      if (!who || who.via !== 'api-token') {
        reply.header('www-authenticate', 'Bearer realm="warehouse-fleet"');
        return reply.code(401).send({
          error: { code: 'unauthorized', message: req.headers.authorization ? 'the bearer token is not valid for this API' : 'missing Authorization: Bearer <token> header' },
        });
      }
      principals.set(req, who);
      return undefined;
    });
    v1.addHook('onResponse', async (req, reply) => {
      const t = traces.get(req);
      if (!t) return;
      t.span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) t.span.setStatus({ code: SpanStatusCode.ERROR });
      t.span.end();
    });

    /** Runs a handler inside the request's span, so enqueues become its children. */
    const inSpan = <T>(req: FastifyRequest, fn: () => Promise<T>): Promise<T> => {
      const t = traces.get(req);
      return t ? otelContext.with(t.context, fn) : fn();
    };

    const handlerContext = (req: FastifyRequest): HandlerContext => ({
      idempotencyKey: idempotencyKeyOf(req),
      trace: injectTraceContext(),
      principal: principals.get(req),
      logger,
    });

    /** Admits `count` jobs against the queue's backlog bound, then enqueues; both within the Redis deadline. */
    const enqueue = async <T>(queue: QueueName, count: number, fn: (trace: Record<string, string>) => Promise<T>): Promise<T> => {
      let admitted = false;
      try {
        return await redisDeadline(
          (async () => {
            await backlog.admit(queueFor(queue), count);
            admitted = true;
            return withEnqueueSpan(queue, fn, { 'messaging.batch.message_count': count });
          })(),
          'enqueue',
        );
      } catch (err) {
        if (admitted) backlog.release(queue, count);
        if (err instanceof HttpError && err.status === 429) metrics?.backlogRejected(queue);
        throw err;
      }
    };

    const respond = async (reply: FastifyReply, queue: QueueName, handles: JobHandle<unknown>[], waitMs: number | undefined) => {
      const href = (id: string) => `/v1/jobs/${queue}/${encodeURIComponent(id)}`;
      if (handles.length === 1) reply.header('location', href(handles[0].id));
      if (!waitMs) {
        reply.code(202);
        return { queue, jobs: handles.map((h) => ({ id: h.id, state: 'queued', href: href(h.id) })) };
      }
      const settled = await waitForJobs(queueFor(queue), handles, waitMs);
      const jobs = handles.map((h) => ({ id: h.id, href: href(h.id), ...(settled.get(h.id) ?? { state: 'pending' }) }));
      reply.code(jobs.some((j) => j.state === 'pending') ? 202 : 200);
      return { queue, jobs };
    };

    /**
     * Waits up to `waitMs` for the jobs through the producer's result() (QueueEvents). A QueueEvents
     * created for this wait can miss a job that finishes before its first read of the event stream, so
     * the unresolved jobs are also looked up once early in the wait and once at its end (two
     * pipelined reads per job at most, never a poll loop).
     */
    const waitForJobs = async (q: Queue, handles: JobHandle<unknown>[], waitMs: number): Promise<Map<string, JobOutcome>> => {
      const settled = new Map<string, JobOutcome>();
      let allDone!: () => void;
      const done = new Promise<void>((resolve) => {
        allDone = resolve;
      });
      const settle = (id: string, outcome: JobOutcome) => {
        if (settled.has(id)) return;
        settled.set(id, outcome);
        if (settled.size === handles.length) allDone();
      };
      for (const h of handles) {
        h.result({ timeoutMs: waitMs }).then(
          (result) => settle(h.id, { state: 'completed', result }),
          (err) => {
            if (err instanceof JobFailedError) settle(h.id, { state: 'failed', failedReason: err.reason });
            else if (!(err instanceof ResultTimeoutError)) logger?.debug({ queue: q.name, jobId: h.id, err: (err as Error)?.message }, 'waiting for a job failed; reported as pending');
          },
        );
      }
      const recheck = async () => {
        const open = handles.filter((h) => !settled.has(h.id));
        if (open.length === 0) return;
        const found = await redisDeadline(Promise.all(open.map((h) => q.getJob(h.id))), 'job lookup').catch(() => []);
        const states = await redisDeadline(Promise.all(found.map((j) => j?.getState())), 'job lookup').catch(() => []);
        found.forEach((job, i) => {
          if (!job) return;
          if (states[i] === 'completed') settle(job.id!, { state: 'completed', result: job.returnvalue });
          else if (states[i] === 'failed') settle(job.id!, { state: 'failed', failedReason: job.failedReason });
        });
      };
      let early: Promise<void> | undefined;
      const earlyTimer = setTimeout(() => {
        early = recheck();
      }, Math.min(500, Math.floor(waitMs / 2)));
      await withDeadlineOr(done, waitMs, undefined);
      clearTimeout(earlyTimer);
      await early;
      if (settled.size < handles.length) await recheck();
      return settled;
    };

    const enqueueSchema = (summary: string, body: Record<string, unknown>) => ({
      tags: ['jobs'],
      summary,
      security: [{ bearerAuth: [] }],
      headers: {
        type: 'object',
        properties: { [IDEMPOTENCY_HEADER]: { type: 'string', minLength: 1, maxLength: 512, description: 'A retried request with the same key returns the same job(s) instead of enqueuing again (while the job is retained).' } },
      },
      querystring: openApiSchema(waitSchema),
      body,
      response: { 200: { description: 'Every job finished within waitMs', ...ENQUEUED_SCHEMA }, 202: { description: 'Enqueued (or still running after waitMs)', ...ENQUEUED_SCHEMA }, ...errors(400, 401, 413, 415, 429, 503) },
    });

    v1.post('/v1/embeddings', { schema: enqueueSchema('Embed one text or a list (one job per text)', openApiSchema(EmbeddingsRequest)) }, (req, reply) =>
      inSpan(req, async () => {
        // Everything is validated before anything is enqueued.
        const body = validateRequest(EmbeddingsRequest, req.body, 'body');
        const { waitMs } = validateRequest(waitSchema, req.query ?? {}, 'query');
        const idempotencyKey = idempotencyKeyOf(req);
        const texts = body.texts ?? [body.text!];
        const handles = await enqueue(QUEUES.embeddings, texts.length, async (trace) => {
          const options = { model: body.model, priority: body.priority, index: body.index, idempotencyKey, trace };
          return body.texts !== undefined ? producer.embed(body.texts, options) : [await producer.embed(body.text!, options)];
        });
        return respond(reply, QUEUES.embeddings, handles, waitMs);
      }),
    );

    v1.post('/v1/deals/insights', { schema: enqueueSchema('Insights for up to 1,000 deal ids (one job)', openApiSchema(DealInsightsRequest)) }, (req, reply) =>
      inSpan(req, async () => {
        const body = validateRequest(DealInsightsRequest, req.body, 'body');
        const { waitMs } = validateRequest(waitSchema, req.query ?? {}, 'query');
        const idempotencyKey = idempotencyKeyOf(req);
        const handle = await enqueue(QUEUES.deals, 1, (trace) => producer.dealInsights(body.dealIds, { priority: body.priority, idempotencyKey, trace }));
        return respond(reply, QUEUES.deals, [handle], waitMs);
      }),
    );

    v1.get(
      '/v1/jobs/:queue/:id',
      {
        schema: {
          tags: ['jobs'],
          summary: 'State, result, failure reason, attempts and the batches that served a job',
          security: [{ bearerAuth: [] }],
          params: openApiSchema(JobParams),
          response: { 200: { description: 'The job', type: 'object', additionalProperties: true }, ...errors(400, 401, 404) },
        },
      },
      (req) =>
        inSpan(req, async () => {
          const params = validateRequest(JobParams, req.params, 'params');
          const queue = queues.get(params.queue);
          if (!queue) {
            throw new HttpError(404, 'unknown_queue', `unknown queue ${JSON.stringify(params.queue)}; known queues: ${[...queues.keys()].join(', ') || '(none)'}`);
          }
          const job = await redisDeadline(queue.getJob(params.id), 'job lookup');
          if (!job) {
            throw new HttpError(404, 'job_not_found', `no job ${JSON.stringify(params.id)} in queue ${queue.name} (it never existed, or it was removed after its retention period)`);
          }
          const [state, logs] = await redisDeadline(Promise.all([job.getState(), queue.getJobLogs(params.id, 0, 49, true)]), 'job lookup');
          const result = job.returnvalue ?? null;
          return {
            queue: queue.name,
            id: job.id,
            name: job.name,
            state,
            attemptsMade: job.attemptsMade,
            attempts: job.opts.attempts ?? 1,
            createdAt: iso(job.timestamp),
            processedAt: iso(job.processedOn),
            finishedAt: iso(job.finishedOn),
            ...(job.failedReason ? { failedReason: job.failedReason } : {}),
            batches: batchesOf(result, logs.logs),
            result,
            logs: logs.logs,
          };
        }),
    );

    if (opts.search) {
      const search = opts.search;
      v1.post(
        '/v1/search',
        {
          schema: {
            tags: ['search'],
            summary: 'Nearest neighbours of a text or vector in the search index',
            security: [{ bearerAuth: [] }],
            ...(opts.optionalSchemas?.search ? { body: opts.optionalSchemas.search } : {}),
            response: { 200: { description: 'Search results', type: 'object', additionalProperties: true }, ...errors(400, 401, 413, 415) },
          },
        },
        (req) => inSpan(req, () => search(req.body, handlerContext(req))),
      );
    }

    if (opts.workflows) {
      const workflows = opts.workflows;
      v1.post(
        '/v1/workflows',
        {
          schema: {
            tags: ['workflows'],
            summary: 'Start a workflow (collect in parallel, analyse, synthesise)',
            security: [{ bearerAuth: [] }],
            ...(opts.optionalSchemas?.workflow ? { body: opts.optionalSchemas.workflow } : {}),
            response: { 202: { description: 'Started', type: 'object', additionalProperties: true }, ...errors(400, 401, 413, 415, 429, 503) },
          },
        },
        (req, reply) =>
          inSpan(req, async () => {
            const started = await workflows.start(req.body, handlerContext(req));
            const href = `/v1/workflows/${encodeURIComponent(started.id)}`;
            reply.code(202).header('location', href);
            return { ...started, href };
          }),
      );
      v1.get(
        '/v1/workflows/:id',
        {
          schema: {
            tags: ['workflows'],
            summary: 'State and report of a workflow',
            security: [{ bearerAuth: [] }],
            params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
            response: { 200: { description: 'The workflow', type: 'object', additionalProperties: true }, ...errors(401, 404) },
          },
        },
        (req) =>
          inSpan(req, async () => {
            const { id } = req.params as { id: string };
            const found = await workflows.get(id, handlerContext(req));
            if (found === null || found === undefined) throw new HttpError(404, 'workflow_not_found', `no workflow ${JSON.stringify(id)}`);
            return found;
          }),
      );
    }
  });

  return app;
}

function idempotencyKeyOf(req: FastifyRequest): string | undefined {
  const raw = req.headers[IDEMPOTENCY_HEADER];
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? raw[0] : raw;
  const parsed = IdempotencyKey.safeParse(value);
  if (!parsed.success) throw new ValidationError([{ path: 'Idempotency-Key', message: parsed.error.issues[0]?.message ?? 'must be 1-512 characters' }]);
  return parsed.data;
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
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RangeError(`startApi: option \`port\` must be an integer from 0 to 65535, got ${String(opts.port)}`);
  const app = await buildApi(opts);
  try {
    const running = await listen(app, port, opts.host ?? '0.0.0.0', opts.logger, 'HTTP API');
    return { ...running, app };
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
}
