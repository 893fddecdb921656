import type { LocalWarehouse } from 'local-snowflake';
import { JobFailedError } from '../src/contracts/errors';
import { decodeVector } from '../src/contracts/vector-codec';
import { createProducer } from '../src/producers';
import { testRedis, uniquePrefix } from './helpers/redis';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';
import { startEmbeddingWorker } from './helpers/workers';

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse({ queryLatencyMs: 20 });
});
afterAll(() => server.close());

function setup(name: string) {
  const prefix = uniquePrefix(name);
  const redis = testRedis();
  const producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 2, backoff: { type: 'fixed', delay: 50 } } });
  const { pool, warehouse } = pooledClient(server, { max: 4 });
  return {
    prefix,
    producer,
    warehouse,
    async close(...workers: { close(): Promise<void> }[]) {
      for (const w of workers) await w.close();
      await producer.close();
      await pool.close();
      await redis.quit();
    },
  };
}

describe('embedding jobs end to end (real Redis, real driver, local warehouse)', () => {
  it('serves 1,000 embedding jobs with at most 10 warehouse calls', async () => {
    const s = setup('emb1000');
    const worker = startEmbeddingWorker(s.warehouse, s.prefix, { maxBatchSize: 500, maxWaitMs: 50, maxConcurrentBatches: 4 });
    try {
      const texts = Array.from({ length: 1000 }, (_, i) => `deal note ${i}: renewal risk and pricing pressure`);
      server.resetStats();
      const handles = await s.producer.embed(texts);
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
      expect(results).toHaveLength(1000);
      expect(server.stats().queries).toBeLessThanOrEqual(10);
      const batches = new Set(results.map((r) => r.batch!.batchId));
      expect(batches.size).toBeLessThanOrEqual(10);
      const v = decodeVector(results[0].vector);
      expect(v).toHaveLength(768);
      expect(Math.hypot(...v)).toBeCloseTo(1, 3);
      // the job log records the batch that served it
      const job = await s.producer.queue('embeddings').getJob(handles[0].id);
      const { logs } = await s.producer.queue('embeddings').getJobLogs(job!.id!);
      expect(logs[0]).toMatch(new RegExp(`served by batch ${results[0].batch!.batchId.replace(/\./g, '\\.')} \\(\\d+ texts\\)`));
    } finally {
      await s.close(worker);
    }
  });

  it('one poison text among 500 fails alone; the other 499 complete', async () => {
    const s = setup('poison');
    const worker = startEmbeddingWorker(s.warehouse, s.prefix, { maxBatchSize: 500, maxWaitMs: 100 });
    server.setFault({ mode: 'poison', pattern: 'POISON-PILL' });
    try {
      const texts = Array.from({ length: 500 }, (_, i) => (i === 123 ? 'this text is a POISON-PILL for the warehouse' : `ordinary text ${i}`));
      const handles = await s.producer.embed(texts);
      const settled = await Promise.allSettled(handles.map((h) => h.result({ timeoutMs: 30_000 })));
      const failed = settled.map((r, i) => (r.status === 'rejected' ? i : -1)).filter((i) => i >= 0);
      expect(failed).toEqual([123]);
      expect((settled[123] as PromiseRejectedResult).reason).toBeInstanceOf(JobFailedError);
    } finally {
      server.setFault({ mode: 'none' });
      await s.close(worker);
    }
  });

  it('an idempotency key returns the same job instead of enqueuing a second one', async () => {
    const s = setup('idem');
    try {
      const a = await s.producer.embed('same text', { idempotencyKey: 'order:42' });
      const b = await s.producer.embed('same text', { idempotencyKey: 'order:42' });
      const c = await s.producer.embed('same text', { idempotencyKey: '42' });
      expect(a.id).toBe(b.id);
      expect(a.id).not.toBe(c.id);
      expect(a.id).not.toMatch(/:/);
      expect(await s.producer.queue('embeddings').count()).toBe(2);
    } finally {
      await s.close();
    }
  });
});
