import IORedis, { type Redis } from 'ioredis';
import { freePort, type PrivateRedis, startPrivateRedis } from '../src/app/redis-server';
import { type CacheEvent, CacheUnavailableError, jsonCodec, type LoadMany, TieredCache } from '../src/cache';
import { sleep, waitFor } from './fixtures/cache-helpers';
import { uniquePrefix } from './helpers/redis';

/** A client like the app's: commands wait for a reconnect (so only the cache's own deadline bounds them). */
function appLikeClient(url: string): Redis {
  const client = new IORedis(url, { maxRetriesPerRequest: null, retryStrategy: () => 50, connectTimeout: 1_000 });
  client.on('error', () => undefined);
  return client;
}

describe('cache degrades when Redis is down or slow, and recovers by itself', () => {
  const servers: PrivateRedis[] = [];
  const clients: Redis[] = [];
  const caches: Array<TieredCache<string>> = [];

  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    for (const c of clients.splice(0)) c.disconnect();
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  function makeCache(redis: Redis, events: CacheEvent[]): TieredCache<string> {
    const cache = new TieredCache<string>({
      redis,
      namespace: 'deg',
      prefix: uniquePrefix('deg'),
      codec: jsonCodec(),
      l2TimeoutMs: 100,
      l2BreakerThreshold: 2,
      l2BreakerCooldownMs: 250,
      onEvent: (e) => events.push(e),
    });
    caches.push(cache);
    return cache;
  }

  const calls: string[][] = [];
  const load: LoadMany<string> = async (keys) => {
    calls.push(keys);
    return new Map(keys.map((k) => [k, `v:${k}`]));
  };
  const mustNotLoad: LoadMany<string> = async (keys) => {
    throw new Error(`unexpected load of ${keys.join(',')}`);
  };
  beforeEach(() => void calls.splice(0));

  it('keeps answering from L1 and the loader while Redis is stopped, then uses Redis again when it is back', async () => {
    const server = await startPrivateRedis();
    servers.push(server);
    const client = appLikeClient(server.url);
    clients.push(client);
    const events: CacheEvent[] = [];
    const cache = makeCache(client, events);
    await cache.ready();
    const warm = ['a', 'b', 'c'];
    await cache.getMany(warm, load);
    calls.splice(0);

    await server.stop();
    await waitFor(() => client.status !== 'ready', 'the client to notice');

    // L1 still answers, without touching Redis or the loader.
    expect([...(await cache.getMany(warm, mustNotLoad)).values()]).toEqual(['v:a', 'v:b', 'v:c']);
    // Misses go to the loader; the L2 read fails fast (the client is not connected) instead of queueing.
    for (const key of ['n1', 'n2', 'n3']) expect((await cache.getMany([key], load)).get(key)).toBe(`v:${key}`);
    expect(calls).toEqual([['n1'], ['n2'], ['n3']]);
    const down = cache.stats();
    expect(down.breaker).toBe('open');
    expect(down.l2Errors).toBeGreaterThanOrEqual(2);
    expect(down.l2Skipped).toBeGreaterThanOrEqual(1);
    expect(events).toContainEqual(expect.objectContaining({ type: 'circuit', state: 'open' }));
    // An explicit write says that it could not reach the other replicas.
    await expect(cache.set('x', 'y')).rejects.toBeInstanceOf(CacheUnavailableError);
    expect(cache.peek('x')).toBe('y');

    // Same port, empty data: the client reconnects; the subscriber re-subscribes and L1 is dropped
    // (invalidations sent meanwhile were lost).
    servers.push(await startPrivateRedis({ port: server.port }));
    await waitFor(() => client.status === 'ready', 'the client to reconnect');
    await waitFor(() => events.some((e) => e.type === 'resubscribed'), 'the subscriber to re-subscribe', 8_000);
    expect(cache.peek('a')).toBeUndefined();

    // After the cool-down one probe goes through and closes the circuit; writes reach Redis again.
    let i = 0;
    await waitFor(async () => {
      await cache.getMany([`probe${i++}`], load);
      return cache.stats().breaker === 'closed';
    }, 'the circuit to close');
    expect(events).toContainEqual(expect.objectContaining({ type: 'circuit', state: 'closed' }));
    await cache.getMany(['after'], load);
    expect(await client.exists(cache.redisKey('after'))).toBe(1);
  });

  it('starts and serves with nothing listening on the Redis port, and picks Redis up once it appears', async () => {
    const port = await freePort();
    const client = appLikeClient(`redis://127.0.0.1:${port}`);
    clients.push(client);
    const events: CacheEvent[] = [];
    const cache = makeCache(client, events);
    const out = await cache.getMany(['a', 'b'], load);
    expect([...out.values()]).toEqual(['v:a', 'v:b']);
    expect(cache.peek('a')).toBe('v:a');
    await cache.getMany(['c'], load);
    expect(cache.stats().l2Errors + cache.stats().l2Skipped).toBeGreaterThanOrEqual(2);

    servers.push(await startPrivateRedis({ port }));
    await waitFor(() => client.status === 'ready', 'the client to connect');
    let i = 0;
    await waitFor(async () => {
      await cache.getMany([`probe${i++}`], load);
      return cache.stats().breaker === 'closed';
    }, 'the circuit to close');
    await cache.ready(); // the subscription went through once Redis appeared
    await cache.getMany(['d'], load);
    expect(await client.exists(cache.redisKey('d'))).toBe(1);
  });

  it('a slow Redis costs one deadline per call, not the stall', async () => {
    const server = await startPrivateRedis();
    servers.push(server);
    const client = appLikeClient(server.url);
    const blocker = appLikeClient(server.url);
    clients.push(client, blocker);
    const events: CacheEvent[] = [];
    const cache = makeCache(client, events);
    await cache.ready();
    await cache.getMany(['warm'], load);

    // A script that keeps the server busy for 800 ms: every other command waits behind it.
    let stalled = true;
    const stall = blocker
      .eval("local t = redis.call('TIME'); local s = t[1] * 1e6 + t[2]; repeat local n = redis.call('TIME') until n[1] * 1e6 + n[2] - s > 800000; return 1", 0)
      .then(() => {
        stalled = false;
      });
    await sleep(30);
    const out = await cache.getMany(['warm', 'cold'], load);
    expect(stalled).toBe(true); // answered while Redis was still busy
    expect([...out.values()]).toEqual(['v:warm', 'v:cold']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'l2-error', op: 'read', reason: 'timeout' }));
    await stall;
  });
});
