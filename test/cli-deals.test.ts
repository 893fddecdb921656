import { createDealInsightCache } from '../src/cache';
import type { Deal } from '../src/contracts';
import { launchFleet } from './helpers/processes';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';

/**
 * `fleet deals invalidate <id…>` run as operators run it (`node bin/fleet.js`, from dist/): another process
 * than the caches it invalidates, on the configured Redis and CACHE_KEY_PREFIX.
 */

const run = (args: string[], env: Record<string, string> = {}) =>
  launchFleet(['deals', 'invalidate', ...args], { env: { REDIS_URL: testRedisUrl(), LOG_LEVEL: 'warn', ...env } }).finished(45_000);

describe('fleet deals invalidate', () => {
  it('drops the deals from Redis and from the L1 of a cache in another process, and says so', async () => {
    const prefix = `fleet:cache:${uniquePrefix('cli')}`;
    const redis = testRedis();
    const subscriber = testRedis();
    const cache = createDealInsightCache<Deal>({ redis, subscriber, prefix });
    try {
      await cache.ready();
      await cache.setMany([
        ['D-1', { id: 'D-1', stage: 'old' } as Deal],
        ['D-2', { id: 'D-2', stage: 'old' } as Deal],
      ]);
      const r = await run(['D-1', 'D-2', 'D-3'], { CACHE_KEY_PREFIX: prefix });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout.trim()).toBe('invalidated 3 deals: 2 Redis entries removed, 1 cache notified');
      await subscriber.ping();
      expect(cache.peek('D-1')).toBeUndefined();
      expect(cache.peek('D-2')).toBeUndefined();
      expect(await redis.exists(cache.redisKey('D-1'), cache.redisKey('D-2'))).toBe(0);

      const json = await run(['D-1', '--json'], { CACHE_KEY_PREFIX: prefix });
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual({ dealIds: ['D-1'], deleted: 0, receivers: 1 });
    } finally {
      await cache.close();
      await Promise.all([redis.quit(), subscriber.quit()]);
    }
  });

  it('refuses bad ids with exit code 2 and one line naming each, before touching Redis', async () => {
    const r = await run(['D-1', 'D-1', 'bad:id'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^fleet deals invalidate: invalid input: .*dealIds\[1\]: duplicate id "D-1".*/)]);
    expect(r.stderr).toMatch(/dealIds\[2\]: must be 1-64 letters/);
  });

  it('exits 1 naming the problem when Redis does not answer', async () => {
    const r = await run(['D-1'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fleet deals invalidate: cache L2 invalidate failed/);
  });
});
