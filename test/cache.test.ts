import IORedis, { type Redis } from 'ioredis';
import {
  type CacheEvent,
  dealKey,
  embeddingKey,
  float32Codec,
  jsonCodec,
  L1_ENTRY_OVERHEAD_BYTES,
  type LoadMany,
  MissingLoadResultError,
  TieredCache,
  type TieredCacheOptions,
} from '../src/cache';
import { countingClient, monitorCommands, sleep, waitFor } from './fixtures/cache-helpers';
import { testRedisUrl, uniquePrefix } from './helpers/redis';

let redis: Redis;
const caches: Array<TieredCache<unknown>> = [];

beforeAll(() => {
  redis = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
});
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await redis.quit();
});

/** A cache on its own prefix (so tests never share keys); closed after each test. */
function makeCache<V>(opts: Partial<TieredCacheOptions<V>> & Pick<TieredCacheOptions<V>, 'codec'>, prefix = uniquePrefix('cache')): TieredCache<V> {
  const cache = new TieredCache<V>({ redis, namespace: 'test', prefix, ...opts });
  caches.push(cache as TieredCache<unknown>);
  return cache;
}

/** A loader that records each call and answers `v:<key>` (or what `answer` says). */
function recordingLoader<V = string>(answer: (key: string) => V | Error = (k) => `v:${k}` as unknown as V, delayMs = 0) {
  const calls: string[][] = [];
  const load: LoadMany<V> = async (keys) => {
    calls.push([...keys]);
    if (delayMs) await sleep(delayMs);
    return new Map(keys.map((k) => [k, answer(k)]));
  };
  return { load, calls };
}

const keysOf = (n: number, tag = 'k') => Array.from({ length: n }, (_, i) => `${tag}${i}`);

describe('cache keys', () => {
  it('embeddingKey is sha256 of the length-prefixed model and the text, base64url (fixed vectors)', () => {
    // printf '10:e5-base-v2renewal is at risk' | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='
    expect(embeddingKey('e5-base-v2', 'renewal is at risk')).toBe('s_bprISJAwg8m6KKSJr8cqkRTi6HUzoaI3Iki6grSZ8');
    expect(embeddingKey('e5-base-v2', 'héllo wörld 🚀')).toBe('nOgJ0HrnzlVaa9PNfYfsPNjkLnGuVEoH6-gxnwmRF5Y');
  });

  it('embeddingKey cannot be confused by moving characters between model and text', () => {
    expect(embeddingKey('ab', 'c')).not.toBe(embeddingKey('a', 'bc'));
    expect(embeddingKey('a:1', 'x')).not.toBe(embeddingKey('a', ':1x'));
    expect(embeddingKey('m', '')).not.toBe(embeddingKey('m', ' '));
    expect(() => embeddingKey('', 'x')).toThrow(/model/);
  });

  it('dealKey accepts contract deal ids and rejects anything that could escape the key space', () => {
    expect(dealKey('D-42_x')).toBe('D-42_x');
    for (const bad of ['', 'a:b', 'a*', 'a b', 'x'.repeat(65)]) expect(() => dealKey(bad)).toThrow(RangeError);
  });

  it('redis keys are namespaced and versioned', () => {
    const cache = makeCache({ codec: jsonCodec() }, 'fleet:cache');
    expect(cache.redisKey('abc')).toBe('fleet:cache:v1:test:abc');
  });
});

describe('codecs', () => {
  it('float32Codec stores 768 dims as 3,072 raw little-endian bytes and round-trips exactly', () => {
    const codec = float32Codec(768);
    const v = Float32Array.from({ length: 768 }, (_, i) => Math.sin(i) * 1e-3);
    const raw = codec.encode(v) as Buffer;
    expect(raw.length).toBe(3072);
    expect(raw.readFloatLE(4)).toBe(v[1]);
    // An unaligned view (as ioredis may hand out) still decodes into a fresh, aligned array.
    const unaligned = Buffer.concat([Buffer.from([1]), raw]).subarray(1);
    const back = codec.decode(unaligned);
    expect(Array.from(back)).toEqual(Array.from(v));
    expect(back.buffer).not.toBe(unaligned.buffer);
    expect(() => codec.decode(raw.subarray(4))).toThrow(/3072 bytes/);
    expect(() => codec.encode(new Float32Array(3))).toThrow(/Float32Array\(768\)/);
  });
});

