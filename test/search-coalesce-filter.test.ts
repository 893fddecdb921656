import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis, { type Redis } from 'ioredis';
import { clusteredSpec, clusteredVectors } from '../src/bench/ann';
import { QUEUES } from '../src/contracts/queues';
import { encodeVector } from '../src/contracts/vector-codec';
import {
  appendUpserts,
  appendUpsertsOnce,
  createIndexBuilder,
  createSearchService,
  type IndexBuilder,
  IndexThread,
  indexLogKey,
  type SearchService,
} from '../src/index-builder';
import { createProducer, type Producer } from '../src/producers';
import type { EmbeddingService } from '../src/workers/embedding-processor';
import { runWorker } from '../src/workers/run-worker';
import { createSearchProcessor } from '../src/workers/search-processor';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';

/**
 * The search replica's path with many callers and with filters: concurrent queries coalesced into one
 * batched native call (same answers as one at a time), per-query errors in a batch, and filter
 * metadata travelling from the upsert log through a snapshot to the `search` queue.
 */
const D = 32;
const N = 1_200;
const { data, queries } = clusteredVectors(clusteredSpec('easy', N, D, 60, 11));
const row = (i: number) => data.slice(i * D, (i + 1) * D);
const tenantOf = (i: number) => (i % 3 === 0 ? 'acme' : 'globex');
const T0 = Date.parse('2026-06-01T00:00:00Z');
const noEmbeddings = { embed: () => Promise.reject(new Error('vectors only')) } as unknown as EmbeddingService;

let prefix: string;
let dir: string;
let redis: Redis;
let builderConn: Redis;
let builder: IndexBuilder;
const services: SearchService[] = [];

