import type { LocalWarehouse } from 'local-snowflake';
import { createProducer } from '../src/producers';
import { WarehouseError } from '../src/warehouse/errors';
import { embedTexts } from '../src/warehouse/queries/embed-texts';
import { testRedis, uniquePrefix } from './helpers/redis';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';
import { startEmbeddingWorker } from './helpers/workers';

let server: LocalWarehouse;
beforeAll(async () => {
  // The default inline part (100 KB, like Snowflake's): a batch of more than a dozen vectors is chunked.
  server = await startTestWarehouse();
});
afterAll(() => server.close());
afterEach(() => server.setFault({ mode: 'none' }));

const texts = (n: number, seed: string) =>
  Array.from({ length: n }, (_, i) => `${seed} ${i}: the customer asked about renewal pricing and the security review`);

describe("the fleet's batch statements through Snowflake's chunked-result path", () => {
  it('a 300-text batch comes back in chunk files, each vector identical to the one a single-text statement returns inline', async () => {
    const { pool, warehouse } = pooledClient(server);
    try {
      const batch = texts(300, 'chunked');
      server.resetStats();
      const vectors = await embedTexts(warehouse, batch, 'e5-base-v2');
      const stats = server.stats();
      expect(stats.chunkedResults).toBe(1);
      expect(stats.chunksServed).toBeGreaterThanOrEqual(2);
      expect(stats.queries).toBe(1);
      for (const i of [0, 17, 150, 299]) {
        const [alone] = await embedTexts(warehouse, [batch[i]], 'e5-base-v2');
        expect(Array.from(vectors[i])).toEqual(Array.from(alone));
      }
    } finally {
      await pool.close();
    }
  });

  it('a chunk download that fails once is retried by the driver and the batch completes', async () => {
    const { pool, warehouse } = pooledClient(server);
    try {
      server.setFault({ mode: 'chunk-error', status: 503, times: 1 });
      server.resetStats();
      const vectors = await embedTexts(warehouse, texts(200, 'retry'), 'e5-base-v2');
      expect(vectors).toHaveLength(200);
      expect(server.stats().chunkDownloadsFailed).toBe(1);
      expect(server.stats().queries).toBe(1); // the statement ran once; only the download was repeated
    } finally {
      await pool.close();
    }
  });

  it('a chunk that fails for good fails the call with a clear, retryable error after the fleet retried the statement', async () => {
    const { pool, warehouse } = pooledClient(server, {}, { retries: 1, retryBaseMs: 10 });
    try {
      server.setFault({ mode: 'chunk-error', status: 410 });
      server.resetStats();
      const err = await embedTexts(warehouse, texts(200, 'gone'), 'e5-base-v2').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WarehouseError);
      expect((err as WarehouseError).transient).toBe(true);
      expect((err as WarehouseError).message).toMatch(/warehouse call embed_texts: the statement ran, but its result could not be read \(\d+ of 200 rows\)/);
      expect(server.stats().queries).toBe(2); // first attempt + one retry
      expect(server.stats().chunkDownloadsFailed).toBeGreaterThanOrEqual(2);
    } finally {
      await pool.close();
    }
  });

  it('every statement carries its QUERY_TAG (role, operation, queue, batch, jobs) and the call deadline as STATEMENT_TIMEOUT_IN_SECONDS', async () => {
    const prefix = uniquePrefix('qtag');
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    const { pool, warehouse } = pooledClient(server, {}, { timeoutMs: 12_500 });
    const worker = startEmbeddingWorker(warehouse, prefix, { maxBatchSize: 100, maxWaitMs: 50 });
    try {
      const started = Date.now();
      const results = await Promise.all((await producer.embed(texts(250, 'tagged'))).map((h) => h.result({ timeoutMs: 30_000 })));
      const history = server.queryHistory().filter((e) => e.startTime >= started && /EMBED_TEXT_768/.test(e.queryText));
      expect(history.length).toBeGreaterThanOrEqual(3);
      const tags = history.map((e) => JSON.parse(e.queryTag!) as { app: string; role: string; op: string; queue: string; batch: string; jobs: number });
      for (const tag of tags) expect(tag).toMatchObject({ app: 'warehouse-fleet', role: 'fleet', op: 'embed_texts', queue: 'embeddings' });
      // The batch ids the jobs name are the ones the warehouse saw, and the job counts add up.
      expect(new Set(tags.map((t) => t.batch))).toEqual(new Set(results.map((r) => r.batch!.batchId)));
      expect(tags.reduce((n, t) => n + t.jobs, 0)).toBe(250);
      expect(history.every((e) => e.statementTimeoutS === 13)).toBe(true);
    } finally {
      await worker.close();
      await producer.close();
      await pool.close();
      await redis.quit();
    }
  });
});