describe('L1 (in process)', () => {
  it('serves a fresh entry synchronously with peek, and expires it after l1TtlMs', async () => {
    const cache = makeCache<string>({ codec: jsonCodec(), l1TtlMs: 60 });
    const { load } = recordingLoader();
    await cache.getMany(['a'], load);
    expect(cache.peek('a')).toBe('v:a');
    expect(cache.peek('zz')).toBeUndefined();
    await sleep(120);
    expect(cache.peek('a')).toBeUndefined();
    // Still in L2: the next lookup is an L2 hit, not a load.
    const again = recordingLoader();
    expect((await cache.getMany(['a'], again.load)).get('a')).toBe('v:a');
    expect(again.calls).toEqual([]);
    expect(cache.stats()).toMatchObject({ l1Hits: 1, l2Hits: 1, misses: 1 });
  });

  it('is bounded by entries, evicting the least recently used', async () => {
    const cache = makeCache<string>({ codec: jsonCodec(), l1MaxEntries: 3 });
    const { load } = recordingLoader();
    await cache.getMany(['a', 'b', 'c'], load);
    expect(cache.peek('a')).toBe('v:a'); // a becomes most recently used; b is now the oldest
    await cache.getMany(['d'], load);
    expect(cache.peek('b')).toBeUndefined();
    expect(['a', 'c', 'd'].map((k) => cache.peek(k))).toEqual(['v:a', 'v:c', 'v:d']);
    expect(cache.stats()).toMatchObject({ l1Entries: 3, evictions: 1 });
  });

  it('is bounded by bytes as sized by the codec', async () => {
    const entryBytes = 256 * 4 + L1_ENTRY_OVERHEAD_BYTES;
    const cache = makeCache<Float32Array>({ codec: float32Codec(256), l1MaxEntries: 1000, l1MaxBytes: entryBytes * 3 + 100 });
    const { load } = recordingLoader<Float32Array>(() => new Float32Array(256).fill(1));
    await cache.getMany(keysOf(5), load);
    const s = cache.stats();
    expect(s.l1Entries).toBe(3);
    expect(s.l1Bytes).toBe(entryBytes * 3);
    expect(s.evictions).toBe(2);
    expect(cache.peek('k0')).toBeUndefined();
    expect(cache.peek('k4')).toBeInstanceOf(Float32Array);
  });
});

describe('L2 (Redis)', () => {
  it('stores entries with a TTL: PX l2TtlMs, gone afterwards', async () => {
    const cache = makeCache<string>({ codec: jsonCodec(), l2TtlMs: 150 });
    await cache.getMany(['a'], recordingLoader().load);
    const pttl = await redis.pttl(cache.redisKey('a'));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(150);
    await sleep(200);
    expect(await redis.exists(cache.redisKey('a'))).toBe(0);
  });

  it('stores embeddings as raw float32 bytes (3 KB), readable by another instance', async () => {
    const prefix = uniquePrefix('emb');
    const a = makeCache<Float32Array>({ codec: float32Codec() }, prefix);
    const v = Float32Array.from({ length: 768 }, (_, i) => i / 768);
    const key = embeddingKey('e5-base-v2', 'renewal is at risk');
    await a.set(key, v);
    const raw = await redis.getBuffer(a.redisKey(key));
    expect(raw?.length).toBe(3072);
    const b = makeCache<Float32Array>({ codec: float32Codec() }, prefix);
    const got = await b.get(key, async () => {
      throw new Error('must not load');
    });
    expect(Array.from(got)).toEqual(Array.from(v));
  });
});

