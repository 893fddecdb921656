/**
 * Two-tier cache (in-process LRU + Redis) with batch lookups, single-flight, invalidation across
 * replicas, stale-while-revalidate and degradation when Redis is down. See `TieredCache`.
 */
export { TieredCache, type CacheStats, type LoadMany } from './tiered-cache';
export { CACHE_DEFAULTS, type CacheEvent, type CompiledCacheOptions, type TieredCacheOptions } from './options';
export { float32Codec, jsonCodec, L1_ENTRY_OVERHEAD_BYTES, type CacheCodec } from './codecs';
export { embeddingKey, dealKey, keySpace, EMBEDDING_NAMESPACE, DEAL_NAMESPACE, DEFAULT_KEY_PREFIX, DEFAULT_KEY_VERSION } from './keys';
export { createEmbeddingCache, createDealInsightCache } from './presets';
export { CacheClosedError, CacheUnavailableError, MissingLoadResultError } from './errors';
/** The L2 circuit's state in `CacheStats.breaker`; the breaker is the fleet's one (`src/resilience`). */
export type { CircuitState as BreakerState } from '../resilience/circuit-breaker';
