import type { FastifyInstance } from 'fastify';
import { nativeRequire } from '../runtime/native-require';

/** The OpenAPI document at `/docs/json` (and `/docs/yaml`), a readable page at `/docs`. Register before the routes. */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  // Loaded like fastify itself (see src/runtime/native-require.ts).
  const swagger = nativeRequire<typeof import('@fastify/swagger')['default']>('@fastify/swagger');
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'warehouse-fleet API',
        version: '1',
        description:
          "Enqueue warehouse-bound AI work (embeddings, deal insights) and look jobs up. Jobs are processed by the fleet's workers, " +
          "which coalesce many jobs into one batched warehouse call; a job's `batches` name the call that served it. " +
          'Errors are `{ error: { code, message, issues? } }`; `issues[].path` names each bad field (`texts[3]`).',
      },
      tags: [
        { name: 'jobs', description: 'Enqueue and look up jobs' },
        { name: 'search', description: 'Vector search' },
        { name: 'workflows', description: 'Multi-source workflows' },
        { name: 'health', description: 'Probes and metrics (no authentication)' },
      ],
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'One of the API tokens (FLEET_API_TOKENS)' } } },
    },
  });
  const swaggerUi = nativeRequire<typeof import('@fastify/swagger-ui')['default']>('@fastify/swagger-ui');
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: false } });
}

/** Status code → what it means on this API, for each route's documented error responses. */
const ERROR_MEANINGS: Readonly<Record<number, string>> = {
  400: 'Invalid request: `error.issues` names each bad field',
  401: 'Missing or wrong bearer token',
  404: 'Unknown queue, job or workflow',
  413: 'Body larger than the limit',
  415: 'Content-Type is not application/json',
  429:
    'Over a limit, nothing enqueued; see Retry-After. `error.code` says which: `backlog_full`, the queue has more jobs waiting than its bound (FLEET_API_MAX_BACKLOG); ' +
    '`tenant_limit`, the tenant is over its own limit on the queue (embeddings and deals): `error.kind` `queued` (most unfinished jobs) or `rate` (jobs per second), ' +
    'with `error.tenant`, `queue`, `limit`, `current` and `retryAfterMs`',
  500: 'Internal error (logged with the request id)',
  503: 'A dependency did not answer in time (Redis, the search replicas) or the index is not ready; see Retry-After. On an enqueue: nothing was enqueued and no job will appear from this request (Redis unreachable and the buffer full or off, or no answer before anything was sent)',
  504: 'An enqueue was sent but Redis did not answer in time: the job may or may not exist. Retry with the same Idempotency-Key (named in the response header); a retry never doubles the job',
};

/** The fleet's error body, `{ error: { code, message, … } }`, with the fields one kind of answer adds. */
const errorBody = (fields: Record<string, unknown>, code: Record<string, unknown> = { type: 'string' }) => ({
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'object', required: ['code', 'message'], properties: { code, message: { type: 'string' }, ...fields } },
  },
});

const ERROR_BODY = errorBody({
  issues: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
});

/** A 429: the error body, plus the fields of a `tenant_limit` answer. */
const LIMIT_BODY = errorBody(
  {
    tenant: { type: 'string', description: '`tenant_limit`: the tenant over its limit' },
    queue: { type: 'string', description: '`tenant_limit`: the queue it is over its limit on' },
    kind: {
      type: 'string',
      enum: ['queued', 'rate'],
      description:
        '`tenant_limit`: `queued`, the tenant has `limit` jobs accepted and not yet finished; `rate`, it enqueued faster than `limit` jobs per second',
    },
    limit: { type: 'number', description: '`tenant_limit`: most unfinished jobs (`queued`) or jobs per second (`rate`)' },
    current: { type: 'integer', description: '`tenant_limit`: its unfinished jobs on the queue (`queued`; 0 for `rate`)' },
    retryAfterMs: {
      type: 'integer',
      description:
        '`tenant_limit`: when a retry can succeed (for `queued`, at the earliest: it depends on how fast its jobs finish); Retry-After is this in whole seconds',
    },
  },
  { type: 'string', enum: ['backlog_full', 'tenant_limit'] },
);

/** The documented error responses of a route. */
export function errorResponses(...codes: number[]): Record<number, Record<string, unknown>> {
  return Object.fromEntries(codes.map((c) => [c, { description: ERROR_MEANINGS[c] ?? 'Error', ...(c === 429 ? LIMIT_BODY : ERROR_BODY) }]));
}

const TENANT_FIELD = {
  type: 'string',
  description: "The tenant applied: the request's (X-Fleet-Tenant header or body `tenant`), else the shared `default`",
};