describe('getMany', () => {
  it('reads all L1 misses from L2 in ONE round trip and calls the loader once with only the missing keys', async () => {
    const prefix = uniquePrefix('rt');
    const writer = makeCache<string>({ codec: jsonCodec() }, prefix);
    await writer.setMany(keysOf(200).map((k) => [k, `stored:${k}`] as const));

    const { redis: counted, writes } = await countingClient(testRedisUrl());
    const monitor = await monitorCommands(testRedisUrl(), prefix);
    try {
      const reader = new TieredCache<string>({ redis: counted, namespace: 'test', prefix, codec: jsonCodec(), invalidation: false });
      caches.push(reader as TieredCache<unknown>);
      const warm = recordingLoader();
      await reader.getMany(keysOf(50), warm.load); // 50 keys now in the reader's L1
      expect(warm.calls).toEqual([]);

      monitor.reset();
      const before = writes();
      const { load, calls } = recordingLoader();
      const keys = [...keysOf(300), 'k7', 'k250']; // 50 in L1, 150 in L2 only, 100 nowhere; duplicates ignored
      const out = await reader.getMany(keys, load);
      await monitor.sync();

      expect(writes() - before).toBe(2); // one read round trip, one write-back round trip
      expect(calls).toEqual([keysOf(300).slice(200)]);
      expect([...out.keys()]).toEqual(keysOf(300));
      expect(out.get('k0')).toBe('stored:k0');
      expect(out.get('k199')).toBe('stored:k199');
      expect(out.get('k299')).toBe('v:k299');
      const commands = monitor.commands();
      expect(commands.filter((c) => c.name === 'mget')).toHaveLength(1);
      expect(commands.find((c) => c.name === 'mget')?.args).toHaveLength(1 + 250);
      expect(commands.filter((c) => c.name === 'set')).toHaveLength(100);
      expect(commands.filter((c) => c.name === 'get')).toHaveLength(0);
      expect(reader.stats()).toMatchObject({ l1Hits: 50, l2Hits: 200, misses: 100, loads: 1 });

      // Everything is in L1 now: no Redis traffic, no load.
      const again = writes();
      await reader.getMany(keys, load);
      expect(writes()).toBe(again);
      expect(calls).toHaveLength(1);
    } finally {
      await monitor.close();
      await counted.quit();
    }
  });

  it('splits a large batch into several MGETs that still share one round trip', async () => {
    const prefix = uniquePrefix('chunk');
    const { redis: counted, writes } = await countingClient(testRedisUrl());
    const monitor = await monitorCommands(testRedisUrl(), prefix);
    try {
      const cache = new TieredCache<string>({ redis: counted, namespace: 'test', prefix, codec: jsonCodec(), invalidation: false, l2BatchSize: 64 });
      caches.push(cache as TieredCache<unknown>);
      const before = writes();
      await cache.getMany(keysOf(300), recordingLoader().load);
      await monitor.sync();
      expect(monitor.commands().filter((c) => c.name === 'mget')).toHaveLength(5);
      expect(writes() - before).toBe(2);
    } finally {
      await monitor.close();
      await counted.quit();
    }
  });

  it('returns per-key Errors without caching them; a missing result is an Error too', async () => {
    const cache = makeCache<string>({ codec: jsonCodec() });
    const bad = new Error('deal D-9 is broken');
    const first = recordingLoader<string>((k) => (k === 'bad' ? bad : `v:${k}`));
    const out = await cache.getMany(['ok', 'bad'], first.load);
    expect(out.get('ok')).toBe('v:ok');
    expect(out.get('bad')).toBe(bad);
    expect(await redis.exists(cache.redisKey('bad'))).toBe(0);

    const second = recordingLoader<string>((k) => `v:${k}`);
    const out2 = await cache.getMany(['ok', 'bad'], second.load);
    expect(second.calls).toEqual([['bad']]);
    expect(out2.get('bad')).toBe('v:bad');

    const partial: LoadMany<string> = async () => new Map();
    const out3 = await cache.getMany(['gone'], partial);
    expect(out3.get('gone')).toBeInstanceOf(MissingLoadResultError);
    expect(cache.stats()).toMatchObject({ loadErrors: 2, loads: 3 });
  });

  it("hands a throwing loader's error to every missing key and caches none of them", async () => {
    const cache = makeCache<string>({ codec: jsonCodec() });
    await cache.getMany(['hit'], recordingLoader().load);
    const out = await cache.getMany(['hit', 'x', 'y'], async () => {
      throw new Error('warehouse down');
    });
    expect(out.get('hit')).toBe('v:hit');
    expect((out.get('x') as Error).message).toBe('warehouse down');
    expect((out.get('y') as Error).message).toBe('warehouse down');
    const { load, calls } = recordingLoader();
    await cache.getMany(['x', 'y'], load);
    expect(calls).toEqual([['x', 'y']]);
    await expect(cache.get('z', async () => Promise.reject(new Error('nope')))).rejects.toThrow('nope');
  });

  it('single-flight: overlapping calls load each key once, later callers wait for the first', async () => {
    const cache = makeCache<string>({ codec: jsonCodec() });
    const { load, calls } = recordingLoader(undefined, 50);
    const [a, b] = await Promise.all([cache.getMany(['a', 'b', 'c'], load), cache.getMany(['b', 'c', 'd'], load)]);
    expect(calls).toEqual([['a', 'b', 'c'], ['d']]);
    expect([...a.values()]).toEqual(['v:a', 'v:b', 'v:c']);
    expect([...b.values()]).toEqual(['v:b', 'v:c', 'v:d']);
    expect(cache.stats().joined).toBe(2);

    let loads = 0;
    const values = await Promise.all(
      Array.from({ length: 20 }, () =>
        cache.get('same', async (k) => {
          loads++;
          await sleep(20);
          return `v:${k}`;
        }),
      ),
    );
    expect(loads).toBe(1);
    expect(new Set(values)).toEqual(new Set(['v:same']));
    expect(cache.stats().inFlight).toBe(0);
  });

  it('joiners of a failed load get the same Error, and the next call loads again', async () => {
    const cache = makeCache<string>({ codec: jsonCodec() });
    const err = new Error('boom');
    const slowFail = recordingLoader<string>(() => err, 30);
    const [x, y] = await Promise.all([cache.getMany(['k'], slowFail.load), cache.getMany(['k'], slowFail.load)]);
    expect(slowFail.calls).toHaveLength(1);
    expect(x.get('k')).toBe(err);
    expect(y.get('k')).toBe(err);
    const ok = recordingLoader();
    expect((await cache.getMany(['k'], ok.load)).get('k')).toBe('v:k');
  });

  it('does not cache a value whose key was deleted while it was being loaded', async () => {
    const cache = makeCache<string>({ codec: jsonCodec() });
    const pending = cache.getMany(['k'], recordingLoader(() => 'old', 50).load);
    await sleep(10);
    await cache.delete('k');
    expect((await pending).get('k')).toBe('old'); // the caller still gets its answer…
    expect(cache.peek('k')).toBeUndefined(); // …but it is not cached
    expect(await redis.exists(cache.redisKey('k'))).toBe(0);
  });
});

