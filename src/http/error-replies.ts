import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import {
  BufferFullError,
  EnqueueDroppedError,
  EnqueueOutcomeUnknownError,
  RedisUnavailableError,
  ResultTimeoutError,
  TenantLimitError,
  ValidationError,
} from '../contracts/errors';
import { HttpError, type HttpIssue } from './http-error';

/** What the API answers for an error: `{ error: { code, message, issues?, ...details } }` with a status and headers. */
interface ErrorReply {
  status: number;
  code: string;
  message: string;
  issues?: readonly HttpIssue[];
  /** More fields of `error` (a `tenant_limit` names the tenant, queue, kind, limit, current, retryAfterMs). */
  details?: Readonly<Record<string, unknown>>;
  headers?: Readonly<Record<string, string>>;
}

/**
 * A tenant over its limit on a queue: 429, told apart from the queue's backlog bound (`backlog_full`) by its
 * code and fields. Retry-After is `retryAfterMs` in whole seconds, at least 1.
 */
function tenantLimitReply(err: TenantLimitError): ErrorReply {
  const retryAfterS = Math.max(1, Math.ceil(err.retryAfterMs / 1000));
  return {
    status: 429,
    code: 'tenant_limit',
    // The rate's message says when to retry; a full tenant can retry once its jobs finish.
    message: err.kind === 'queued' ? `${err.message}; retry once some of its jobs have finished` : err.message,
    details: { tenant: err.tenant, queue: err.queue, kind: err.kind, limit: err.limit, current: err.current, retryAfterMs: err.retryAfterMs },
    headers: { 'retry-after': String(retryAfterS) },
  };
}

/** By name and code too: a TenantLimitError from another copy of the contracts (a linked package) is the same error. */
const isTenantLimit = (err: Error): err is TenantLimitError =>
  err instanceof TenantLimitError || (err.name === 'TenantLimitError' && (err as Partial<TenantLimitError>).code === 'FLEET_TENANT_LIMIT');

/** fastify's own request errors (body parsing, limits) and the answers they get. */
const FASTIFY_ERRORS: Readonly<Record<string, (limits: { bodyLimit: number }) => ErrorReply>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: () => ({ status: 400, code: 'malformed_json', message: 'request body is not valid JSON' }),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => ({ status: 400, code: 'malformed_json', message: 'request body is empty but Content-Type is application/json' }),
  FST_ERR_CTP_BODY_TOO_LARGE: ({ bodyLimit }) => ({
    status: 413,
    code: 'payload_too_large',
    message: `request body is larger than the limit of ${bodyLimit} bytes`,
  }),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => ({ status: 415, code: 'unsupported_media_type', message: 'send the body as JSON with Content-Type: application/json' }),
};

/**
 * The error table: what reaches the error handler → the answer. Only what the caller did is a 4xx
 * (validation, malformed or oversized bodies, a tenant over its limits: 429 `tenant_limit`); an HttpError
 * says its own status (the backlog bound's 429 is `backlog_full`); a result that did not
 * arrive in time is a 503 to retry, and so is an enqueue the producer could not send nor buffer (Redis
 * unreachable, buffer full): that job will never appear. Anything else is `undefined` here: a 500 whose details are logged, not
 * sent (a RangeError from deep inside is the operator's problem, not bad input).
 */
function errorReply(err: Error, limits: { bodyLimit: number }): ErrorReply | undefined {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message, issues: err.issues, headers: err.headers };
  // By name too: a ValidationError from another copy of the contracts (a linked package) is the same error.
  if (err instanceof ValidationError || (err.name === 'ValidationError' && Array.isArray((err as ValidationError).issues))) {
    return { status: 400, code: 'invalid_request', message: err.message, issues: (err as ValidationError).issues as HttpIssue[] };
  }
  if (isTenantLimit(err)) return tenantLimitReply(err);
  if (err instanceof ResultTimeoutError) return { status: 503, code: 'result_timeout', message: err.message, headers: { 'retry-after': '5' } };
  // The producer sent nothing for these: a 503 promises the job will not appear later.
  if (err instanceof RedisUnavailableError || err instanceof BufferFullError || err instanceof EnqueueDroppedError) {
    const code = err instanceof BufferFullError ? 'buffer_full' : err instanceof EnqueueDroppedError ? 'enqueue_dropped' : 'redis_unavailable';
    return {
      status: 503,
      code,
      message: `${err.message}; no job will appear from this request. Retry later.`,
      headers: { 'retry-after': '5' },
    };
  }
  // Sent, then the connection failed (and the buffer had no room to resend it): the jobs may exist.
  if (err instanceof EnqueueOutcomeUnknownError) return { status: 504, code: 'enqueue_outcome_unknown', message: err.message, headers: { 'retry-after': '1' } };
  const fe = err as FastifyError;
  const known = fe.code ? FASTIFY_ERRORS[fe.code] : undefined;
  if (known) return known(limits);
  // Other fastify request errors carry their 4xx status (e.g. a bad Content-Length).
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500)
    return { status: fe.statusCode, code: 'bad_request', message: fe.message };
  return undefined;
}

/** Installs the error table and the JSON 404 on an app; unexpected errors are logged with the request id and answered 500. */
export function installErrorReplies(app: FastifyInstance, opts: { bodyLimit: number; logger?: Logger }): void {
  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    const known = errorReply(err, opts);
    if (known) {
      for (const [k, v] of Object.entries(known.headers ?? {})) reply.header(k, v);
      return reply
        .code(known.status)
        .send({ error: { code: known.code, message: known.message, ...(known.issues ? { issues: known.issues } : {}), ...known.details } });
    }
    opts.logger?.error({ err, reqId: req.id, method: req.method, route: req.routeOptions?.url }, 'request failed');
    return reply.code(500).send({ error: { code: 'internal_error', message: `internal error (request id ${req.id})` } });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });
}
