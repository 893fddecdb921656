import IORedis, { type Redis } from 'ioredis';
import { CACHE_DEFAULTS, CacheClosedError, createDealInsightCache, createEmbeddingCache, jsonCodec, TieredCache, type TieredCacheOptions } from '../src/cache';
import { testRedisUrl, uniquePrefix } from './helpers/redis';

describe('cache options and misuse', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    await redis.quit();
  });

  const base = (): TieredCacheOptions<string> => ({ redis, namespace: 'opts', codec: jsonCodec(), invalidation: false, prefix: uniquePrefix('opts') });

  it.each([
    ['l1MaxEntries', 0, /option `l1MaxEntries` must be an integer in \[1, .*got 0/],
    ['l1MaxBytes', -5, /option `l1MaxBytes` .* got -5/],
    ['l1TtlMs', 1.5, /option `l1TtlMs` .* got 1.5/],
    ['l2TtlMs', Number.NaN, /option `l2TtlMs` .* got NaN/],
    ['graceMs', -1, /option `graceMs`/],
    ['l2TimeoutMs', 0, /option `l2TimeoutMs`/],
    ['l2BatchSize', 0, /option `l2BatchSize`/],
    ['l2BreakerThreshold', 0, /option `l2BreakerThreshold`/],
    ['l2BreakerCooldownMs', 0, /option `l2BreakerCooldownMs`/],
    ['namespace', 'a:b', /option `namespace` .* got "a:b"/],
    ['namespace', '', /option `namespace`/],
    ['prefix', 'fleet*', /option `prefix` .* got "fleet\*"/],
    ['version', 'v 1', /option `version`/],
    ['invalidation', 'yes', /option `invalidation` must be a boolean, got "yes"/],
    ['codec', { encode: 1 }, /option `codec` must be a CacheCodec/],
    ['redis', 'redis://localhost', /option `redis` must be an ioredis client, got "redis:\/\/localhost"/],
    ['onEvent', 42, /option `onEvent` must be a function, got 42/],
    ['instanceId', '', /option `instanceId`/],
  ])('rejects %s = %p with an error naming it', (name, value, message) => {
    expect(() => new TieredCache({ ...base(), [name]: value } as TieredCacheOptions<string>)).toThrow(message);
  });

  it('rejects using the data connection as the subscriber', () => {
    expect(() => new TieredCache({ ...base(), invalidation: true, subscriber: redis })).toThrow(/option `subscriber`/);
  });

  it('rejects a client with a keyPrefix (keys would not be where redisKey() says)', () => {
    const prefixed = new IORedis(testRedisUrl(), { keyPrefix: 'app:', lazyConnect: true });
    expect(() => new TieredCache({ ...base(), redis: prefixed })).toThrow(/option `redis` must be a client without `keyPrefix`.*got "app:"/);
    prefixed.disconnect();
  });

  it('documents its defaults, and undefined means default', async () => {
    const cache = new TieredCache({ ...base(), l1TtlMs: undefined });
    expect(cache.options).toMatchObject({ l1TtlMs: CACHE_DEFAULTS.l1TtlMs, l2TimeoutMs: 100, graceMs: 0, version: 'v1' });
    expect(Object.isFrozen(cache.options)).toBe(true);
    await cache.close();
  });

  it('presets set namespaces, codecs and TTLs, and accept overrides', async () => {
    const emb = createEmbeddingCache({ redis, invalidation: false, l1TtlMs: 1234 });
    const deals = createDealInsightCache({ redis, invalidation: false });
    expect(emb.redisKey('h')).toBe('fleet:cache:v1:emb:h');
    expect(emb.options).toMatchObject({ l1TtlMs: 1234, codec: expect.objectContaining({ name: 'float32le(768)' }) });
    expect(deals.redisKey('D-1')).toBe('fleet:cache:v1:deal:D-1');
    expect(deals.options.graceMs).toBeGreaterThan(0);
    await Promise.all([emb.close(), deals.close()]);
  });

  it('rejects bad keys and a loader that does not return a Map', async () => {
    const cache = new TieredCache(base());
    await expect(cache.getMany([''], async () => new Map())).rejects.toThrow(/cache key/);
    await expect(cache.getMany(['x'.repeat(2000)], async () => new Map())).rejects.toThrow(/1-1024 characters/);
    await expect(cache.getMany([42 as unknown as string], async () => new Map())).rejects.toThrow(/got number/);
    const out = await cache.getMany(['k'], async () => ({ k: 'v' }) as unknown as Map<string, string>);
    expect((out.get('k') as Error).message).toMatch(/must return a Map/);
    await cache.close();
  });

  it('does not cache a value its codec cannot encode, but still returns it', async () => {
    const cache = new TieredCache(base());
    const out = await cache.getMany(['k'], async () => new Map([['k', undefined as unknown as string]]));
    expect(out.get('k')).toBeInstanceOf(Error); // undefined means "no result"
    const fn = (() => 1) as unknown as string;
    const out2 = await cache.getMany(['f'], async () => new Map([['f', fn]]));
    expect(out2.get('f')).toBe(fn);
    expect(cache.peek('f')).toBeUndefined();
    await cache.close();
  });

  it('close() is idempotent, never quits the injected client, and later use is rejected', async () => {
    const cache = new TieredCache({ ...base(), invalidation: true });
    await cache.ready();
    const [a, b] = [cache.close(), cache.close()];
    expect(a).toBe(b);
    await a;
    await cache.close();
    expect(redis.status).toBe('ready');
    expect(await redis.ping()).toBe('PONG');
    await expect(cache.getMany(['k'], async () => new Map())).rejects.toBeInstanceOf(CacheClosedError);
    await expect(cache.set('k', 'v')).rejects.toBeInstanceOf(CacheClosedError);
    await expect(cache.ready()).resolves.toBeUndefined(); // it was confirmed before close
    expect(cache.peek('k')).toBeUndefined();
  });

  it('ready() rejects when the cache is closed before any subscription was confirmed', async () => {
    const unreachable = new IORedis('redis://127.0.0.1:1', { lazyConnect: true, retryStrategy: () => null });
    unreachable.on('error', () => undefined);
    const cache = new TieredCache({ ...base(), redis: unreachable, invalidation: true });
    const ready = expect(cache.ready()).rejects.toBeInstanceOf(CacheClosedError);
    await cache.close();
    await ready;
    unreachable.disconnect();
  });

  it('with an injected subscriber, close() only unsubscribes its own channel', async () => {
    const subscriber = new IORedis(testRedisUrl());
    try {
      const one = new TieredCache({ ...base(), namespace: 'one', invalidation: true, subscriber });
      const two = new TieredCache({ ...base(), namespace: 'two', invalidation: true, subscriber });
      await Promise.all([one.ready(), two.ready()]);
      await one.close();
      expect(subscriber.status).toBe('ready');
      const channels = (await redis.pubsub('CHANNELS', `${two.options.keySpace}*`)) as string[];
      expect(channels).toEqual([two.options.channel]);
      await two.close();
    } finally {
      subscriber.disconnect();
    }
  });
});