describe('set / delete / clear', () => {
  it('setMany writes both tiers in one round trip; delete removes both', async () => {
    const prefix = uniquePrefix('sd');
    const { redis: counted, writes } = await countingClient(testRedisUrl());
    try {
      const cache = new TieredCache<string>({ redis: counted, namespace: 'test', prefix, codec: jsonCodec() });
      caches.push(cache as TieredCache<unknown>);
      const before = writes();
      await cache.setMany(keysOf(100).map((k) => [k, `s:${k}`] as const));
      expect(writes() - before).toBe(1);
      expect(cache.peek('k5')).toBe('s:k5');
      expect(await redis.get(cache.redisKey('k5'))).toBe('"s:k5"');
      await cache.delete(['k5', 'k6']);
      expect(writes() - before).toBe(2);
      expect(cache.peek('k5')).toBeUndefined();
      expect(await redis.exists(cache.redisKey('k5'), cache.redisKey('k6'))).toBe(0);
      expect(await cache.clear()).toBe(98);
      expect(await redis.exists(cache.redisKey('k7'))).toBe(0);
      expect(cache.stats().l1Entries).toBe(0);
    } finally {
      await counted.quit();
    }
  });
});

describe('grace (stale-while-revalidate)', () => {
  it('serves an L1 entry past its TTL at once and refreshes it once in the background', async () => {
    const cache = makeCache<string>({ codec: jsonCodec(), l1TtlMs: 80, l2TtlMs: 80, graceMs: 2_000 });
    let version = 1;
    const { load, calls } = recordingLoader((k) => `${k}@${version}`, 30);
    await cache.getMany(['d'], load);
    await sleep(120);
    version = 2;
    expect(cache.peek('d')).toBeUndefined(); // peek returns fresh entries only
    const [a, b] = await Promise.all([cache.getMany(['d'], load), cache.getMany(['d'], load)]);
    expect(a.get('d')).toBe('d@1');
    expect(b.get('d')).toBe('d@1');
    expect(cache.stats().staleServed).toBe(2);
    await waitFor(() => calls.length === 2, 'the background refresh');
    expect(calls).toEqual([['d'], ['d']]);
    await waitFor(() => cache.peek('d') === 'd@2', 'the refreshed value in L1');
    expect(cache.stats().refreshes).toBe(1);
  });

  it('keeps serving the stale value when the refresh fails, and backs off before asking the loader again', async () => {
    const cache = makeCache<string>({ codec: jsonCodec(), l1TtlMs: 50, l2TtlMs: 50, graceMs: 5_000, refreshBackoffMs: 150 });
    await cache.getMany(['d'], recordingLoader(() => 'old').load);
    await sleep(80);
    const failing = recordingLoader<string>(() => new Error('warehouse down'));
    expect((await cache.getMany(['d'], failing.load)).get('d')).toBe('old');
    await waitFor(() => failing.calls.length === 1 && cache.stats().inFlight === 0, 'the failed refresh');
    for (let i = 0; i < 5; i++) expect((await cache.getMany(['d'], failing.load)).get('d')).toBe('old');
    expect(failing.calls).toHaveLength(1); // backing off
    await sleep(200);
    const ok = recordingLoader(() => 'new');
    expect((await cache.getMany(['d'], ok.load)).get('d')).toBe('old');
    await waitFor(() => cache.peek('d') === 'new', 'the refresh after the back-off');
    expect(cache.stats().loadErrors).toBe(1);
  });

  it('serves an L2 entry within grace to a fresh instance, refreshes it, and loads normally after grace', async () => {
    const prefix = uniquePrefix('grace');
    const opts = { codec: jsonCodec<string>(), l1TtlMs: 60_000, l2TtlMs: 80, graceMs: 300 };
    const a = makeCache<string>(opts, prefix);
    await a.getMany(['d'], recordingLoader(() => 'first').load);
    await sleep(130); // past the L2 TTL, within grace
    const events: CacheEvent[] = [];
    const b = makeCache<string>({ ...opts, onEvent: (e) => events.push(e) }, prefix);
    const { load, calls } = recordingLoader(() => 'second', 20);
    expect((await b.getMany(['d'], load)).get('d')).toBe('first');
    expect(b.stats()).toMatchObject({ l2Hits: 1, staleServed: 1, misses: 0 });
    await waitFor(() => events.some((e) => e.type === 'refreshed'), 'the refresh');
    expect(calls).toEqual([['d']]);
    expect(b.peek('d')).toBe('second');
    const pttl = await redis.pttl(b.redisKey('d'));
    expect(pttl).toBeGreaterThan(300); // rewritten with ttl + grace

    await sleep(450); // past ttl + grace: nothing left anywhere but b's L1 (which is still fresh)
    const c = makeCache<string>(opts, prefix);
    const third = recordingLoader(() => 'third');
    expect((await c.getMany(['d'], third.load)).get('d')).toBe('third');
    expect(third.calls).toEqual([['d']]);
  });
});

describe('events', () => {
  it('a throwing listener does not break the cache', async () => {
    const cache = makeCache<string>({
      codec: jsonCodec(),
      onEvent: () => {
        throw new Error('listener bug');
      },
    });
    const out = await cache.getMany(
      ['a', 'b'],
      async () =>
        new Map<string, string | Error>([
          ['a', 'v'],
          ['b', new Error('x')],
        ]),
    );
    expect(out.get('a')).toBe('v');
    expect(cache.stats().listenerErrors).toBeGreaterThan(0);
  });
});
