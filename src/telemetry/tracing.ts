import {
  type Attributes,
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  type Link,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

/** Instrumentation scope of every span the fleet makes. */
const TRACER_NAME = 'warehouse-fleet';

const tracer = () => trace.getTracer(TRACER_NAME);

// The provider the API's proxy hands out until a tracer provider is registered (startTelemetry).
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();
/** What a no-op tracer's span is: no ids, records nothing. */
const NON_RECORDING_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * True while no tracer provider is registered (telemetry not started, e.g. a library caller or a
 * benchmark): every span would be a no-op, so the request path skips making them. Checked per call, as
 * telemetry can start and stop while the process runs (tests do).
 */
function tracingOff(): boolean {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider && provider.getDelegate() === NOOP_TRACER_PROVIDER;
}

/**
 * The part of a BullMQ Job the tracing helpers read. The job's `data.trace` carries the W3C headers
 * (`traceparent`, `tracestate`) written by the producer.
 */
export interface TracedJob {
  readonly id?: string;
  readonly name: string;
  readonly queueName: string;
  readonly data: unknown;
  readonly attemptsMade: number;
  /** Enqueue time, ms since epoch: with `processedOn`, the job's wait in the queue becomes a span. */
  readonly timestamp?: number;
  /** Start of the current attempt, ms since epoch. */
  readonly processedOn?: number;
  readonly opts?: { readonly delay?: number };
}

/**
 * The current trace context as W3C headers (`traceparent`, plus `tracestate`/`baggage` when set),
 * for a job's optional `trace` field. Empty when no span is active or telemetry is not started.
 *
 * @example
 *   await producer.embed(text, { trace: injectTraceContext() });
 */
export function injectTraceContext(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** The context carried by headers (`traceparent`...): an HTTP request's or a job's `trace` field. */
function extractTraceContext(carrier: Record<string, unknown> | undefined | null): Context {
  if (!carrier || typeof carrier !== 'object') return ROOT_CONTEXT;
  // No propagator registered (it declares no fields): nothing could be extracted, skip copying the headers.
  if (propagation.fields().length === 0) return ROOT_CONTEXT;
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(carrier)) {
    if (typeof v === 'string') clean[k.toLowerCase()] = v;
    else if (Array.isArray(v) && typeof v[0] === 'string') clean[k.toLowerCase()] = v[0];
  }
  return propagation.extract(ROOT_CONTEXT, clean);
}

/** The active span's context when it is valid (a real trace), else undefined. Collect these as batch links. */
export function currentSpanContext(): SpanContext | undefined {
  const sc = trace.getSpanContext(context.active());
  return sc && isSpanContextValid(sc) ? sc : undefined;
}

/** `{ traceId, spanId }` of the active span, for log lines; undefined outside a trace. */
export function activeTraceIds(): { traceId: string; spanId: string } | undefined {
  const sc = currentSpanContext();
  return sc ? { traceId: sc.traceId, spanId: sc.spanId } : undefined;
}

/** Records `err` on `span` as an exception and sets its status to ERROR. */
function failSpan(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : new Error(String(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Runs `fn` with `span` active; records an exception and error status if it throws; always ends the span. */
async function runInSpan<T>(span: Span, parent: Context, fn: (span: Span) => Promise<T> | T): Promise<T> {
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

function jobTrace(job: TracedJob): Record<string, unknown> | undefined {
  const data = job.data as { trace?: unknown } | null | undefined;
  const t = data && typeof data === 'object' ? data.trace : undefined;
  return t && typeof t === 'object' ? (t as Record<string, unknown>) : undefined;
}

/**
 * Runs a job's processing in a CONSUMER span that continues the producer's trace (from `job.data.trace`):
 * the HTTP request or library call that enqueued it, the job and what the job calls are one trace.
 *
 * @example
 *   processor: (job) => withJobSpan(job, () => embeddings.process(job))
 */
export function withJobSpan<T>(job: TracedJob, fn: (span: Span) => Promise<T> | T): Promise<T> {
  const parent = extractTraceContext(jobTrace(job));
  recordQueueWait(job, parent);
  const span = tracer().startSpan(
    `process ${job.queueName}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'bullmq',
        'messaging.operation.type': 'process',
        'messaging.destination.name': job.queueName,
        ...(job.id !== undefined ? { 'messaging.message.id': job.id } : {}),
        'bullmq.job.name': job.name,
        'bullmq.job.attempts_made': job.attemptsMade,
      },
    },
    parent,
  );
  return runInSpan(span, parent, fn);
}

/**
 * The first attempt's time in the queue, as a span from enqueue (or the end of its delay) to the start of
 * processing, beside the job's span under the producer's: a trace then shows where a job's time went
 * before any worker touched it. Retries wait for their backoff by design and get none.
 */
function recordQueueWait(job: TracedJob, parent: Context): void {
  if (job.attemptsMade !== 0 || job.timestamp === undefined) return;
  const enqueued = job.timestamp + (job.opts?.delay ?? 0);
  const started = job.processedOn ?? Date.now();
  if (!(started >= enqueued)) return; // clocks of two hosts disagree: no span rather than a negative one
  const span = tracer().startSpan(
    `wait ${job.queueName}`,
    {
      kind: SpanKind.INTERNAL,
      startTime: enqueued,
      attributes: {
        'messaging.system': 'bullmq',
        'messaging.destination.name': job.queueName,
        ...(job.id !== undefined ? { 'messaging.message.id': job.id } : {}),
        'fleet.queue.wait_ms': started - enqueued,
      },
    },
    parent,
  );
  span.end(started);
}

/**
 * Times a cache lookup in a span under the active (job) span, with the tier that answered
 * (`fleet.cache.tier`: `l1`, `l2` or `warehouse`). The span is not made active: a warehouse batch the
 * lookup falls through to links the job's span itself, as it does without a cache.
 *
 * @example
 *   const { value, tier } = await withCacheSpan('embeddings', () => cached.load(item));
 */
export async function withCacheSpan<T extends { tier: string }>(cache: string, fn: () => Promise<T>): Promise<T> {
  const span = tracer().startSpan(`cache ${cache}`, { kind: SpanKind.INTERNAL, attributes: { 'fleet.cache.name': cache } });
  try {
    const loaded = await fn();
    span.setAttribute('fleet.cache.tier', loaded.tier);
    return loaded;
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** The messaging attributes of an enqueue to `queue` (OpenTelemetry's messaging conventions). */
const publishAttributes = (queue: string, attrs: Attributes): Attributes => ({
  'messaging.system': 'bullmq',
  'messaging.operation.type': 'send',
  'messaging.destination.name': queue,
  ...attrs,
});

/**
 * Runs an enqueue in a PRODUCER span (child of the active span) and hands `fn` the trace headers to store in
 * the job, so the worker's span becomes its child. With `inRequest`, an enqueue made by a request span that
 * does nothing else (an HTTP enqueue route) publishes under that span instead: the request span gets the
 * messaging attributes and is the jobs' parent, and no second span is made (it would repeat its parent's
 * timing at about a tenth of the request's CPU; docs/benchmarks.md, `fleet bench api`).
 *
 * @example
 *   const job = await withEnqueueSpan('embeddings', (trace) => producer.embed(text, { trace }));
 */
export function withEnqueueSpan<T>(
  queue: string,
  fn: (trace: Record<string, string>, span: Span) => Promise<T> | T,
  attrs: Attributes = {},
  opts: { inRequest?: boolean } = {},
): Promise<T> {
  const parent = context.active();
  const request = opts.inRequest ? trace.getSpan(parent) : undefined;
  const publisher = request?.isRecording() ? request : undefined;
  if (publisher || tracingOff()) {
    // What the no-op tracer would do, without its span and context objects: the span carries the parent's
    // context (if any), and the job gets the parent's headers. In a request: the request's span publishes.
    publisher?.setAttributes(publishAttributes(queue, attrs));
    const sc = trace.getSpanContext(parent);
    const span = publisher ?? (sc && isSpanContextValid(sc) ? trace.wrapSpanContext(sc) : NON_RECORDING_SPAN);
    try {
      return Promise.resolve(fn(injectTraceContext(parent), span));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  const span = tracer().startSpan(`publish ${queue}`, { kind: SpanKind.PRODUCER, attributes: publishAttributes(queue, attrs) }, parent);
  return runInSpan(span, parent, (s) => fn(injectTraceContext(trace.setSpan(parent, s)), s));
}

/**
 * Runs one batched call in its own span that LINKS the spans of the jobs it served (a batch has many
 * parents, so it is a new trace with links, as the messaging conventions prescribe for batch processing).
 * It never becomes the child of whichever job happened to schedule the flush.
 *
 * @example
 *   loadBatch: (keys, links) => withBatchSpan('emb batch', links, { 'fleet.batch.id': id, 'fleet.batch.size': keys.length }, () => embedTexts(...))
 */
export function withBatchSpan<T>(name: string, links: readonly (SpanContext | undefined)[], attrs: Attributes, fn: (span: Span) => Promise<T> | T): Promise<T> {
  const seen = new Set<string>();
  const spanLinks: Link[] = [];
  for (const sc of links) {
    if (!sc || !isSpanContextValid(sc) || seen.has(sc.spanId)) continue;
    seen.add(sc.spanId);
    spanLinks.push({ context: sc });
  }
  const span = tracer().startSpan(name, {
    kind: SpanKind.INTERNAL,
    root: true,
    links: spanLinks,
    attributes: { 'fleet.batch.links': spanLinks.length, ...attrs },
  });
  return runInSpan(span, ROOT_CONTEXT, fn);
}

/**
 * Runs one warehouse call in a CLIENT span (child of the active batch or job span).
 *
 * @example
 *   query: (sql, binds, opts) => withWarehouseSpan(opts.label ?? 'query', () => pooled.query(sql, binds, opts))
 */
export function withWarehouseSpan<T>(label: string, fn: (span: Span) => Promise<T> | T, attrs: Attributes = {}): Promise<T> {
  const parent = context.active();
  const span = tracer().startSpan(
    `warehouse ${label}`,
    { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'snowflake', 'db.operation.name': label, ...attrs } },
    parent,
  );
  return runInSpan(span, parent, fn);
}

/**
 * Starts a SERVER span for an incoming request (continuing the caller's `traceparent`) without running
 * anything in it: for frameworks whose hooks start and end requests separately. Run the handler inside
 * `context.with(started.context, ...)` and end the span when the response is sent. Undefined when there is
 * nothing to trace (no tracer provider registered and no trace context in the headers): the name and
 * attributes, asked for lazily, are then never built.
 */
export function startServerSpan(
  headers: Record<string, unknown>,
  describe: () => { name: string; attributes: Attributes },
): { span: Span; context: Context } | undefined {
  const parent = extractTraceContext(headers);
  if (parent === ROOT_CONTEXT && tracingOff()) return undefined;
  const { name, attributes } = describe();
  const span = tracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}
