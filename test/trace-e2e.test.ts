import { context, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import IORedis from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { createEmbeddingCache } from '../src/cache';
import { QUEUES } from '../src/contracts/queues';
import { createProducer } from '../src/producers';
import { instrumentProcessor, startTelemetry, type Telemetry, withEnqueueSpan } from '../src/telemetry';
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
  afterEach(() => exporter.reset());

  it('job spans continue the caller trace; one batch span links them; the warehouse span is its child', async () => {
    const prefix = uniquePrefix('trace');
    const redis = testRedis();
    const workerConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    const producer = createProducer({ connection: redis, prefix });
    const { pool, warehouse } = pooledClient(server);
    // The batch goes when its three texts are in, however slowly a loaded machine hands them to the worker.
    const processor = createEmbeddingProcessor({ warehouse, batching: { maxWaitMs: 10_000, maxBatchSize: 3 } });
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

  it('one embedding job: publish → queue wait → process → cache lookup; the coalesced statement is a batch span linking each job, tagged in the warehouse', async () => {
    const prefix = uniquePrefix('trace-cache');
    const redis = testRedis();
    const workerConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    const producer = createProducer({ connection: redis, prefix });
    const cache = createEmbeddingCache({ redis, prefix });
    const { pool, warehouse } = pooledClient(server);
    // A window long enough for both jobs of one enqueue to share a statement.
    const processor = createEmbeddingProcessor({ warehouse, cache, batching: { maxWaitMs: 10_000, maxBatchSize: 2 } });
    const worker = runWorker({
      queue: QUEUES.embeddings,
      connection: workerConn,
      prefix,
      concurrency: 10,
      processor: instrumentProcessor(processor.process as never, { metrics: telemetry.metrics }) as never,
    });
    const spanId = (s: ReadableSpan) => s.spanContext().spanId;
    const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
    try {
      // A library caller: the publish span is where its trace starts.
      const texts = ['the champion left the account', 'procurement wants a discount'];
      const handles = await withEnqueueSpan(QUEUES.embeddings, (trace) => producer.embed(texts, { trace }));
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
      // The same text again: answered by the in-process cache, no statement.
      const again = await withEnqueueSpan(QUEUES.embeddings, (trace) => producer.embed(texts[0], { trace }));
      expect((await again.result({ timeoutMs: 20_000 })).tier).toBe('l1');

      const spans = await waitUntil('every job, cache, batch and warehouse span to end', () => {
        const done = exporter.getFinishedSpans();
        const count = (name: string) => done.filter((s) => s.name === name).length;
        return count('process embeddings') === 3 && count('cache embeddings') === 3 && count('warehouse embed_texts') >= 1 && done;
      });
      const [publish, publishAgain] = spans.filter((s) => s.kind === SpanKind.PRODUCER);
      expect(publish.name).toBe('publish embeddings');
      expect(parentOf(publish)).toBeUndefined();
      const traceId = publish.spanContext().traceId;
      const jobIds = handles.map((h) => h.id);

      const consumers = spans.filter((s) => s.name === 'process embeddings' && parentOf(s) === spanId(publish));
      expect(consumers.map((s) => s.attributes['messaging.message.id']).sort()).toEqual([...jobIds].sort());
      for (const job of consumers) {
        expect(job.kind).toBe(SpanKind.CONSUMER);
        expect(job.spanContext().traceId).toBe(traceId);
        // the time in the queue, beside the job's span under the publish span
        const [wait] = spans.filter((s) => s.name === 'wait embeddings' && s.attributes['messaging.message.id'] === job.attributes['messaging.message.id']);
        expect(parentOf(wait)).toBe(spanId(publish));
        expect(wait.spanContext().traceId).toBe(traceId);
        expect(wait.attributes['fleet.queue.wait_ms']).toEqual(expect.any(Number));
        // the cache lookup, under the job: neither tier had the text, so the warehouse answered
        const lookups = spans.filter((s) => s.name === 'cache embeddings' && parentOf(s) === spanId(job));
        expect(lookups.map((s) => s.attributes['fleet.cache.tier'])).toEqual(['warehouse']);
      }

      // One statement served both jobs: its batch span links each job's span (a batch has many parents)
      // and carries the batch's size and jobs; the warehouse call is its child.
      const batches = spans.filter((s) => s.name === 'batch emb');
      expect(batches).toHaveLength(1);
      const [batch] = batches;
      expect(parentOf(batch)).toBeUndefined();
      expect(batch.links.map((l) => l.context.spanId).sort()).toEqual(consumers.map(spanId).sort());
      for (const l of batch.links) expect(l.context.traceId).toBe(traceId);
      expect(batch.attributes).toMatchObject({ 'fleet.batch.size': 2, 'fleet.batch.jobs': 2, 'fleet.batch.links': 2 });
      const calls = spans.filter((s) => s.name === 'warehouse embed_texts');
      expect(calls).toHaveLength(1);
      expect(calls[0].kind).toBe(SpanKind.CLIENT);
      expect(parentOf(calls[0])).toBe(spanId(batch));
      for (const r of results) expect(r.batch?.batchId).toBe(batch.attributes['fleet.batch.id']);

      // The statement the warehouse ran carries the same batch in its QUERY_TAG: QUERY_HISTORY and the trace meet there.
      const tagged = server
        .queryHistory()
        .map((e) => ({ ...e, tag: JSON.parse(e.queryTag || '{}') as Record<string, unknown> }))
        .filter((e) => e.tag.batch === batch.attributes['fleet.batch.id']);
      expect(tagged).toHaveLength(1);
      expect(tagged[0].tag).toMatchObject({ app: 'warehouse-fleet', op: 'embed_texts', queue: 'embeddings', jobs: 2 });
      expect(tagged[0].queryText).toContain('EMBED_TEXT_768');

      // The cached job: its lookup answered from l1, and no batch links it.
      const [cachedJob] = spans.filter((s) => s.name === 'process embeddings' && parentOf(s) === spanId(publishAgain));
      expect(spans.filter((s) => s.name === 'cache embeddings' && parentOf(s) === spanId(cachedJob)).map((s) => s.attributes['fleet.cache.tier'])).toEqual([
        'l1',
      ]);
      expect(spans.some((s) => s.links.some((l) => l.context.spanId === spanId(cachedJob)))).toBe(false);
    } finally {
      await worker.close();
      await processor.close();
      await producer.close();
      await cache.close();
      await pool.close();
      await Promise.all([redis.quit(), workerConn.quit()]);
    }
  });
});
