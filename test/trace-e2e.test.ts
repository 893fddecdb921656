import { context, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import IORedis from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { QUEUES } from '../src/contracts/queues';
import { createProducer } from '../src/producers';
import { instrumentProcessor, startTelemetry, type Telemetry } from '../src/telemetry';
import { createEmbeddingProcessor } from '../src/workers/embedding-processor';
import { runWorker } from '../src/workers/run-worker';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';

describe('a job is traced from the producer through the worker and its batch to the warehouse call', () => {
  const exporter = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let server: LocalWarehouse;
  beforeAll(async () => {
    telemetry = startTelemetry({ role: 'test', spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    server = await startTestWarehouse();
  });
  afterAll(async () => {
    await server.close();
    await telemetry.shutdown();
  });

  it('job spans continue the caller trace; one batch span links them; the warehouse span is its child', async () => {
    const prefix = uniquePrefix('trace');
    const redis = testRedis();
    const workerConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    const producer = createProducer({ connection: redis, prefix });
    const { pool, warehouse } = pooledClient(server);
    const processor = createEmbeddingProcessor({ warehouse, batching: { maxWaitMs: 50 } });
    const worker = runWorker({
      queue: QUEUES.embeddings,
      connection: workerConn,
      prefix,
      concurrency: 10,
      processor: instrumentProcessor(processor.process as never, { metrics: telemetry.metrics }) as never,
    });
    try {
      const caller = trace.getTracer('test').startSpan('caller');
      const handles = await context.with(trace.setSpan(context.active(), caller), () => producer.embed(['first text', 'second text', 'third text']));
      caller.end();
      await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
      // A job's result can reach the producer before the worker has ended its spans.
      const spans = await waitUntil('the job, batch and warehouse spans to end', () => {
        const finished = exporter.getFinishedSpans();
        const jobs = finished.filter((s) => s.kind === SpanKind.CONSUMER).length;
        const ended =
          jobs >= 3 && finished.some((s) => s.name === 'batch emb') && finished.some((s) => s.kind === SpanKind.CLIENT && s.name === 'warehouse embed_texts');
        return ended && finished;
      });
      const jobSpans = spans.filter((s) => s.kind === SpanKind.CONSUMER);
      expect(jobSpans).toHaveLength(3);
      for (const s of jobSpans) expect(s.spanContext().traceId).toBe(caller.spanContext().traceId);
      const batches = spans.filter((s) => s.name === 'batch emb');
      expect(batches).toHaveLength(1);
      expect(batches[0].links.map((l) => l.context.spanId).sort()).toEqual(jobSpans.map((s) => s.spanContext().spanId).sort());
      const call = spans.find((s) => s.kind === SpanKind.CLIENT && s.name === 'warehouse embed_texts');
      expect(call?.parentSpanContext?.spanId).toBe(batches[0].spanContext().spanId);
    } finally {
      await worker.close();
      await processor.close();
      await producer.close();
      await pool.close();
      await Promise.all([redis.quit(), workerConn.quit()]);
    }
  });
});
