import type { FastifyInstance, FastifyReply } from 'fastify';
import { batchesInLogs } from '../../contracts/batch-log';
import type { BatchRef } from '../../contracts/embedding';
import { isQueueName, QUEUES, type QueueName } from '../../contracts/queues';
import type { JobHandle, Producer } from '../../producers';
import { PREVALIDATED } from '../../producers/producer';
import type { Admission } from '../admission';
import { HttpError } from '../http-error';
import { jobWithState } from '../job-state';
import { ENQUEUED_BODY, errorResponses, JOB_BODY } from '../openapi';
import type { QueueSet } from '../queue-set';
import { DealInsightsRequest, EmbeddingsRequest, idempotencyHeaderSchema, JobParams, openApiSchema, validateRequest, waitQuery } from '../schemas';
import { appliedTenant, TENANT_HEADER_SCHEMA, validateEnqueue } from '../tenant';
import { enqueueKeyOf, type V1Scope } from '../v1-scope';

export interface JobRoutesOptions {
  scope: V1Scope;
  producer: Producer;
  /** Queues jobs are looked up in, by name; others get 404. */
  queues: QueueSet;
  admission: Admission;
  /** Longest `?waitMs=`. */
  maxWaitMs: number;
  /** Deadline of each Redis lookup while waiting for results. */
  redisTimeoutMs: number;
}

const iso = (ms: number | undefined | null) => (typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString() : null);

/** Batch references from a job's result (`batch` or `batches`), else from its log rows. */
function batchesOf(result: unknown, logs: readonly string[]): BatchRef[] {
  const r = result as { batch?: BatchRef; batches?: BatchRef[] } | null | undefined;
  if (r && typeof r === 'object') {
    if (Array.isArray(r.batches)) return r.batches;
    if (r.batch && typeof r.batch === 'object') return [r.batch];
  }
  return batchesInLogs(logs);
}

/**
 * `POST /v1/embeddings`, `POST /v1/deals/insights` (enqueue over the producer, admitted against the
 * queue's backlog bound, optionally waiting for results) and `GET /v1/jobs/:queue/:id`.
 */
