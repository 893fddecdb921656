import type { Redis } from 'ioredis';
import { type CacheEvent, createDealInsightCache, createEmbeddingCache, type TieredCache } from '../cache';
import type { FleetConfig } from '../config';
import type { Deal } from '../contracts/deals';
import type { Logger } from '../telemetry/logger';
import type { Releasers } from './releasers';

export interface FleetCaches {
  embeddings: TieredCache<Float32Array>;
  deals: TieredCache<Deal>;
}

/** Builds the process's two caches on their own Redis connection; released with the rest. */
export function createCaches(config: FleetConfig, redis: () => Redis, releasers: Releasers, logger: Logger): FleetCaches | undefined {
  if (!config.cache.enabled) return undefined;
  const c = config.cache;
  const connection = redis();
  releasers.add('cache connection', () => connection.quit());
  const onEvent = (e: CacheEvent) => {
    if (e.type === 'l2-error' || e.type === 'circuit')
      logger.warn({ cache: e.cache, event: e.type, ...('reason' in e ? { reason: e.reason } : { state: e.state }) }, 'cache L2 degraded');
  };
  const embeddings = createEmbeddingCache({
    redis: connection,
    prefix: c.keyPrefix,
    l2TimeoutMs: c.l2TimeoutMs,
    l1MaxEntries: c.embeddings.l1MaxEntries,
    l1MaxBytes: c.embeddings.l1MaxBytes,
    l1TtlMs: c.embeddings.l1TtlMs,
    l2TtlMs: c.embeddings.l2TtlMs,
    onEvent,
  });
  const deals = createDealInsightCache<Deal>({
    redis: connection,
    prefix: c.keyPrefix,
    l2TimeoutMs: c.l2TimeoutMs,
    l1TtlMs: c.deals.l1TtlMs,
    l2TtlMs: c.deals.l2TtlMs,
    graceMs: c.deals.graceMs,
    onEvent,
  });
  releasers.add('caches', () => Promise.all([embeddings.close(), deals.close()]));
  return { embeddings, deals };
}
