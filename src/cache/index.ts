/**
 * Two-tier cache (in-process LRU + Redis) with batch lookups, single-flight, invalidation across
 * replicas, stale-while-revalidate and degradation when Redis is down. See `TieredCache`.
 */

/** The L2 circuit's state in `CacheStats.breaker`; the breaker is the fleet's one (`src/resilience`). */

export { float32Codec, jsonCodec, L1_ENTRY_OVERHEAD_BYTES } from './codecs';
export { CacheClosedError, CacheUnavailableError, MissingLoadResultError } from './errors';
export { invalidateDeals } from './invalidate-deals';
export { dealKey, embeddingKey } from './keys';
export { CACHE_DEFAULTS, type CacheEvent, type TieredCacheOptions } from './options';
export { createDealInsightCache, createEmbeddingCache } from './presets';
export { type CacheStats, type LoadMany, TieredCache } from './tiered-cache';
