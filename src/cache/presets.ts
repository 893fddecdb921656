import type { DealInsight } from '../contracts/deals';
import { float32Codec, jsonCodec } from './codecs';
import { DEAL_NAMESPACE, EMBEDDING_NAMESPACE } from './keys';
import type { TieredCacheOptions } from './options';
import { TieredCache } from './tiered-cache';

type PresetOptions<V> = Omit<TieredCacheOptions<V>, 'namespace' | 'codec'> & Partial<Pick<TieredCacheOptions<V>, 'namespace' | 'codec'>>;

/**
 * The embedding cache: keys from `embeddingKey(model, text)`, values Float32Array(768) stored as raw
 * float32 bytes. An embedding of a given model and text never changes, so TTLs are long and there is no
 * grace period; the L1 byte bound is what limits it (64 MiB ≈ 20,000 vectors).
 */
export function createEmbeddingCache(opts: PresetOptions<Float32Array> & { dims?: number }): TieredCache<Float32Array> {
  const { dims, ...rest } = opts;
  return new TieredCache<Float32Array>({
    namespace: EMBEDDING_NAMESPACE,
    codec: float32Codec(dims ?? 768),
    l1MaxEntries: 50_000,
    l1MaxBytes: 64 * 1024 * 1024,
    l1TtlMs: 60 * 60_000,
    l2TtlMs: 7 * 24 * 3_600_000,
    ...stripUndefined(rest),
  });
}

/**
 * The deal-insight cache: keys from `dealKey(id)`, values as JSON. Deals change, so the TTLs are short
 * (1 min in L1, 5 min in Redis) and a 10-minute grace period serves a slightly old insight at once while
 * it is refreshed in the background. A value's `updatedAt` (the warehouse's `UPDATED_AT`, on the `Deal`
 * rows the deal worker caches) is its version: a refresh that finds it moved on tells every replica.
 */
export function createDealInsightCache<V = DealInsight>(opts: PresetOptions<V>): TieredCache<V> {
  return new TieredCache<V>({
    namespace: DEAL_NAMESPACE,
    codec: jsonCodec<V>('deal-insight-json'),
    l1MaxEntries: 20_000,
    l1MaxBytes: 32 * 1024 * 1024,
    l1TtlMs: 60_000,
    l2TtlMs: 5 * 60_000,
    graceMs: 10 * 60_000,
    versionOf: updatedAtOf,
    ...stripUndefined(opts),
  });
}

/** `updatedAt` of a cached deal row, or of the deal in an insight; null when it has none. */
function updatedAtOf(value: unknown): string | null {
  const v = value as { updatedAt?: unknown; deal?: { updatedAt?: unknown } } | null;
  const at = v?.updatedAt ?? v?.deal?.updatedAt;
  return typeof at === 'string' ? at : null;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
