import { type CacheEvent, createDealInsightCache, createEmbeddingCache, type TieredCache } from '../cache';
import type { FleetConfig } from '../config';
import type { Deal } from '../contracts/deals';
import type { Logger } from '../telemetry/logger';
import { DEFAULT_OUTAGE_SUMMARY_MS, dependencyLog, isConnectionError } from '../telemetry/outage-log';
import { closeRedis, dropRedis, type RedisClient } from './redis';
import type { Releasers } from './releasers';

/** The L2 circuit opened: L2 is skipped for a cool-down (reported as the outage's failure). */
class CacheCircuitOpen extends Error {
  readonly reason = 'circuit-open';
  constructor(cache: string) {
    super(`cache ${cache}: L2 circuit open, L2 skipped for a cool-down`);
  }
}

/** An L2 failure that is the tier being away or slow (timed out, not connected, circuit open, connection error). */
function isL2Outage(err: unknown): boolean {
  const reason = (err as { reason?: unknown } | undefined)?.reason;
  return (typeof reason === 'string' && reason !== 'error') || isConnectionError(err);
}

export interface FleetCaches {
  embeddings: TieredCache<Float32Array>;
  deals: TieredCache<Deal>;
}

/** Builds the process's two caches on their own Redis connection; released with the rest. */
export function createCaches(
  config: FleetConfig,
  redis: () => RedisClient,
  releasers: Releasers,
  logger: Logger,
  summaryEveryMs = DEFAULT_OUTAGE_SUMMARY_MS,
): FleetCaches | undefined {
  if (!config.cache.enabled) return undefined;
  const c = config.cache;
  const connection = redis();
  releasers.add('cache connection', () => closeRedis(connection), { force: () => dropRedis(connection) });
  // The caches carry on without L2 (a degradation, not an error): one line when it fails, counts while it
  // keeps failing, one line when its circuit closes again. An L2 call that failed for another reason than
  // time, connection or circuit is logged in full.
  const l2 = dependencyLog(logger, { name: 'cache L2', summaryEveryMs, isOutage: isL2Outage });
  releasers.add('cache L2 outage log', () => l2.close());
  const onEvent = (e: CacheEvent) => {
    if (e.type === 'l2-error') l2.failed(e.error, { cache: e.cache, op: e.op, reason: e.reason });
    else if (e.type === 'circuit' && e.state === 'open') l2.failed(new CacheCircuitOpen(e.cache), { cache: e.cache });
    else if ((e.type === 'circuit' && e.state === 'closed') || e.type === 'resubscribed') l2.recovered();
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
