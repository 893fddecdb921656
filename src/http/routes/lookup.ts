import type { FastifyInstance } from 'fastify';
import { BatchLookupQuery, BatchParams, createJobLookup, JobLookupQuery } from '../job-lookup';
import { errorResponses } from '../openapi';
import type { QueueSet } from '../queue-set';
import { openApiSchema, validateRequest } from '../schemas';
import type { V1Scope } from '../v1-scope';

export interface LookupRoutesOptions {
  scope: V1Scope;
  /** Queues jobs are looked up in, by name; others get 404. */
  queues: QueueSet;
  /** Deadline of the Redis work of one lookup; past it a 503 with Retry-After. */
  redisTimeoutMs: number;
}

const BATCH_REF = {
  type: 'object',
  properties: {
    batchId: { type: 'string' },
    size: { type: 'integer' },
    outcome: { type: 'string', enum: ['served', 'failed'], description: 'The batch served the job, or its call failed it (a retry may be served by another)' },
  },
};

const JOB_PAGE_BODY = {
  type: 'object',
  required: ['queue', 'by', 'jobs', 'nextCursor'],
  properties: {
    queue: { type: 'string' },
    by: { type: 'string', enum: ['id', 'idempotencyKey', 'batch', 'text', 'textHash', 'tenant'] },
    jobs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['queue', 'id', 'state', 'batch', 'href'],
        properties: {
          queue: { type: 'string' },
          id: { type: 'string' },
          name: { type: 'string' },
          state: { type: 'string', description: 'BullMQ state: waiting, prioritized, delayed, active, waiting-children, completed, failed' },
          batch: { type: 'string', nullable: true, description: 'The warehouse batch that served it (GET /v1/batches/{id}); null when none did' },
          batches: { type: 'array', items: BATCH_REF, description: 'Every batch it names: those that failed it, then those that served it' },
          createdAt: { type: 'string', format: 'date-time', nullable: true },
          finishedAt: { type: 'string', format: 'date-time', nullable: true },
          failedReason: { type: 'string' },
          href: { type: 'string', description: "GET it for the job's result and logs" },
        },
      },
    },
    nextCursor: { type: 'string', nullable: true, description: 'Pass as `cursor` for the next page; null on the last page' },
  },
};

const BATCH_BODY = {
  type: 'object',
  required: ['batchId', 'queues', 'jobs', 'total', 'nextCursor'],
  properties: {
    batchId: { type: 'string' },
    queues: { type: 'array', items: { type: 'string' }, description: 'The queues whose jobs it served' },
    name: { type: 'string', nullable: true, description: 'The coalescer that made it (emb, deals, analyze-calls…)' },
    size: { type: 'integer', nullable: true, description: 'Distinct texts or ids in the statement' },
    jobsServed: { type: 'integer', nullable: true, description: 'Jobs the statement answered' },
    outcome: { type: 'string', enum: ['ok', 'failed'], nullable: true, description: 'failed: the call failed (its jobs failed, or it was split)' },
    error: { type: 'string', nullable: true },
    parent: { type: 'string', nullable: true, description: 'The failed batch this one is a half of (bisection)' },
    startedAt: { type: 'string', format: 'date-time', nullable: true },
    finishedAt: { type: 'string', format: 'date-time', nullable: true },
    durationMs: { type: 'integer', nullable: true },
    queryTag: {
      type: 'object',
      nullable: true,
      description: "The statement's QUERY_TAG fields that identify it: `TRY_PARSE_JSON(QUERY_TAG):batch` in QUERY_HISTORY",
    },
    queryId: {
      type: 'string',
      nullable: true,
      description: "Snowflake's query id of the statement whose rows answered the batch (after retries, the last attempt), or of the one that failed it",
    },
    jobs: {
      type: 'array',
      items: { type: 'object', properties: { queue: { type: 'string' }, id: { type: 'string' }, href: { type: 'string' } } },
      description: 'The ids of the jobs it served or failed, and those of the halves it was split into (one page)',
    },
    total: { type: 'integer', description: 'Jobs indexed under the batch' },
    nextCursor: { type: 'string', nullable: true },
  },
};

/**
 * `GET /v1/jobs` (find jobs by id, idempotency key, batch or text, paginated) and `GET /v1/batches/:id`
 * (a batch's record and its jobs), over the lookup indexes the workers write with their job logs.
 */
export async function lookupRoutes(v1: FastifyInstance, opts: LookupRoutesOptions): Promise<void> {
  const { scope } = opts;
  const lookup = createJobLookup({ queues: opts.queues, redisTimeoutMs: opts.redisTimeoutMs });

  v1.get(
    '/v1/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Find jobs by id, idempotency key, batch, text or tenant (exactly one), one page at a time',
        security: [{ bearerAuth: [] }],
        querystring: openApiSchema(JobLookupQuery),
        response: { 200: { description: 'One page of matching jobs', ...JOB_PAGE_BODY }, ...errorResponses(400, 401, 404, 503) },
      },
    },
    (req) => scope.inSpan(req, async () => lookup.findJobs(validateRequest(JobLookupQuery, req.query ?? {}, 'query'))),
  );

  v1.get(
    '/v1/batches/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'A warehouse batch: its jobs, QUERY_TAG, query id, timing and outcome',
        security: [{ bearerAuth: [] }],
        params: openApiSchema(BatchParams),
        querystring: openApiSchema(BatchLookupQuery),
        response: { 200: { description: 'The batch', ...BATCH_BODY }, ...errorResponses(400, 401, 404, 503) },
      },
    },
    (req) =>
      scope.inSpan(req, async () => {
        const { id } = validateRequest(BatchParams, req.params, 'params');
        return lookup.getBatch(id, validateRequest(BatchLookupQuery, req.query ?? {}, 'query'));
      }),
  );
}