beforeAll(async () => {
  prefix = uniquePrefix('search-cf');
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-search-cf-'));
  redis = testRedis();
  builderConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  builder = createIndexBuilder({ redis: builderConn, prefix, snapshotDir: dir, settings: { dimensions: D, dtype: 'f32' } });
  await builder.start();
  // Metadata on most items; the last 200 are written the old way (raw XADD without metadata fields).
  const ids = await appendUpserts(
    redis,
    prefix,
    Array.from({ length: N - 200 }, (_, i) => ({
      id: `n-${i}`,
      namespace: 'notes',
      vector: row(i),
      tenant: tenantOf(i),
      dealId: `D-${i % 40}`,
      ts: T0 + i * 60_000,
    })),
  );
  const tx = redis.multi();
  for (let i = N - 200; i < N; i++) tx.xadd(indexLogKey(prefix), '*', 'op', 'u', 'ns', 'notes', 'id', `n-${i}`, 'v', Buffer.from(row(i).buffer));
  const old = (await tx.exec())!.map(([, id]) => String(id));
  await builder.waitForApplied(old[old.length - 1] ?? ids[ids.length - 1]);
  await builder.snapshot();
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(services.map((s) => s.close()));
  await builder.close();
  await builderConn.quit();
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

async function service(opts: { coalesce?: boolean } = {}): Promise<SearchService> {
  const s = createSearchService({ redis, prefix, snapshotDir: dir, pollMs: 0, ...opts });
  services.push(s);
  await s.start();
  expect(s.ready).toBe(true);
  return s;
}

describe('coalesced search', () => {
  it('60 queries issued together go to the index thread as one batch and get the answers of one-at-a-time', async () => {
    const coalesced = await service();
    const serial = await service({ coalesce: false });
    const qs = Array.from({ length: 60 }, (_, q) => queries.slice(q * D, (q + 1) * D));
    const before = { ...coalesced.searchCounts };
    const together = await Promise.all(qs.map((v, i) => coalesced.search(v, 5, 'notes', i % 2 ? { tenant: 'acme' } : undefined)));
    expect(coalesced.searchCounts.batches - before.batches).toBe(1);
    expect(coalesced.searchCounts.queries - before.queries).toBe(60);
    const alone = [];
    for (let i = 0; i < qs.length; i++) alone.push(await serial.search(qs[i], 5, 'notes', i % 2 ? { tenant: 'acme' } : undefined));
    expect(serial.searchCounts).toEqual({ batches: 60, queries: 60 });
    expect(together.map((r) => r.hits.map((h) => h.id))).toEqual(alone.map((r) => r.hits.map((h) => h.id)));
    expect(together[1].matching).toBe(alone[1].matching);
  });

  it('queries arriving while the thread is busy wait and leave together in the next batch', async () => {
    const s = await service();
    const before = { ...s.searchCounts };
    const first = s.search(row(0), 3, 'notes');
    await new Promise((r) => setImmediate(r)); // the first batch is on its way
    const rest = Array.from({ length: 30 }, (_, i) => s.search(row(i + 1), 3, 'notes'));
    const answers = await Promise.all([first, ...rest]);
    expect(answers.map((a) => a.hits[0].id)).toEqual(answers.map((_, i) => `n-${i}`));
    expect(s.searchCounts.queries - before.queries).toBe(31);
    expect(s.searchCounts.batches - before.batches).toBeLessThanOrEqual(3);
  });

  it('with two index threads idle, what is queued is shared between them', async () => {
    const s = createSearchService({ redis, prefix, snapshotDir: dir, pollMs: 0, threads: 2, batchThreads: 1 });
    services.push(s);
    await s.start();
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => s.search(row(i), 1, 'notes')));
    expect(answers.map((a) => a.hits[0].id)).toEqual(answers.map((_, i) => `n-${i}`));
    expect(s.searchCounts).toEqual({ batches: 2, queries: 40 });
  });

  it('a query that fails in a batch fails alone', async () => {
    const snapshot = (await (await service()).search(row(0), 1, 'notes')).snapshotVersion;
    const thread = await IndexThread.open(
      {
        dir: path.join(dir, `snapshot-${String(snapshot).padStart(12, '0')}`),
        settings: builder.settings,
        namespaces: { notes: { file: 'ns-notes.usearch', count: N } },
      },
      'view',
    );
    try {
      const matrix = new Float32Array([...row(5), ...row(6), ...row(7)]);
      const answers = await thread.searchBatch(matrix, [
        { k: 2, namespace: 'notes' },
        { k: 0, namespace: 'notes' },
        { k: 2, namespace: 'notes' },
      ]);
      expect(answers[0]).toMatchObject({ ok: true, hits: [{ id: 'n-5' }, {}] });
      expect(answers[1]).toEqual({ ok: false, error: { name: 'RangeError', message: 'k must be a positive integer, got 0' } });
      expect(answers[2]).toMatchObject({ ok: true, hits: [{ id: 'n-7' }, {}] });
    } finally {
      await thread.close();
    }
  });
});

