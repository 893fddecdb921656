import IORedis, { type Redis } from 'ioredis';
import { jsonCodec, TieredCache } from '../src/cache';
import { testRedisUrl, uniquePrefix } from './helpers/redis';

/** EVAL and EVALSHA calls the test Redis has served so far: the suite runs in band, so a delta is ours. */
async function scriptCalls(admin: Redis): Promise<{ eval: number; evalsha: number }> {
  const info = await admin.info('commandstats');
  const calls = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { eval: calls('eval'), evalsha: calls('evalsha') };
}

async function delta<T>(admin: Redis, run: () => Promise<T>): Promise<{ eval: number; evalsha: number; result: T }> {
  const before = await scriptCalls(admin);
  const result = await run();
  const after = await scriptCalls(admin);
  return { eval: after.eval - before.eval, evalsha: after.evalsha - before.evalsha, result };
}

describe('cache L2 reads with TTL (the grace path) send the Lua text once per connection, then its sha', () => {
  let admin: Redis;
  let client: Redis;
  const caches: Array<TieredCache<string>> = [];

  beforeEach(() => {
    admin = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    // A fresh connection per test: on it the script has not been sent yet.
    client = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  });
  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    await Promise.all([admin.quit(), client.quit()]);
  });

  const graceCache = (prefix: string, l2BatchSize?: number) => {
    const cache = new TieredCache<string>({
      redis: client,
      namespace: 'lua',
      prefix,
      codec: jsonCodec(),
      graceMs: 60_000,
      invalidation: false,
      l2BatchSize,
      l2TimeoutMs: 10_000,
    });
    caches.push(cache);
    return cache;
  };

  it('1,000 L2 reads: at most one EVAL, every other read an EVALSHA', async () => {
    const prefix = uniquePrefix('lua-hot');
    const writer = graceCache(prefix);
    await writer.setMany(Array.from({ length: 1000 }, (_, i) => [`k${i}`, `v${i}`] as const));
    const reader = graceCache(prefix); // its own, empty L1: every lookup below is an L2 read
    const loads: string[][] = [];
    const calls = await delta(admin, async () => {
      for (let i = 0; i < 1000; i++) {
        const out = await reader.getMany([`k${i}`], async (keys) => {
          loads.push(keys);
          return new Map();
        });
        if (out.get(`k${i}`) !== `v${i}`) throw new Error(`k${i}: got ${String(out.get(`k${i}`))}`);
      }
    });
    expect(loads).toEqual([]);
    expect(reader.stats()).toMatchObject({ l2Hits: 1000, l2Errors: 0, l2Skipped: 0 });
    expect(calls.eval).toBeLessThanOrEqual(1);
    expect(calls.eval + calls.evalsha).toBe(1000);
  });

  it('a read split into several script calls in one pipeline sends the text at most once too', async () => {
    const prefix = uniquePrefix('lua-pipe');
    const writer = graceCache(prefix);
    await writer.setMany(Array.from({ length: 300 }, (_, i) => [`k${i}`, `v${i}`] as const));
    const reader = graceCache(prefix, 10);
    const calls = await delta(admin, async () => {
      for (let round = 0; round < 3; round++) {
        const keys = Array.from({ length: 100 }, (_, i) => `k${round * 100 + i}`);
        const out = await reader.getMany(keys, async () => new Map());
        expect(keys.map((k) => out.get(k))).toEqual(keys.map((k) => `v${k.slice(1)}`));
      }
    });
    expect(reader.stats()).toMatchObject({ l2Hits: 300, l2Errors: 0 });
    expect(calls.eval).toBeLessThanOrEqual(1);
    expect(calls.eval + calls.evalsha).toBe(30);
  });

  it('after SCRIPT FLUSH (a restart or failover loses scripts) reads still answer, sending the text again once', async () => {
    const prefix = uniquePrefix('lua-flush');
    const writer = graceCache(prefix);
    await writer.setMany([
      ['a', 'A'],
      ['b', 'B'],
      ['c', 'C'],
    ]);
    const reader = graceCache(prefix);
    expect((await reader.getMany(['a'], async () => new Map())).get('a')).toBe('A');
    await admin.script('FLUSH');
    const calls = await delta(admin, async () => {
      expect((await reader.getMany(['b'], async () => new Map())).get('b')).toBe('B');
      expect((await reader.getMany(['c'], async () => new Map())).get('c')).toBe('C');
    });
    expect(reader.stats()).toMatchObject({ l2Hits: 3, l2Errors: 0 });
    // EVALSHA (NOSCRIPT), EVAL with the text; then EVALSHA again.
    expect(calls.eval).toBe(1);
    expect(calls.evalsha).toBe(2);
  });

  it('after SCRIPT FLUSH a pipelined read (several script calls) still answers every key', async () => {
    const prefix = uniquePrefix('lua-flush-pipe');
    const writer = graceCache(prefix);
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    await writer.setMany(keys.map((k) => [k, `v:${k}`] as const));
    const reader = graceCache(prefix, 4); // 12 keys: three script calls in one pipeline
    expect((await reader.getMany(['k0'], async () => new Map())).get('k0')).toBe('v:k0');
    await admin.script('FLUSH');
    const calls = await delta(admin, () => reader.getMany(keys.slice(1), async () => new Map()));
    expect([...calls.result.values()]).toEqual(keys.slice(1).map((k) => `v:${k}`));
    expect(reader.stats()).toMatchObject({ l2Hits: 12, l2Errors: 0 });
    expect(calls.eval).toBe(1);
  });
});