export async function jobRoutes(v1: FastifyInstance, opts: JobRoutesOptions): Promise<void> {
  const { scope, producer, queues, admission, redisTimeoutMs } = opts;
  const waitSchema = waitQuery(opts.maxWaitMs);
  const { enqueue } = admission;
  // `?waitMs=` is the only query field: without a query string there is nothing to parse.
  const waitMsOf = (query: unknown): number | undefined => {
    if (query == null) return undefined;
    for (const _ in query as object) return validateRequest(waitSchema, query, 'query').waitMs;
    return undefined;
  };

  const respond = async (
    reply: FastifyReply,
    queue: QueueName,
    idempotencyKey: string,
    tenant: string | undefined,
    handles: JobHandle<unknown>[],
    waitMs: number | undefined,
  ) => {
    const href = (id: string) => `/v1/jobs/${queue}/${encodeURIComponent(id)}`;
    if (handles.length === 1) reply.header('location', href(handles[0].id));
    // Buffered: Redis is away and the jobs wait in this process's producer, to be sent when it is back.
    const buffered = handles.some((h) => h.buffered);
    if (!waitMs) {
      reply.code(202);
      return {
        queue,
        idempotencyKey,
        tenant: appliedTenant(tenant),
        buffered,
        jobs: handles.map((h) => ({ id: h.id, state: h.buffered ? 'buffered' : 'queued', href: href(h.id) })),
      };
    }
    const outcomes = await producer.waitForResults(handles, { timeoutMs: waitMs, lookupTimeoutMs: redisTimeoutMs });
    const jobs = handles.map((h, i) => ({ id: h.id, href: href(h.id), ...outcomes[i] }));
    reply.code(jobs.some((j) => j.state === 'pending') ? 202 : 200);
    return { queue, idempotencyKey, tenant: appliedTenant(tenant), buffered, jobs };
  };

  const enqueueSchema = (summary: string, body: Record<string, unknown>) => ({
    tags: ['jobs'],
    summary,
    security: [{ bearerAuth: [] }],
    headers: {
      type: 'object',
      properties: {
        ...idempotencyHeaderSchema(
          'A retried request with the same key returns the same job(s) instead of enqueuing again (while the job is retained). ' +
            'Without one, the API assigns a UUID; either way every answer names it in its Idempotency-Key header (and a 2xx in `idempotencyKey`).',
        ),
        ...TENANT_HEADER_SCHEMA,
      },
    },
    querystring: openApiSchema(waitSchema),
    body,
    response: {
      200: { description: 'Every job finished within waitMs', ...ENQUEUED_BODY },
      202: {
        description:
          'Enqueued in Redis (or still running after waitMs); with `buffered: true`, Redis is unreachable and the jobs wait in the API process, sent in order when it is back',
        ...ENQUEUED_BODY,
      },
      ...errorResponses(400, 401, 413, 415, 429, 503, 504),
    },
  });

  v1.post('/v1/embeddings', { schema: enqueueSchema('Embed one text or a list (one job per text)', openApiSchema(EmbeddingsRequest)) }, (req, reply) =>
    scope.inSpan(req, async () => {
      // Everything is validated before anything is enqueued.
      const { body, tenant } = validateEnqueue(EmbeddingsRequest, req);
      const waitMs = waitMsOf(req.query);
      const idempotencyKey = enqueueKeyOf(req, reply);
      const texts = body.texts ?? [body.text!];
      const handles = await enqueue(QUEUES.embeddings, texts.length, idempotencyKey, async (trace, signal) => {
        // The body was checked against the same contracts the producer would check each job against.
        const options = {
          model: body.model,
          priority: body.priority,
          index: body.index,
          tenant,
          idempotencyKey,
          trace,
          signal,
          [PREVALIDATED]: true as const,
        };
        return body.texts !== undefined ? producer.embed(body.texts, options) : [await producer.embed(body.text!, options)];
      });
      return respond(reply, QUEUES.embeddings, idempotencyKey, tenant, handles, waitMs);
    }),
  );

  v1.post('/v1/deals/insights', { schema: enqueueSchema('Insights for up to 1,000 deal ids (one job)', openApiSchema(DealInsightsRequest)) }, (req, reply) =>
    scope.inSpan(req, async () => {
      const { body, tenant } = validateEnqueue(DealInsightsRequest, req);
      const waitMs = waitMsOf(req.query);
      const idempotencyKey = enqueueKeyOf(req, reply);
      const handle = await enqueue(QUEUES.deals, 1, idempotencyKey, (trace, signal) =>
        producer.dealInsights(body.dealIds, { priority: body.priority, tenant, idempotencyKey, trace, signal }),
      );
      return respond(reply, QUEUES.deals, idempotencyKey, tenant, [handle], waitMs);
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
        response: { 200: { description: 'The job', ...JOB_BODY }, ...errorResponses(400, 401, 404, 503) },
      },
    },
    (req) =>
      scope.inSpan(req, async () => {
        const params = validateRequest(JobParams, req.params, 'params');
        if (!queues.has(params.queue)) {
          throw new HttpError(404, 'unknown_queue', `unknown queue ${JSON.stringify(params.queue)}; known queues: ${queues.names().join(', ') || '(none)'}`);
        }
        // The job's id names its shard; an id naming a shard the queue does not have is no job of it.
        const queue = queues.ofJob(params.queue, params.id) ?? queues.shards(params.queue)[0];
        // Redis does not know a buffered job yet (and may be away): this process does.
        if (isQueueName(params.queue) && producer.isBuffered(params.queue, params.id)) {
          return { queue: queue.name, id: params.id, state: 'buffered', batches: [], result: null, logs: [] };
        }
        const read = await admission.withinDeadline(queue.getJob(params.id), 'job lookup');
        if (!read) {
          throw new HttpError(
            404,
            'job_not_found',
            `no job ${JSON.stringify(params.id)} in queue ${queue.name} (it never existed, or it was removed after its retention period)`,
          );
        }
        const [{ job, state }, logs] = await admission.withinDeadline(
          Promise.all([jobWithState(queue, read), queue.getJobLogs(params.id, 0, 49, true)]),
          'job lookup',
        );
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
}
