import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import IORedis, { type Redis } from 'ioredis';
import { float32Codec, type LoadMany, TieredCache } from '../cache';
import { percentile, round } from './stats';

/**
 * `runCacheTiersBench`: the fleet's batch path through two two-tier caches against the same Redis —
 * our `TieredCache` (lru-cache + ioredis, `getMany`) and bentocache 1.6 (memory L1 + Redis L2 + Redis bus,
 * `getOrSet` per key, as it has no batch read). Batches mix L1 hits, L2-only hits and misses; the loader
 * is instant (a synthetic vector), so the figures are the caches' own cost, not the warehouse's.
 *
 * Round trips are counted on each reader's data connection (one socket write = one request: ioredis writes
 * a whole pipeline at once); bus publishes (another connection) come from the server's commandstats, so
 * the Redis should serve only this benchmark while it runs.
 */
export interface CacheTiersBenchOptions {
  redisUrl: string;
  /** Hot keys kept in the reader's L1, from which each batch's L1 share is drawn. Default 2,000. */
  keys?: number;
  /** Keys per batch. Default 500. */
  batch?: number;
  /** Measured batches per implementation (after 2 unmeasured warm-up batches). Default 20. */
  batches?: number;
  /** Share of each batch in the reader's L1. Default 0.5. */
  l1Share?: number;
  /** Share of each batch in Redis only. Default 0.35 (so ~85% hits). */
  l2Share?: number;
  /** Single-key lookups measured for the p50 figures. Default 500. */
  samples?: number;
  /** Vector length. Default 768. */
  dims?: number;
  /** Progress lines. Default none. */
  log?: (line: string) => void;
}

interface Impl {
  name: string;
  /** Values for all keys through the implementation's batch path. */
  getBatch(keys: string[]): Promise<Float32Array[]>;
  getOne(key: string): Promise<Float32Array>;
  /** Synchronous L1 lookup, where the implementation has one. */
  peekOne?(key: string): Float32Array | undefined;
  /** Puts entries into Redis through another instance, so they are L2-only for the reader. */
  seedL2(keys: string[]): Promise<void>;
  loaderCalls(): number;
  /** Bytes one vector takes in Redis. */
  storedBytes(key: string): Promise<number>;
  close(): Promise<void>;
}

interface Counted {
  redis: Redis;
  writes: () => number;
  commands: () => number;
}

const dynamicImport = new Function('s', 'return import(s)') as (s: string) => Promise<unknown>;

export async function runCacheTiersBench(opts: CacheTiersBenchOptions): Promise<Record<string, number | string>> {
  const o = { keys: 2_000, batch: 500, batches: 20, l1Share: 0.5, l2Share: 0.35, samples: 500, dims: 768, log: () => undefined, ...opts };
  for (const name of ['keys', 'batch', 'batches', 'samples', 'dims'] as const) {
    if (!Number.isInteger(o[name]) || o[name] < 1) throw new RangeError(`runCacheTiersBench: option \`${name}\` must be an integer >= 1, got ${o[name]}`);
  }
  if (!(o.l1Share >= 0 && o.l2Share >= 0 && o.l1Share + o.l2Share <= 1)) {
    throw new RangeError(`runCacheTiersBench: l1Share + l2Share must be within [0, 1], got ${o.l1Share} + ${o.l2Share}`);
  }
  const nL1 = Math.min(o.keys, Math.round(o.batch * o.l1Share));
  const nL2 = Math.round(o.batch * o.l2Share);
  const nMiss = o.batch - nL1 - nL2;
  const run = randomBytes(4).toString('hex');
  const admin = new IORedis(o.redisUrl, { maxRetriesPerRequest: 3 });
  const result: Record<string, number | string> = {
    batch_keys: o.batch,
    batch_l1_hits: nL1,
    batch_l2_hits: nL2,
    batch_misses: nMiss,
    batches: o.batches,
    loader: 'instant (synthetic vector)',
  };
  const made: Array<{ label: string; impl: Impl; reader: Counted }> = [];
  try {
    const vectorOf = syntheticVectors(o.dims);
    made.push({ label: 'tiered', ...(await tieredImpl(o.redisUrl, `bench:${run}:tiered`, o.dims, vectorOf)) });
    made.push({ label: 'bento', ...(await bentoImpl(o.redisUrl, `bench:${run}:bento`, vectorOf)) });
    const figures = await measure(made, admin, { ...o, nL1, nL2, nMiss });
    for (const { label } of made) {
      const f = figures.get(label)!;
      for (const [k, v] of Object.entries(f)) result[`${label}_${k}`] = v;
      o.log(
        `${label}: batch p50 ${f.batch_ms_p50} ms, ${f.round_trips_per_batch} round trips/batch, L1 hit p50 ${f.l1_hit_p50_us} µs, L2 hit p50 ${f.l2_hit_p50_ms} ms`,
      );
    }
    result.bentocache_version = await packageVersion('bentocache');
  } finally {
    for (const { label, impl } of made) {
      await impl.close().catch(() => undefined);
      await clearPrefix(admin, `bench:${run}:${label}`).catch(() => undefined);
    }
    await admin.quit();
  }
  return result;
}

