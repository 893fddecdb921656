import IORedis from 'ioredis';
import { loadLocalSnowflake } from '../app/local-snowflake';
import { startPrivateRedis } from '../app/redis-server';
import { createEmbeddingCache } from '../cache';
import { PooledWarehouse, snowflakeConnector, WarehousePool } from '../pool';
import { createEmbeddingService, type EmbeddingService } from '../workers/embedding-processor';
import type { BenchContext } from './context';
import { percentile, round } from './stats';

/** mulberry32: a small seeded PRNG, so every run draws the same request sequence. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s (Zipf), by binary search over the cumulative distribution. */
function zipfSampler(n: number, s: number, seed: number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s;
    cdf[k] = sum;
  }
  const rand = prng(seed);
  return () => {
    const u = rand() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const text = (rank: number) => `customer note ${rank}: renewal discussion, pricing pressure and security review for account ${rank % 977}`;

interface RunResult {
  seconds: number;
  tiers: { l1: number; l2: number; warehouse: number };
  l2LatenciesMs: number[];
}

/** Sends `requests` embedding requests with `inFlight` outstanding, as that many concurrent jobs would. */
async function drive(service: EmbeddingService, draw: () => number, requests: number, inFlight: number, sampleL2: boolean): Promise<RunResult> {
  const tiers = { l1: 0, l2: 0, warehouse: 0 };
  const l2LatenciesMs: number[] = [];
  let sent = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (sent < requests) {
        sent++;
        const started = sampleL2 ? performance.now() : 0;
        const r = await service.embed('e5-base-v2', text(draw()));
        tiers[r.tier]++;
        if (sampleL2 && r.tier === 'l2' && l2LatenciesMs.length < 200_000) l2LatenciesMs.push(performance.now() - started);
      }
    }),
  );
  return { seconds: (performance.now() - t) / 1000, tiers, l2LatenciesMs };
}

/**
 * `fleet bench cache`: Zipf(s = 1.1) over 100,000 distinct texts, 1,000,000 embedding requests through the
 * real path (cache → coalescer → pool → local warehouse), 1,000 in flight like 1,000 concurrent jobs;
 * then the same path without the cache on a slice of the requests.
 */
export async function runCacheBench(ctx: BenchContext): Promise<Record<string, unknown>> {
  const distinct = ctx.quick ? 10_000 : 100_000;
  const requests = ctx.quick ? 100_000 : 1_000_000;
  const uncachedRequests = ctx.quick ? 5_000 : 20_000;
  const inFlight = 1_000;
  const redisServer = await startPrivateRedis();
  const server = await loadLocalSnowflake().startLocalWarehouseProcess({ loginLatencyMs: 300, queryLatencyMs: 20, deals: 1_000 });
  const pool = new WarehousePool({
    connector: snowflakeConnector({ account: 'local', username: 'fleet', password: 'fleet', accessUrl: server.url }),
    min: 8,
    max: 8,
  });
  const warehouse = new PooledWarehouse({ pool });
  const redis = new IORedis(redisServer.url);
  const cache = createEmbeddingCache({ redis, prefix: 'bench:cache' });
  const batching = { maxBatchSize: 500, maxWaitMs: 25, maxConcurrentBatches: 8 };
  try {
    await Promise.all(Array.from({ length: 8 }, () => warehouse.query('SELECT 1 AS X')));

    ctx.log(`cached: ${requests} requests, Zipf(1.1) over ${distinct} texts, ${inFlight} in flight`);
    const service = createEmbeddingService({ warehouse, batching, cache });
    await server.resetStats();
    const cached = await drive(service, zipfSampler(distinct, 1.1, 7), requests, inFlight, true);
    const warehouseCalls = (await server.stats()).queriesByKind.embed;
    const stats = cache.stats();
    await service.close();

    // L1 hit latency: synchronous peeks of keys known to be in L1.
    const hot = Array.from({ length: 1_000 }, (_, i) => text(i));
    const { embeddingKey } = await import('../cache/keys');
    const keys = hot.map((h) => embeddingKey('e5-base-v2', h)).filter((k) => cache.peek(k) !== undefined);
    const peeks: number[] = [];
    for (let round_ = 0; round_ < 20; round_++) {
      for (const k of keys) {
        const s = process.hrtime.bigint();
        cache.peek(k);
        peeks.push(Number(process.hrtime.bigint() - s) / 1000);
      }
    }

    // L2 hit latency on its own: L1 emptied, then one lookup at a time (each one MGET round trip).
    (cache as unknown as { l1: { clear(): void } }).l1.clear();
    const l2Alone: number[] = [];
    const probe = createEmbeddingService({ warehouse, batching, cache });
    for (let i = 0; i < 1_000; i++) {
      const s = performance.now();
      const r = await probe.embed('e5-base-v2', text(i));
      if (r.tier === 'l2') l2Alone.push(performance.now() - s);
      (cache as unknown as { l1: { clear(): void } }).l1.clear();
    }
    await probe.close();

    ctx.log(`uncached: ${uncachedRequests} requests through the same coalescer, no cache`);
    const plain = createEmbeddingService({ warehouse, batching });
    const uncached = await drive(plain, zipfSampler(distinct, 1.1, 11), uncachedRequests, inFlight, false);
    await plain.close();

    const total = cached.tiers.l1 + cached.tiers.l2 + cached.tiers.warehouse;
    return {
      bench: 'cache',
      distinct_texts: distinct,
      requests,
      zipf_s: 1.1,
      in_flight: inFlight,
      hit_ratio: round((cached.tiers.l1 + cached.tiers.l2) / total, 4),
      l1_hit_ratio: round(cached.tiers.l1 / total, 4),
      l2_hit_ratio: round(cached.tiers.l2 / total, 4),
      warehouse_requests: cached.tiers.warehouse,
      warehouse_calls: warehouseCalls,
      l1_get_p50_us: round(percentile(peeks, 50), 2),
      l1_get_p99_us: round(percentile(peeks, 99), 2),
      l2_get_p50_ms: round(percentile(l2Alone, 50), 3),
      l2_get_p99_ms: round(percentile(l2Alone, 99), 3),
      l2_get_under_load_p50_ms: round(percentile(cached.l2LatenciesMs, 50), 3),
      l2_get_under_load_p99_ms: round(percentile(cached.l2LatenciesMs, 99), 3),
      l2_note:
        'l2_get_*: one lookup at a time with L1 emptied (one MGET round trip each); under_load: request to answer during the 1M-request run with 1,000 in flight, so it includes waiting for the busy event loop',
      requests_per_s: round(requests / cached.seconds, 0),
      uncached_requests: uncachedRequests,
      uncached_requests_per_s: round(uncachedRequests / uncached.seconds, 0),
      l1_evictions: stats.evictions,
      l2_errors: stats.l2Errors,
    };
  } finally {
    await cache.close();
    await redis.quit();
    await pool.close();
    await server.close();
    await redisServer.stop();
  }
}
