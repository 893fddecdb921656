import IORedis, { type Redis } from 'ioredis';
import { type CacheStats, embeddingKey, jsonCodec, TieredCache } from '../src/cache';
import { CacheChild, waitFor } from './fixtures/cache-helpers';
import { testRedisUrl, uniquePrefix } from './helpers/redis';

type ChildStats = CacheStats & { loaded: string[][] };

describe('cache invalidation across processes', () => {
  let redis: Redis;
  let child: CacheChild;
  let cache: TieredCache<string>;
  const prefix = uniquePrefix('inv');

  beforeAll(async () => {
    redis = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    cache = new TieredCache<string>({ redis, namespace: 'deal', prefix, codec: jsonCodec(), instanceId: 'parent' });
    child = new CacheChild(testRedisUrl(), 'deal', prefix);
    await Promise.all([cache.ready(), child.request('ready')]);
  });

  afterAll(async () => {
    await child?.exit();
    await cache?.close();
    await redis?.quit();
  });

  const childStats = () => child.request<ChildStats>('stats');
  const load = async (keys: string[]) => new Map(keys.map((k) => [k, `parent:${k}`]));

  it('runs the other replica in its own process', () => {
    expect(child.pid).toBeDefined();
    expect(child.pid).not.toBe(process.pid);
  });

  it('a set in one process makes the other drop its L1 copy and read the new value', async () => {
    await cache.getMany(['D-1', 'D-2'], load);
    // The child finds both in L2, then in its own L1.
    expect(await child.request('getMany', { keys: ['D-1', 'D-2'] })).toEqual({ 'D-1': 'parent:D-1', 'D-2': 'parent:D-2' });
    await child.request('getMany', { keys: ['D-1', 'D-2'] });
    expect(await childStats()).toMatchObject({ l2Hits: 2, l1Hits: 2, misses: 0 });

    await cache.set('D-1', 'updated');
    await waitFor(async () => (await childStats()).invalidationsReceived === 1, 'the child to receive the invalidation');
    expect(await child.request('getMany', { keys: ['D-1', 'D-2'] })).toEqual({ 'D-1': 'updated', 'D-2': 'parent:D-2' });
    expect(await childStats()).toMatchObject({ l2Hits: 3, l1Hits: 3 });
  });

  it('a delete in one process makes the other load again', async () => {
    await cache.delete(['D-2']);
    await waitFor(async () => (await childStats()).invalidationsReceived === 2, 'the child to receive the delete');
    expect(await child.request('getMany', { keys: ['D-2'] })).toEqual({ 'D-2': 'child:D-2' });
    expect((await childStats()).loaded).toEqual([['D-2']]);
  });

  it('works in the other direction, and an instance ignores its own messages', async () => {
    expect(cache.peek('D-1')).toBe('updated');
    await child.request('delete', { keys: ['D-1'] });
    await waitFor(() => cache.stats().invalidationsReceived === 1, 'the parent to receive the delete');
    expect(cache.peek('D-1')).toBeUndefined();
    // The parent's own set and delete above were published too, but it counted none of them.
    expect(cache.stats().invalidationsReceived).toBe(1);
  });

  it('computes the same embedding keys in both processes', async () => {
    const pairs: Array<[string, string]> = [
      ['e5-base-v2', 'renewal is at risk'],
      ['snowflake-arctic-embed-m', 'héllo wörld 🚀 \u200f RTL'],
      ['e5-base-v2', ''],
    ];
    expect(await child.request('embeddingKeys', { pairs })).toEqual(pairs.map(([m, t]) => embeddingKey(m, t)));
  });
});