interface Tally {
  batchMs: number[];
  writes: number;
  commands: number;
  loads: number;
  publishes: number;
  l1Us: number[];
  peekUs: number[];
  l2Ms: number[];
}

/**
 * Runs every phase for all implementations in turn, round by round, so that JIT warm-up and the
 * machine's background load fall on both alike (a shared machine drifts a lot over a minute).
 */
async function measure(
  impls: ReadonlyArray<{ label: string; impl: Impl; reader: Counted }>,
  admin: Redis,
  o: Required<Omit<CacheTiersBenchOptions, 'redisUrl'>> & { nL1: number; nL2: number; nMiss: number },
): Promise<Map<string, Record<string, number>>> {
  const hot = Array.from({ length: o.keys }, (_, i) => `hot-${i}`);
  const tallies = new Map<string, Tally>(
    impls.map(({ label }) => [label, { batchMs: [], writes: 0, commands: 0, loads: 0, publishes: 0, l1Us: [], peekUs: [], l2Ms: [] }]),
  );
  for (const { impl } of impls) for (let i = 0; i < hot.length; i += o.batch) await impl.getBatch(hot.slice(i, i + o.batch));

  for (let b = -2; b < o.batches; b++) {
    for (const { label, impl, reader } of impls) {
      const t = tallies.get(label)!;
      const l2Keys = Array.from({ length: o.nL2 }, (_, j) => `l2-${b}-${j}`);
      await impl.seedL2(l2Keys);
      const keys = shuffle([...sample(hot, o.nL1), ...l2Keys, ...Array.from({ length: o.nMiss }, (_, j) => `miss-${b}-${j}`)]);
      const p0 = await commandCount(admin, 'publish');
      const [w0, c0, l0] = [reader.writes(), reader.commands(), impl.loaderCalls()];
      const t0 = performance.now();
      const values = await impl.getBatch(keys);
      const dt = performance.now() - t0;
      if (values.length !== keys.length || values.some((v) => !(v instanceof Float32Array) || v.length !== o.dims))
        throw new Error(`${label}: wrong values in batch ${b}`);
      if (b < 0) continue;
      t.batchMs.push(dt);
      t.writes += reader.writes() - w0;
      t.commands += reader.commands() - c0;
      t.loads += impl.loaderCalls() - l0;
      await new Promise((r) => setTimeout(r, 20)); // bus messages may be published after the values are returned
      t.publishes += (await commandCount(admin, 'publish')) - p0;
    }
  }

  // Single-key lookups in rounds of ROUND per implementation; round -1 is a warm-up, not recorded.
  const ROUND = 100;
  const rounds = Math.ceil(o.samples / ROUND);
  for (const { impl } of impls) await impl.seedL2(Array.from({ length: (rounds + 1) * ROUND }, (_, i) => `l2s-${i}`));
  for (let r = -1; r < rounds; r++) {
    for (const { label, impl } of impls) {
      const t = tallies.get(label)!;
      for (let i = 0; i < ROUND; i++) {
        const key = hot[(((r + 1) * ROUND + i) * 7919) % hot.length];
        const t0 = performance.now();
        await impl.getOne(key);
        const t1 = performance.now();
        if (impl.peekOne && !impl.peekOne(key)) throw new Error(`${label}: ${key} not in L1`);
        const t2 = performance.now();
        if (r < 0) continue;
        t.l1Us.push((t1 - t0) * 1000);
        if (impl.peekOne) t.peekUs.push((t2 - t1) * 1000);
      }
      const loadsBefore = impl.loaderCalls();
      for (let i = 0; i < ROUND; i++) {
        const t0 = performance.now();
        await impl.getOne(`l2s-${(r + 1) * ROUND + i}`);
        if (r >= 0) t.l2Ms.push(performance.now() - t0);
      }
      if (impl.loaderCalls() !== loadsBefore) throw new Error(`${label}: L2 samples were loaded, not read from Redis`);
    }
  }

  const out = new Map<string, Record<string, number>>();
  for (const { label, impl } of impls) {
    const t = tallies.get(label)!;
    const figures: Record<string, number> = {
      batch_ms_p50: round(percentile(t.batchMs, 50), 2),
      batch_ms_p95: round(percentile(t.batchMs, 95), 2),
      batch_ms_mean: round(t.batchMs.reduce((a, b) => a + b, 0) / t.batchMs.length, 2),
      round_trips_per_batch: round(t.writes / o.batches, 1),
      commands_per_batch: round(t.commands / o.batches, 1),
      bus_publishes_per_batch: round(t.publishes / o.batches, 1),
      loader_calls_per_batch: round(t.loads / o.batches, 1),
      l1_hit_p50_us: round(percentile(t.l1Us, 50), 1),
      l2_hit_p50_ms: round(percentile(t.l2Ms, 50), 3),
      redis_bytes_per_vector: await impl.storedBytes(hot[0]),
    };
    if (t.peekUs.length) figures.l1_peek_p50_us = round(percentile(t.peekUs, 50), 2);
    out.set(label, figures);
  }
  return out;
}

