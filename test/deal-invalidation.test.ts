import type { LocalWarehouse } from 'local-snowflake';
import { createDealInsightCache, invalidateDeals, type TieredCache, type TieredCacheOptions } from '../src/cache';
import { type Deal, type DealInsightsResult, QUEUES, ValidationError } from '../src/contracts';
import type { PooledWarehouse, WarehousePool } from '../src/pool';
import { createProducer, type Producer } from '../src/producers';
import { createDealProcessor } from '../src/workers/deal-processor';
import { createJobLogWriter } from '../src/workers/job-logs';
import { runWorker } from '../src/workers/run-worker';
import { startProductionApi } from './helpers/api';
import { testRedis, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';

/**
 * Deal rows are cached (L1 per process, L2 in Redis); after a CRM update, `invalidateDeals` must make the
 * new row visible on every replica. "Within one invalidation round trip" means: when `invalidateDeals`
 * resolves, Redis has removed the L2 entries and put the message on every subscribed replica's socket;
 * each replica drops the ids from its L1 as it reads that socket, so before any later reply on its
 * subscriber connection. The test checks exactly that: one PING on each replica's subscriber, then both
 * caches no longer hold the deal, and their next job reads the new row.
 */

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse();
});
afterAll(() => server.close());

interface Replica {
  cache: TieredCache<Deal>;
  /** The replica's invalidation subscriber, injected so the test can send one PING after it. */
  subscriber: ReturnType<typeof testRedis>;
  insights(ids: string[]): Promise<DealInsightsResult>;
  close(): Promise<void>;
}

/**
 * One replica as the deals role builds it: a real BullMQ worker running the deal processor with its own
 * pool and its own deal cache (own L1), on the shared Redis and cache key prefix. Each replica has its own
 * queue prefix so the test decides which replica serves a job.
 */
async function startReplica(name: string, cachePrefix: string, cacheOpts: Partial<TieredCacheOptions<Deal>> = {}): Promise<Replica> {
  const queuePrefix = uniquePrefix(`dealinv-${name}`);
  const redis = testRedis();
  const subscriber = testRedis();
  const workerConnection = testRedis();
  const logConnection = testRedis();
  const { pool, warehouse } = pooledClient(server);
  const cache = createDealInsightCache<Deal>({ redis, subscriber, prefix: cachePrefix, ...cacheOpts });
  const logs = createJobLogWriter(logConnection);
  const processor = createDealProcessor({ warehouse, cache, logs, batching: { maxWaitMs: 5 } });
  const worker = runWorker({ queue: QUEUES.deals, connection: workerConnection, prefix: queuePrefix, concurrency: 10, processor: processor.process });
  const producer: Producer = createProducer({ connection: redis, prefix: queuePrefix });
  await cache.ready();
  return {
    cache,
    subscriber,
    async insights(ids) {
      return (await producer.dealInsights(ids)).result({ timeoutMs: 20_000 });
    },
    async close() {
      await worker.close();
      await processor.close();
      await logs.close();
      await producer.close();
      await cache.close();
      await pool.close();
      await Promise.all([redis, subscriber, workerConnection, logConnection].map((c) => c.quit()));
    },
  };
}

function stageOf(result: DealInsightsResult): string {
  const d = result.deals[0];
  if (!d.found) throw new Error(`deal ${d.id} not found`);
  return d.deal.stage;
}

/** Sets a deal's stage the way a CRM sync would, moving UPDATED_AT on (both bound). */
async function crmUpdate(warehouse: PooledWarehouse, id: string, stage: string, updatedAt: Date): Promise<void> {
  await warehouse.query('UPDATE DEALS SET STAGE = ?, UPDATED_AT = ? WHERE ID = ?', [stage, updatedAt.toISOString(), id]);
}