describe('filtered search through the search queue', () => {
  let producer: Producer;
  let workerConn: Redis;
  let worker: ReturnType<typeof runWorker>;
  beforeAll(async () => {
    const s = await service();
    workerConn = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    worker = runWorker({
      queue: QUEUES.search,
      connection: workerConn,
      prefix,
      concurrency: 20,
      processor: createSearchProcessor({ index: s, embeddings: noEmbeddings }).process,
    });
    await worker.waitUntilReady();
    producer = createProducer({ connection: redis, prefix });
  });
  afterAll(async () => {
    await producer.close();
    await worker.close();
    await workerConn.quit();
  });

  it('tenant and time filters select exactly the matching items; items upserted without metadata never match', async () => {
    const from = new Date(T0 + 300 * 60_000).toISOString();
    const to = T0 + 600 * 60_000;
    const handle = await producer.search({ vector: encodeVector(row(450)), k: 50, namespace: 'notes', filter: { tenant: 'acme', from, to } });
    const answer = await handle.result({ timeoutMs: 20_000 });
    const expected = Array.from({ length: N - 200 }, (_, i) => i).filter((i) => tenantOf(i) === 'acme' && i >= 300 && i < 600);
    expect(answer.matching).toBe(expected.length);
    expect(answer.hits.length).toBe(50);
    expect(answer.hits[0].id).toBe('n-450');
    for (const h of answer.hits) expect(expected).toContain(Number(h.id.slice(2)));
    // an unfiltered search still finds an item written without metadata
    const plain = await (await producer.search({ vector: encodeVector(row(N - 1)), k: 1, namespace: 'notes' })).result({ timeoutMs: 20_000 });
    expect(plain.hits[0].id).toBe(`n-${N - 1}`);
    expect(plain.matching).toBeUndefined();
  });

  it('a deal filter through the queue, and bad filters are refused naming the field', async () => {
    const answer = await (await producer.search({ vector: encodeVector(row(7)), k: 10, namespace: 'notes', filter: { dealId: ['D-7', 'D-8'] } })).result({
      timeoutMs: 10_000,
    });
    const expected = Array.from({ length: N - 200 }, (_, i) => i).filter((i) => i % 40 === 7 || i % 40 === 8);
    expect(answer.matching).toBe(expected.length);
    expect(answer.hits.map((h) => Number(h.id.slice(2))).every((i) => expected.includes(i))).toBe(true);
    expect(answer.hits[0].id).toBe('n-7');
    await expect(producer.search({ vector: encodeVector(row(7)), k: 10, filter: { tenant: '' } })).rejects.toThrow(/filter\.tenant/);
    await expect(producer.search({ vector: encodeVector(row(7)), k: 10, filter: { from: 10, to: 5 } })).rejects.toThrow(/filter\.to: must be after from/);
    await expect(producer.search({ vector: encodeVector(row(7)), k: 10, filter: { region: 'eu' } as never })).rejects.toThrow(/filter/);
  });
});

describe('filter metadata in the upsert log', () => {
  it('appendUpsertsOnce carries tenant, deal and time; a re-upsert without them clears them', async () => {
    const jobKey = `${prefix}:embeddings:job-1`;
    await redis.hset(jobKey, 'name', 'embed');
    const v = row(3);
    const [id] = await appendUpsertsOnce(redis, prefix, [
      { id: 'once-1', namespace: 'jobs', vector: v, jobKey, jobId: 'job-1', tenant: 'initech', dealId: 'D-99', ts: T0 },
    ]);
    await builder.waitForApplied(id!);
    const fields = await redis.xrange(indexLogKey(prefix), id!, id!);
    const flat = fields[0][1];
    const entry = Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]));
    expect({ t: entry.t, dl: entry.dl, ts: entry.ts, j: entry.j }).toEqual({ t: 'initech', dl: 'D-99', ts: String(T0), j: 'job-1' });
    await builder.snapshot();
    const s = await service();
    expect((await s.search(v, 1, 'jobs', { tenant: 'initech', dealId: 'D-99', from: T0, to: T0 + 1 })).hits.map((h) => h.id)).toEqual(['once-1']);
    const [again] = await appendUpserts(redis, prefix, [{ id: 'once-1', namespace: 'jobs', vector: v }]);
    await builder.waitForApplied(again);
    await builder.snapshot();
    await s.refresh();
    expect(await s.search(v, 1, 'jobs', { tenant: 'initech' })).toMatchObject({ hits: [], matching: 0 });
  });

  it('refuses bad metadata before touching Redis, naming the item and field', async () => {
    await expect(
      appendUpserts(redis, prefix, [
        { id: 'x', vector: row(0), tenant: 'has space' },
        { id: 'y', vector: row(1), ts: -5 },
      ]),
    ).rejects.toThrow(/\[0\]\.tenant.*\[1\]\.ts|\[1\]\.ts.*\[0\]\.tenant/s);
  });
});
