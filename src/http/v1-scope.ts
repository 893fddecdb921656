import { randomUUID } from 'node:crypto';
import { type Context, context as otelContext, type Span, SpanStatusCode } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ValidationError } from '../contracts/errors';
import { injectTraceContext, startServerSpan } from '../telemetry/tracing';
import type { Authenticator, Principal } from './auth';
import { IDEMPOTENCY_HEADER, IdempotencyKey } from './schemas';

/** What a /v1 route handler knows of its request besides the body. */
export interface HandlerContext {
  /** The `Idempotency-Key` header, validated (1-512 characters). */
  idempotencyKey?: string;
  /** W3C trace headers of the request's span: store them in the jobs you enqueue (`trace` field). */
  trace: Record<string, string>;
  principal?: Principal;
  logger?: Logger;
}

/** The /v1 scope's per-request state, for its route plugins. */
export interface V1Scope {
  /** Runs a handler inside the request's server span, so the enqueues it makes become the span's children. */
  inSpan<T>(req: FastifyRequest, fn: () => Promise<T>): Promise<T>;
  context(req: FastifyRequest): HandlerContext;
}

interface RequestTrace {
  span: Span;
  context: Context;
}

/**
 * Makes `v1` (an encapsulated fastify scope) authenticated and traced: every request gets a server span
 * (joining the caller's trace from its headers) and must carry one of the API tokens; anything else is 401
 * before a handler runs. Board credentials do not open /v1.
 */
export function secureV1(v1: FastifyInstance, opts: { auth: Authenticator; logger?: Logger }): V1Scope {
  // The request's span and principal ride on the request itself (declared up front, so every request
  // object has the same shape): a WeakMap keyed by requests costs every scavenge an ephemeron table to
  // sweep and keeps its values reachable from old space until their request dies.
  v1.decorateRequest('fleetTrace', null);
  v1.decorateRequest('fleetPrincipal', null);
  const scoped = (req: FastifyRequest) => req as FastifyRequest & { fleetTrace: RequestTrace | null; fleetPrincipal: Principal | null };

  // Callback-style hooks: an async hook costs a promise and a microtask per request.
  v1.addHook('onRequest', (req, reply, done) => {
    // Undefined while tracing is off (no tracer provider, no caller's trace): no span, no context to enter.
    const started = startServerSpan(req.headers, () => {
      // fastify builds a new routeOptions object on each read: read it once.
      const route = req.routeOptions?.url;
      return { name: `${req.method} ${route ?? req.url.split('?')[0]}`, attributes: { 'http.request.method': req.method, 'http.route': route ?? '' } };
    });
    if (started) scoped(req).fleetTrace = started;
    const who = opts.auth.authenticate(req.headers.authorization);
    if (who?.via !== 'api-token') {
      reply.header('www-authenticate', 'Bearer realm="warehouse-fleet"');
      // Answered here: `done` is not called, so no handler runs.
      reply.code(401).send({
        error: {
          code: 'unauthorized',
          message: req.headers.authorization ? 'the bearer token is not valid for this API' : 'missing Authorization: Bearer <token> header',
        },
      });
      return;
    }
    scoped(req).fleetPrincipal = who;
    done();
  });
  v1.addHook('onResponse', (req, reply, done) => {
    const t = scoped(req).fleetTrace;
    if (t) {
      t.span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) t.span.setStatus({ code: SpanStatusCode.ERROR });
      t.span.end();
    }
    done();
  });

  return {
    inSpan(req, fn) {
      const t = scoped(req).fleetTrace;
      return t ? otelContext.with(t.context, fn) : fn();
    },
    context(req) {
      return { idempotencyKey: idempotencyKeyOf(req), trace: injectTraceContext(), principal: scoped(req).fleetPrincipal ?? undefined, logger: opts.logger };
    },
  };
}

/** The request's `Idempotency-Key`, validated (a bad one is a 400 naming the header). */
function idempotencyKeyOf(req: FastifyRequest): string | undefined {
  const raw = req.headers[IDEMPOTENCY_HEADER];
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? raw[0] : raw;
  const parsed = IdempotencyKey.safeParse(value);
  if (!parsed.success) throw new ValidationError([{ path: 'Idempotency-Key', message: parsed.error.issues[0]?.message ?? 'must be 1-512 characters' }]);
  return parsed.data;
}

/**
 * The key an enqueue request runs under: the caller's `Idempotency-Key`, or a new UUID when it sent none,
 * so that every enqueue can be retried without doubling its job. Named in the `Idempotency-Key` response
 * header of every answer (errors included) and in the body of a 2xx.
 */
export function enqueueKeyOf(req: FastifyRequest, reply: FastifyReply): string {
  const key = idempotencyKeyOf(req) ?? randomUUID();
  reply.header(IDEMPOTENCY_HEADER, key);
  return key;
}