describe('deal cache invalidation across replicas', () => {
  let admin: { pool: WarehousePool; warehouse: PooledWarehouse };
  beforeAll(() => {
    admin = pooledClient(server);
  });
  afterAll(() => admin.pool.close());

  it('an update is visible on every replica within one invalidation round trip', async () => {
    const cachePrefix = `fleet:cache:${uniquePrefix('inv')}`;
    const redis = testRedis();
    const [a, b] = await Promise.all([startReplica('a', cachePrefix), startReplica('b', cachePrefix)]);
    const id = 'D-17';
    try {
      const before = stageOf(await a.insights([id]));
      expect(stageOf(await b.insights([id]))).toBe(before);
      // Both now answer from their own L1.
      expect((await a.insights([id])).cached).toBe(1);
      expect((await b.insights([id])).cached).toBe(1);
      expect(a.cache.peek(id)?.stage).toBe(before);
      expect(b.cache.peek(id)?.stage).toBe(before);

      await crmUpdate(admin.warehouse, id, 'renegotiation', new Date('2030-01-01T00:00:00Z'));
      // Without an invalidation both replicas keep serving the old row (what this feature is for).
      expect(stageOf(await a.insights([id]))).toBe(before);
      expect(stageOf(await b.insights([id]))).toBe(before);

      const got = { a: a.cache.stats().invalidationsReceived, b: b.cache.stats().invalidationsReceived };
      const r = await invalidateDeals(redis, [id], { prefix: cachePrefix });
      expect(r).toEqual({ dealIds: [id], deleted: 1, receivers: 2 });
      expect(await redis.exists(a.cache.redisKey(id))).toBe(0);
      // One round trip on each replica's own subscriber connection, and the message has been handled.
      await Promise.all([a.subscriber.ping(), b.subscriber.ping()]);
      expect(a.cache.stats().invalidationsReceived).toBe(got.a + 1);
      expect(b.cache.stats().invalidationsReceived).toBe(got.b + 1);
      expect(a.cache.peek(id)).toBeUndefined();
      expect(b.cache.peek(id)).toBeUndefined();

      const sent = server.stats().queries;
      const ra = await a.insights([id]);
      expect(stageOf(ra)).toBe('renegotiation');
      if (ra.deals[0].found) expect(ra.deals[0].deal.updatedAt).toBe('2030-01-01T00:00:00.000Z');
      expect(ra.cached).toBe(0);
      // A read the warehouse (one statement) and writes the row back to Redis after answering; B then finds it there.
      await waitUntil("A's write-back in Redis", async () => (await redis.exists(a.cache.redisKey(id))) === 1, { timeoutMs: 10_000 });
      const rb = await b.insights([id]);
      expect(stageOf(rb)).toBe('renegotiation');
      expect(server.stats().queries - sent).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await redis.quit();
    }
  });

  it("a stale row's background refresh reads UPDATED_AT in the shared batch and tells the other replicas when it moved on", async () => {
    const cachePrefix = `fleet:cache:${uniquePrefix('reval')}`;
    const id = 'D-23';
    // Short fresh periods in Redis, long grace: entries go stale quickly and are then served while refreshed.
    const opts = { l1TtlMs: 60_000, l2TtlMs: 300, graceMs: 60_000 };
    const refreshed: number[] = [];
    const a = await startReplica('a', cachePrefix, { ...opts, onEvent: (e) => e.type === 'refreshed' && refreshed.push(e.errors) });
    const b = await startReplica('b', cachePrefix, opts);
    const redis = testRedis();
    try {
      // B reads the warehouse (its L1 copy is fresh for a minute); A gets it from Redis, fresh only for what is left there.
      const before = stageOf(await b.insights([id]));
      await waitUntil("B's write-back in Redis", async () => (await redis.exists(b.cache.redisKey(id))) === 1, { timeoutMs: 10_000 });
      expect(stageOf(await a.insights([id]))).toBe(before);
      // Polled, not slept: A's copy turns stale when Redis's fresh period of the entry ends.
      await waitUntil("A's copy of the deal turns stale", () => a.cache.peek(id) === undefined, { timeoutMs: 10_000 });
      expect(b.cache.peek(id)?.stage).toBe(before);

      await crmUpdate(admin.warehouse, id, 'contract-sent', new Date('2031-06-01T00:00:00Z'));
      const sent = server.stats().queries;
      const bHeard = b.cache.stats().invalidationsReceived;
      // A answers at once with the stale row and refreshes it in the background through its coalescer.
      expect(stageOf(await a.insights([id]))).toBe(before);
      await waitUntil("A's background refresh", () => refreshed.length > 0, { timeoutMs: 10_000 });
      expect(refreshed).toEqual([0]);
      expect(server.stats().queries - sent).toBe(1);
      // The refreshed row's UPDATED_AT moved on, so the write-back told B (same round trip as the write).
      await b.subscriber.ping();
      expect(b.cache.stats().invalidationsReceived).toBe(bHeard + 1);
      expect(b.cache.peek(id)).toBeUndefined();
      expect(stageOf(await b.insights([id]))).toBe('contract-sent');
      expect(stageOf(await a.insights([id]))).toBe('contract-sent');
    } finally {
      await Promise.all([a.close(), b.close()]);
      await redis.quit();
    }
  });

  it('refuses bad ids before touching Redis, naming each, as a deals job would', async () => {
    const redis = testRedis();
    try {
      const err = await invalidateDeals(redis, ['D-1', 'bad id', 'D-1', ''], {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.path)).toEqual(['dealIds[1]', 'dealIds[3]', 'dealIds[2]']);
      await expect(invalidateDeals(redis, [])).rejects.toThrow(/dealIds: must contain at least one id/);
      await expect(invalidateDeals(redis, ['D-1'], { prefix: 'bad*prefix' })).rejects.toThrow(/option `prefix`/);
      await expect(invalidateDeals(redis, ['D-1'], { timeoutMs: 0 })).rejects.toThrow(/option `timeoutMs`/);
    } finally {
      await redis.quit();
    }
  });
});

