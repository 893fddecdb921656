import { createEmbeddingCache } from '../src/cache';
import { embeddingKey } from '../src/cache/keys';
import { CachedLoader } from '../src/workers/cached-loader';
import { testRedis, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';

describe('CachedLoader: cache in front of a warehouse coalescer', () => {
  it('answers L1 synchronously, L2 in one round trip without waiting for misses, and writes misses back', async () => {
    const redis = testRedis();
    const cache = createEmbeddingCache({ redis, prefix: uniquePrefix('cl'), dims: 4 });
    const warehouseCalls: string[] = [];
    let release!: () => void;
    const slowWarehouse = new Promise<void>((r) => (release = r));
    const loader = new CachedLoader<string, Float32Array>({
      name: 't',
      cache,
      keyOf: (t) => embeddingKey('e5-base-v2', t),
      loadFromWarehouse: async (t) => {
        warehouseCalls.push(t);
        await slowWarehouse;
        return { value: new Float32Array([t.length, 0, 0, 1]), batch: { batchId: 'b-1', size: 1, jobs: 1 } };
      },
    });
    try {
      await cache.setMany([[embeddingKey('e5-base-v2', 'in redis'), new Float32Array([9, 9, 9, 9])]]);
      // drop it from this process's L1 so it must come from Redis
      (cache as unknown as { l1: { clear(): void } }).l1.clear();
      const miss = loader.load('not cached');
      const l2 = await loader.load('in redis'); // resolves while the miss is still waiting on the warehouse
      expect(l2.tier).toBe('l2');
      expect(Array.from(l2.value)).toEqual([9, 9, 9, 9]);
      release();
      const computed = await miss;
      expect(computed.tier).toBe('warehouse');
      expect(warehouseCalls).toEqual(['not cached']);
      // The write-back is not on the job's path: it lands shortly after.
      await waitUntil('the miss written back to the cache', () => cache.peek(embeddingKey('e5-base-v2', 'not cached')));
      const again = await loader.load('not cached');
      expect(again.tier).toBe('l1');
      expect(await redis.exists(cache.redisKey(embeddingKey('e5-base-v2', 'not cached')))).toBe(1);
    } finally {
      await loader.close();
      await cache.close();
      await redis.quit();
    }
  });
});