/** Our cache: `getMany` per batch, `peek` for the synchronous L1 figure. */
async function tieredImpl(url: string, prefix: string, dims: number, vectorOf: (key: string) => Float32Array): Promise<{ impl: Impl; reader: Counted }> {
  const reader = await countedClient(url);
  const writerRedis = new IORedis(url, { maxRetriesPerRequest: 3 });
  const common = { namespace: 'emb', prefix, codec: float32Codec(dims), l1MaxEntries: 50_000, l1MaxBytes: 256 * 1024 * 1024, l2TimeoutMs: 2_000 };
  const cache = new TieredCache<Float32Array>({ ...common, redis: reader.redis });
  const writer = new TieredCache<Float32Array>({ ...common, redis: writerRedis, l1MaxEntries: 1, l1MaxBytes: 1024 });
  await Promise.all([cache.ready(), writer.ready()]);
  let loaderCalls = 0;
  const load: LoadMany<Float32Array> = async (keys) => {
    loaderCalls++;
    return new Map(keys.map((k) => [k, vectorOf(k)]));
  };
  const unwrap = (v: Float32Array | Error | undefined) => {
    if (!(v instanceof Float32Array)) throw v ?? new Error('no value');
    return v;
  };
  return {
    reader,
    impl: {
      name: 'tiered',
      async getBatch(keys) {
        const out = await cache.getMany(keys, load);
        return keys.map((k) => unwrap(out.get(k)));
      },
      async getOne(key) {
        return unwrap((await cache.getMany([key], load)).get(key));
      },
      peekOne: (key) => cache.peek(key),
      seedL2: (keys) => writer.setMany(keys.map((k) => [k, vectorOf(k)] as const)),
      loaderCalls: () => loaderCalls,
      storedBytes: (key) => reader.redis.strlen(cache.redisKey(key)),
      async close() {
        await Promise.allSettled([cache.close(), writer.close()]);
        await Promise.allSettled([reader.redis.quit(), writerRedis.quit()]);
      },
    },
  };
}

interface BentoLike {
  getOrSet<T>(o: { key: string; factory: () => Promise<T> | T }): Promise<T>;
  get<T>(o: { key: string }): Promise<T | undefined>;
  set(o: { key: string; value: unknown }): Promise<boolean>;
  disconnect(): Promise<void>;
}

/**
 * bentocache: memory L1 (serialised, so it can be bounded in bytes) + Redis L2 + Redis bus. Without a
 * batch read, the batch path is one `getOrSet` per key; factories are gathered per event-loop turn into
 * one loader call where their timing allows (the count is reported). Values are base64 strings (its
 * serialiser is JSON), decoded to Float32Array by the caller.
 */