describe('POST /v1/deals/invalidate (the API as production wires it)', () => {
  it('drops the deals on every subscribed cache, answers what it did, and is in the OpenAPI document', async () => {
    const token = 'deal-invalidation-token-0123456789';
    const api = await startProductionApi({ prefix: uniquePrefix('dealinv-api'), token });
    const redis = testRedis();
    const subscriber = testRedis();
    // The API role invalidates under the default CACHE_KEY_PREFIX, as the worker roles cache under it.
    const cache = createDealInsightCache<Deal>({ redis, subscriber });
    const id = `D-api-${uniquePrefix('x').slice(-8)}`;
    try {
      await cache.ready();
      await cache.set(id, { id, stage: 'old' } as Deal);
      const res = await api.call('POST', '/v1/deals/invalidate', { dealIds: [id] });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { dealIds: string[]; deleted: number; receivers: number };
      expect(body).toMatchObject({ dealIds: [id], deleted: 1 });
      expect(body.receivers).toBeGreaterThanOrEqual(1);
      await subscriber.ping();
      expect(cache.peek(id)).toBeUndefined();
      expect(await redis.exists(cache.redisKey(id))).toBe(0);

      const bad = await api.call('POST', '/v1/deals/invalidate', { dealIds: ['D-1', 'D-1', "x'; DROP TABLE DEALS;--"] });
      expect(bad.status).toBe(400);
      const issues = ((await bad.json()) as { error: { issues: { path: string }[] } }).error.issues.map((i) => i.path).sort();
      expect(issues).toEqual(['dealIds[1]', 'dealIds[2]']);
      expect((await api.call('POST', '/v1/deals/invalidate', { dealIds: ['D-1'], extra: 1 })).status).toBe(400);
      expect((await api.call('POST', '/v1/deals/invalidate', { dealIds: ['D-1'] }, { authorization: 'Bearer wrong-token-wrong-token' })).status).toBe(401);

      const doc = (await (await fetch(`${api.url}/docs/json`)).json()) as {
        paths: Record<string, { post: { requestBody: { content: Record<string, { schema: { properties: object } }> }; responses: object } }>;
      };
      const op = doc.paths['/v1/deals/invalidate'].post;
      expect(Object.keys(op.requestBody.content['application/json'].schema.properties)).toEqual(['dealIds']);
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '503']));
    } finally {
      await cache.close();
      await Promise.all([redis.quit(), subscriber.quit()]);
      await api.close();
    }
  });
});
