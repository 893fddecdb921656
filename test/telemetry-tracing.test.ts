import { Writable } from 'node:stream';
import { type SpanContext, SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { type Job, Worker } from 'bullmq';
import { QUEUES } from '../src/contracts/queues';
import { buildApi } from '../src/http';
import { createProducer } from '../src/producers';
import {
  createLogger,
  currentSpanContext,
  injectTraceContext,
  instrumentProcessor,
  startTelemetry,
  type Telemetry,
  withBatchSpan,
  withEnqueueSpan,
  withWarehouseSpan,
} from '../src/telemetry';
import { testRedis, uniquePrefix } from './helpers/redis';

const TOKEN = 'trace-token-0123456789abcd';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('telemetry tracing: a job is one trace from the HTTP request through the worker to the warehouse', () => {
  const exporter = new InMemorySpanExporter();
  const logChunks: string[] = [];
  const logger = createLogger({
    destination: new Writable({
      write(chunk, _e, cb) {
        logChunks.push(chunk.toString());
        cb();
      },
    }),
  });
  let telemetry: Telemetry;
  const redis = testRedis();
  const workerConnection = testRedis();
  const prefix = uniquePrefix('tt');
  const producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });

  beforeAll(() => {
    telemetry = startTelemetry({ role: 'api', serviceVersion: 'test', spanProcessors: [new SimpleSpanProcessor({ exporter })], logger });
  });
  afterAll(async () => {
    await producer.close();
    await redis.quit();
    await workerConnection.quit();
    await telemetry.shutdown();
  });
  beforeEach(() => exporter.reset());

  const spans = () => exporter.getFinishedSpans();
  const byKind = (kind: SpanKind) => spans().filter((s) => s.kind === kind);
  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

  it('without an active span there is nothing to inject', () => {
    expect(injectTraceContext()).toEqual({});
  });

  it('refuses a second start in the same process', () => {
    expect(() => startTelemetry()).toThrow(/already started/);
  });

  it('HTTP request (it publishes) → job (consumer) → batch span linking the jobs → warehouse call', async () => {
    const app = await buildApi({ producer, queues: [producer.queue(QUEUES.embeddings)], tokens: [TOKEN] });
    // A stand-in coalescer: jobs hand over their text and span context; a batch call serves all that
    // arrived within 100 ms (or three), in a batch span linking their job spans.
    const waiting: { text: string; link?: SpanContext; resolve: (v: string) => void }[] = [];
    let timer: NodeJS.Timeout | undefined;
    let batches = 0;
    const flush = () => {
      clearTimeout(timer);
      timer = undefined;
      const served = waiting.splice(0);
      const id = `emb-t-${++batches}`;
      return withBatchSpan(
        'emb batch',
        served.map((w) => w.link),
        { 'fleet.batch.id': id, 'fleet.batch.size': served.length },
        () =>
          withWarehouseSpan('embed_texts', async () => {
            logger.info({ batch: id }, 'warehouse call inside the batch');
            for (const w of served) w.resolve(`vector of ${w.text}`);
          }),
      );
    };
    const processor = instrumentProcessor(
      async (job: Job) => {
        logger.info({ jobId: job.id }, 'processing');
        const v = await new Promise<string>((resolve) => {
          waiting.push({ text: job.data.text, link: currentSpanContext(), resolve });
          if (waiting.length === 3) void flush();
          else timer ??= setTimeout(() => void flush(), 100);
        });
        return { v };
      },
      { metrics: telemetry.metrics, logger },
    );
    const worker = new Worker(QUEUES.embeddings, processor, { connection: workerConnection, prefix, concurrency: 5 });
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/embeddings?waitMs=10000',
        headers: { authorization: `Bearer ${TOKEN}`, traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` },
        payload: { texts: ['a', 'b', 'c'] },
      });
      expect(res.statusCode).toBe(200);
      const jobIds: string[] = res.json().jobs.map((j: { id: string }) => j.id);

      // the job carries the caller's trace
      const job = await producer.queue(QUEUES.embeddings).getJob(jobIds[0]);
      expect(job!.data.trace.traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));

      const [server] = byKind(SpanKind.SERVER);
      expect(server).toBeDefined();
      expect(server.name).toBe('POST /v1/embeddings');
      expect(server.spanContext().traceId).toBe(TRACE_ID);
      expect(parentOf(server)).toBe(CALLER_SPAN);
      expect(server.attributes['http.response.status_code']).toBe(200);

      // An enqueue route does nothing but publish: its server span is the publish span (no second span).
      expect(byKind(SpanKind.PRODUCER)).toEqual([]);
      expect(server.attributes).toMatchObject({
        'messaging.system': 'bullmq',
        'messaging.operation.type': 'send',
        'messaging.destination.name': 'embeddings',
        'messaging.batch.message_count': 3,
      });
      const publish = server;
      expect(job!.data.trace.traceparent).toContain(publish.spanContext().spanId);

      const consumers = byKind(SpanKind.CONSUMER);
      expect(consumers).toHaveLength(3);
      for (const c of consumers) {
        expect(c.name).toBe('process embeddings');
        expect(c.spanContext().traceId).toBe(TRACE_ID);
        expect(parentOf(c)).toBe(publish.spanContext().spanId);
        expect(jobIds).toContain(c.attributes['messaging.message.id']);
      }

      // every job span is linked from the batch span that served it; batch spans start their own traces
      const batchSpans = spans().filter((s) => s.name === 'emb batch');
      expect(batchSpans.length).toBeGreaterThanOrEqual(1);
      for (const b of batchSpans) {
        expect(parentOf(b)).toBeUndefined();
        expect(b.attributes['fleet.batch.links']).toBe(b.links.length);
        expect(b.attributes['fleet.batch.size']).toBe(b.links.length);
      }
      expect(batchSpans.flatMap((b) => b.links.map((l) => l.context.spanId)).sort()).toEqual(consumers.map((c) => c.spanContext().spanId).sort());
      for (const l of batchSpans.flatMap((b) => b.links)) expect(l.context.traceId).toBe(TRACE_ID);

      // each warehouse call is the child of its batch span
      const warehouseSpans = byKind(SpanKind.CLIENT);
      expect(warehouseSpans).toHaveLength(batchSpans.length);
      for (const w of warehouseSpans) {
        expect(w.name).toBe('warehouse embed_texts');
        const batch = batchSpans.find((b) => b.spanContext().spanId === parentOf(w))!;
        expect(batch).toBeDefined();
        expect(w.spanContext().traceId).toBe(batch.spanContext().traceId);
      }
      // logs written inside a job or batch carry its trace id
      const lines = logChunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      const processing = lines.filter((l) => l.msg === 'processing');
      expect(processing).toHaveLength(3);
      for (const l of processing) expect(l.traceId).toBe(TRACE_ID);
      const batchLines = lines.filter((l) => l.msg === 'warehouse call inside the batch');
      expect(batchLines).toHaveLength(warehouseSpans.length);
      for (const l of batchLines) {
        const w = warehouseSpans.find((x) => x.spanContext().spanId === l.spanId)!;
        expect(w).toBeDefined();
        expect(l.traceId).toBe(w.spanContext().traceId);
      }

      // and the job metrics were recorded
      const metrics = await telemetry.metricsEndpoint.render();
      expect(metrics).toMatch(/fleet_job_duration_ms_count\{queue="embeddings",outcome="ok"[^}]*\} 3/);
      expect(metrics).toMatch(/target_info\{[^}]*service_name="warehouse-fleet"[^}]*fleet_role="api"/);
    } finally {
      await worker.close();
      await app.close();
    }
  });

  it('a library call (no HTTP) starts the trace in its publish span; a failed job records the error on its span', async () => {
    const processor = instrumentProcessor(async (job: Job) => {
      if (job.data.text === 'boom') throw new Error('warehouse said no');
      return withWarehouseSpan('embed_texts', async () => ({ ok: true }));
    });
    const worker = new Worker(QUEUES.embeddings, processor, { connection: workerConnection, prefix, concurrency: 2 });
    try {
      const ok = await withEnqueueSpan(QUEUES.embeddings, (trace) => producer.embed('fine', { trace }));
      const bad = await withEnqueueSpan(QUEUES.embeddings, (trace) => producer.embed('boom', { trace }));
      await ok.result({ timeoutMs: 10_000 });
      await expect(bad.result({ timeoutMs: 10_000 })).rejects.toThrow(/warehouse said no/);
      const publishes = byKind(SpanKind.PRODUCER);
      expect(publishes).toHaveLength(2);
      expect(parentOf(publishes[0])).toBeUndefined();
      const consumers = byKind(SpanKind.CONSUMER);
      expect(consumers).toHaveLength(2);
      const failed = consumers.find((c) => c.status.code === 2)!;
      expect(failed.status.message).toBe('warehouse said no');
      expect(failed.events.map((e) => e.name)).toContain('exception');
      const fine = consumers.find((c) => c !== failed)!;
      const [warehouse] = byKind(SpanKind.CLIENT);
      expect(parentOf(warehouse)).toBe(fine.spanContext().spanId);
      for (const c of consumers) expect(publishes.map((p) => p.spanContext().spanId)).toContain(parentOf(c));
    } finally {
      await worker.close();
    }
  });
});