async function bentoImpl(url: string, prefix: string, vectorOf: (key: string) => Float32Array): Promise<{ impl: Impl; reader: Counted }> {
  const { BentoCache, bentostore } = (await dynamicImport('bentocache')) as {
    BentoCache: new (o: unknown) => BentoLike;
    bentostore: () => { useL1Layer(d: unknown): unknown; useL2Layer(d: unknown): unknown; useBus(d: unknown): unknown };
  };
  const { memoryDriver } = (await dynamicImport('bentocache/drivers/memory')) as { memoryDriver: (o: unknown) => unknown };
  const { redisDriver, redisBusDriver } = (await dynamicImport('bentocache/drivers/redis')) as {
    redisDriver: (o: unknown) => unknown;
    redisBusDriver: (o: unknown) => unknown;
  };
  const reader = await countedClient(url);
  const writerRedis = new IORedis(url, { maxRetriesPerRequest: 3 });
  const { hostname, port } = new URL(url);
  const make = (connection: Redis, maxItems: number) => {
    const store = bentostore() as { useL1Layer(d: unknown): typeof store; useL2Layer(d: unknown): typeof store; useBus(d: unknown): typeof store };
    return new BentoCache({
      default: 'tiers',
      prefix,
      ttl: 3_600_000,
      stores: {
        tiers: store
          .useL1Layer(memoryDriver({ maxItems, maxSize: 256 * 1024 * 1024 }))
          .useL2Layer(redisDriver({ connection }))
          .useBus(redisBusDriver({ connection: { host: hostname, port: Number(port) } })),
      },
    });
  };
  const bento = make(reader.redis, 50_000);
  const writer = make(writerRedis, 1);
  let loaderCalls = 0;
  const batcher = turnBatcher<Float32Array>(async (keys) => {
    loaderCalls++;
    return keys.map((k) => vectorOf(k));
  });
  const fromB64 = (s: string) => new Float32Array(new Uint8Array(Buffer.from(s, 'base64')).buffer);
  const toB64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  const getOne = async (key: string) => fromB64(await bento.getOrSet({ key, factory: async () => toB64(await batcher(key)) }));
  return {
    reader,
    impl: {
      name: 'bento',
      getBatch: (keys) => Promise.all(keys.map(getOne)),
      getOne,
      async seedL2(keys) {
        await Promise.all(keys.map((key) => writer.set({ key, value: toB64(vectorOf(key)) })));
      },
      loaderCalls: () => loaderCalls,
      storedBytes: async (key) => {
        const [found] = await reader.redis.keys(`${prefix}*:${key}`);
        return found ? reader.redis.strlen(found) : 0;
      },
      async close() {
        await Promise.allSettled([bento.disconnect(), writer.disconnect()]);
        // bentocache's Redis driver disconnects the connection it was given.
        reader.redis.disconnect();
        writerRedis.disconnect();
      },
    },
  };
}

/** Collects `load(key)` calls made in one event-loop turn into one `loadMany` call. */
function turnBatcher<V>(loadMany: (keys: string[]) => Promise<V[]>): (key: string) => Promise<V> {
  let pending: Array<{ key: string; resolve: (v: V) => void; reject: (e: unknown) => void }> = [];
  return (key) =>
    new Promise<V>((resolve, reject) => {
      if (pending.length === 0) {
        setImmediate(() => {
          const batch = pending;
          pending = [];
          loadMany(batch.map((p) => p.key)).then(
            (values) => {
              for (const [i, p] of batch.entries()) p.resolve(values[i]);
            },
            (err) => {
              for (const p of batch) p.reject(err);
            },
          );
        });
      }
      pending.push({ key, resolve, reject });
    });
}

/** A client whose socket writes (round trips) and commands are counted. */
async function countedClient(url: string): Promise<Counted> {
  const redis = new IORedis(url, { maxRetriesPerRequest: 3 });
  await redis.ping();
  let writes = 0;
  let commands = 0;
  const stream = (redis as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
  const write = stream.write.bind(stream);
  stream.write = (...args: unknown[]) => {
    writes++;
    return write(...args);
  };
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    commands++;
    return send(...args);
  }) as Redis['sendCommand'];
  return { redis, writes: () => writes, commands: () => commands };
}

async function commandCount(admin: Redis, name: string): Promise<number> {
  const info = await admin.info('commandstats');
  const m = new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
}

async function clearPrefix(admin: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await admin.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

function syntheticVectors(dims: number): (key: string) => Float32Array {
  return (key) => {
    let h = 2166136261;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
    const v = new Float32Array(dims);
    for (let i = 0; i < dims; i++) v[i] = Math.sin(h + i);
    return v;
  };
}

function sample<T>(items: readonly T[], n: number): T[] {
  const copy = [...items];
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, n);
}

function shuffle<T>(items: T[]): T[] {
  return sample(items, items.length);
}

async function packageVersion(name: string): Promise<string> {
  try {
    // Its `exports` map hides package.json; it sits two levels above the entry point (build/index.js).
    const file = path.join(path.dirname(require.resolve(name)), '..', 'package.json');
    return (JSON.parse(await readFile(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