const BATCH_REF = { type: 'object', properties: { batchId: { type: 'string' }, size: { type: 'integer' } } };

const JOB_ENTRY = {
  type: 'object',
  required: ['id', 'state', 'href'],
  properties: {
    id: { type: 'string' },
    state: {
      type: 'string',
      enum: ['queued', 'buffered', 'pending', 'completed', 'failed'],
      description: 'queued: in Redis; buffered: held by the API process while Redis is unreachable, sent in order when it is back',
    },
    href: { type: 'string', description: "GET it for the job's state, result, batches and logs" },
    result: {
      description: 'The job result (embedding: { model, dims, vector (base64 float32 LE), batch, cached }; deals: { requested, found, deals, batches })',
    },
    failedReason: { type: 'string' },
  },
};

/** `POST /v1/embeddings` and `/v1/deals/insights` answers (202, or 200 when every job finished within waitMs). */
export const ENQUEUED_BODY = {
  type: 'object',
  required: ['queue', 'idempotencyKey', 'tenant', 'buffered', 'jobs'],
  properties: {
    queue: { type: 'string' },
    tenant: TENANT_FIELD,
    idempotencyKey: { type: 'string', description: "The request's Idempotency-Key, or the one the API assigned: retry with it" },
    buffered: {
      type: 'boolean',
      description: 'True when Redis is unreachable and the jobs wait in the API process (sent when it is back, unless the process stops first)',
    },
    jobs: { type: 'array', items: JOB_ENTRY },
  },
};

/** `GET /v1/jobs/:queue/:id`. */
export const JOB_BODY = {
  type: 'object',
  required: ['queue', 'id', 'state'],
  properties: {
    queue: { type: 'string' },
    id: { type: 'string' },
    name: { type: 'string' },
    state: {
      type: 'string',
      description:
        'BullMQ state: waiting, prioritized, delayed, active, waiting-children, completed, failed; or buffered (held by this API process while Redis is unreachable)',
    },
    attemptsMade: { type: 'integer' },
    attempts: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time', nullable: true },
    processedAt: { type: 'string', format: 'date-time', nullable: true },
    finishedAt: { type: 'string', format: 'date-time', nullable: true },
    failedReason: { type: 'string' },
    batches: { type: 'array', items: BATCH_REF, description: 'The warehouse batches that served the job' },
    result: { description: 'The job result, null until it completes' },
    logs: { type: 'array', items: { type: 'string' } },
  },
};

/** `POST /v1/search`. */
export const SEARCH_BODY = {
  type: 'object',
  required: ['hits', 'snapshotVersion'],
  properties: {
    hits: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'namespace', 'score'],
        additionalProperties: true,
        properties: { id: { type: 'string' }, namespace: { type: 'string' }, score: { type: 'number', description: 'Cosine similarity (1 = same direction)' } },
      },
    },
    snapshotVersion: { type: 'integer', description: 'The index snapshot that answered' },
    embedding: { type: 'object', properties: { tier: { type: 'string', enum: ['l1', 'l2', 'warehouse'] } }, description: 'How the query text was embedded' },
  },
};

/** `POST /v1/workflows` (202). */
export const WORKFLOW_STARTED_BODY = {
  type: 'object',
  required: ['id', 'queue', 'tenant', 'state', 'href', 'idempotencyKey', 'buffered'],
  properties: {
    id: { type: 'string', description: 'The workflow id (its synthesize job); the same for a retried request with the same Idempotency-Key' },
    queue: { type: 'string' },
    tenant: TENANT_FIELD,
    state: {
      type: 'string',
      description: "BullMQ state of the workflow when answered; 'buffered' while it waits in the API process, 'unknown' if the lookup did not answer",
    },
    href: { type: 'string' },
    idempotencyKey: { type: 'string', description: "The request's Idempotency-Key, or the one the API assigned: retry with it" },
    buffered: { type: 'boolean', description: 'True when Redis is unreachable and the workflow waits in the API process' },
  },
};

/** `GET /v1/workflows/:id`. */
export const WORKFLOW_BODY = {
  type: 'object',
  required: ['id', 'state'],
  properties: {
    id: { type: 'string' },
    state: {
      type: 'string',
      description:
        'waiting-children while collectors and analysers run, then active, completed or failed; buffered while held by this API process (Redis unreachable)',
    },
    report: { description: 'The report (markdown and its structure) once completed, else null' },
    failedReason: { type: 'string' },
    dependencies: { type: 'object', description: 'Children by state (processed, unprocessed, failed, ignored)', additionalProperties: { type: 'integer' } },
  },
};
