import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { QUEUES } from '../src/contracts/queues';
import { appendUpserts, createIndexBuilder, createSearchService } from '../src/index-builder';
import { createProducer } from '../src/producers';
import { createEmbeddingProcessor, createEmbeddingService } from '../src/workers/embedding-processor';
import { runWorker } from '../src/workers/run-worker';
import { createSearchProcessor } from '../src/workers/search-processor';
import { startProductionApi } from './helpers/api';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';

const TOKEN = 'search-e2e-token-0123456789';
let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse();
});
afterAll(() => server.close());

describe('search end to end: embedding jobs feed the index, search answers by text', () => {
  it('upserts coalesced into one log append per batch, then finds the nearest texts', async () => {
    const prefix = uniquePrefix('search');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-search-'));
    const redis = testRedis();
    const logConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    const workerConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    const builderConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    const searchConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    const { pool, warehouse } = pooledClient(server);
    let appends = 0;
    const processor = createEmbeddingProcessor({
      warehouse,
      batching: { maxWaitMs: 30 },
      indexSink: (items) => {
        appends++;
        return appendUpserts(logConn, prefix, items, { dimensions: 768 });
      },
    });
    const worker = runWorker({ queue: QUEUES.embeddings, connection: workerConn, prefix, concurrency: 500, processor: processor.process });
    const producer = createProducer({ connection: redis, prefix });
    const builder = createIndexBuilder({ redis: builderConn, prefix, snapshotDir: dir, snapshotEveryMs: 60_000, settings: { dimensions: 768 } });
    const service = createSearchService({ redis: searchConn, prefix, snapshotDir: dir, pollMs: 200 });
    const embeddings = createEmbeddingService({ warehouse });
    try {
      await builder.start();
      await service.start();
      const texts = [
        'customer worried about pricing and the renewal discount',
        'security review blocked by SOC 2 questionnaire',
        'champion left the company, deal at risk',
        ...Array.from({ length: 197 }, (_, i) => `routine status update number ${i} about onboarding`),
      ];
      // Metadata rides on the job's index target: even ids are tenant acme's, odd ones globex's.
      const tenantOf = (i: number) => (i % 2 === 0 ? 'acme' : 'globex');
      const handles = await producer.embed(texts, { index: texts.map((_, i) => ({ namespace: 'calls', id: `C-${i}`, tenant: tenantOf(i) })) });
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
      expect(results[0].indexed).toEqual({ namespace: 'calls', id: 'C-0', tenant: 'acme' });
      expect(appends).toBeLessThanOrEqual(5);
      // every acknowledged upsert is in the log; the builder applies and snapshots them
      await waitUntil('the builder to apply all 200 upserts', async () => (await builder.stats()).size >= 200, { timeoutMs: 20_000, everyMs: 100 });
      await builder.snapshot();
      await waitUntil('the search service to load the snapshot', () => service.ready, { timeoutMs: 20_000, everyMs: 100 });
      const search = createSearchProcessor({ index: service, embeddings });
      const answer = await search.run({ text: 'the champion has left the company', k: 3, namespace: 'calls' });
      expect(answer.hits[0].id).toBe('C-2');
      expect(answer.snapshotVersion).toBeGreaterThanOrEqual(1);
      await expect(search.run({ k: 3 })).rejects.toThrow(/exactly one of text or vector/);
      // The tenant stored by the embedding job filters the search: C-2 (acme's) is not globex's.
      const globex = await search.run({ text: 'the champion has left the company', k: 5, namespace: 'calls', filter: { tenant: 'globex' } });
      expect(globex.hits.length).toBe(5);
      expect(globex.hits.every((h) => Number(h.id.slice(2)) % 2 === 1)).toBe(true);
      // POST /v1/search as production wires it (startApiRole with the search role in-process).
      const api = await startProductionApi({ prefix, token: TOKEN, search });
      try {
        const post = (body: unknown) => api.call('POST', '/v1/search', body);
        const res = await post({ text: 'the champion has left the company', k: 5, namespace: 'calls', filter: { tenant: 'acme' } });
        expect(res.status).toBe(200);
        const viaHttp = (await res.json()) as { hits: { id: string }[] };
        expect(viaHttp.hits[0].id).toBe('C-2');
        expect(viaHttp.hits.every((h) => Number(h.id.slice(2)) % 2 === 0)).toBe(true);
        const bad = await post({ text: 'x', filter: { tenant: 'has spaces' } });
        expect(bad.status).toBe(400);
      } finally {
        await api.close();
      }
      // the same search through the `search` queue, as the api Deployment asks the search replicas
      const searchConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
      const searchWorker = runWorker({ queue: QUEUES.search, connection: searchConn, prefix, concurrency: 5, processor: search.process });
      try {
        const viaQueue = await (await producer.search({ text: 'the champion has left the company', k: 3, namespace: 'calls' })).result({ timeoutMs: 10_000 });
        expect(viaQueue.hits[0].id).toBe('C-2');
        expect(viaQueue.snapshotVersion).toBe(answer.snapshotVersion);
        await expect(producer.search({ k: 0, text: 'x' })).rejects.toThrow(/k: must be at least 1/);
      } finally {
        await searchWorker.close();
        await searchConn.quit();
      }
    } finally {
      await worker.close();
      await processor.close();
      await embeddings.close();
      await service.close();
      await builder.close();
      await producer.close();
      await pool.close();
      await Promise.all([redis, logConn, workerConn, builderConn, searchConn].map((c) => c.quit()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
