import type { TieredCache } from '../cache';
import { Coalescer, type BatchEvent, type BatchInfo, type Loaded } from './coalescer';

/** Where a value came from: the in-process cache, Redis, or a warehouse batch. */
export type Tier = 'l1' | 'l2' | 'warehouse';

export interface TieredLoad<V> {
  value: V;
  tier: Tier;
  /** The warehouse batch that computed it (tier `warehouse` only). */
  batch?: BatchInfo;
}

export interface CachedLoaderOptions<I, V> {
  /** Prefix of the L2 lookup batches' ids, e.g. `emb-cache`. */
  name: string;
  /** The two-tier cache in front of the warehouse. */
  cache: TieredCache<V>;
  /** The item's cache key (e.g. `embeddingKey(model, text)`). */
  keyOf: (item: I) => string;
  /** Loads one item through the warehouse coalescer. A rejection fails only this item. */
  loadFromWarehouse: (item: I) => Promise<Loaded<V>>;
  /** L2 lookups wait at most this long to share one Redis round trip. Default 0: the lookups of one event-loop turn. */
  lookupWaitMs?: number;
  /** Most keys per L2 lookup batch. Default 1,000. */
  lookupBatchSize?: number;
  /** L2 lookup batches in flight. Default 16. */
  lookupConcurrency?: number;
  onBatch?: (event: BatchEvent) => void;
}

/**
 * The cache in front of a warehouse coalescer, in two stages:
 *
 * 1. `peek` answers L1 hits synchronously: they never wait for a batch window.
 * 2. The rest are gathered (those asked in one event-loop turn) into one `cache.getMany` — one Redis round trip
 *    for the whole lookup batch — and only the keys neither tier has go to the warehouse coalescer, so a
 *    cached item never occupies a warehouse call. What the warehouse computed is written back to L2 in one
 *    round trip by `getMany`.
 */
export class CachedLoader<I, V> {
  private readonly opts: CachedLoaderOptions<I, V>;
  private readonly lookups: Coalescer<I, TieredLoad<V>>;

  constructor(opts: CachedLoaderOptions<I, V>) {
    this.opts = opts;
    this.lookups = new Coalescer<I, TieredLoad<V>>({
      name: opts.name,
      keyOf: opts.keyOf,
      maxBatchSize: opts.lookupBatchSize ?? 1_000,
      maxWaitMs: opts.lookupWaitMs ?? 0,
      maxConcurrentBatches: opts.lookupConcurrency ?? 16,
      loadBatch: (items) => this.lookupBatch(items),
      onBatch: opts.onBatch,
    });
  }

  /** Loads one item: L1, else L2 (batched), else the warehouse (batched). */
  load(item: I): Promise<TieredLoad<V>> {
    const hit = this.opts.cache.peek(this.opts.keyOf(item));
    if (hit !== undefined) return Promise.resolve({ value: hit, tier: 'l1' });
    return this.lookups.load(item).then((loaded) => loaded.value);
  }

  close(): Promise<void> {
    return this.lookups.close();
  }

  private async lookupBatch(items: I[]): Promise<Array<TieredLoad<V> | Error>> {
    const byKey = new Map(items.map((i) => [this.opts.keyOf(i), i]));
    const computed = new Map<string, BatchInfo>();
    const values = await this.opts.cache.getMany([...byKey.keys()], async (missing) => {
      const settled = await Promise.allSettled(missing.map((k) => this.opts.loadFromWarehouse(byKey.get(k)!)));
      const out = new Map<string, V | Error>();
      settled.forEach((s, i) => {
        if (s.status === 'fulfilled') {
          computed.set(missing[i], s.value.batch);
          out.set(missing[i], s.value.value);
        } else {
          out.set(missing[i], s.reason instanceof Error ? s.reason : new Error(String(s.reason)));
        }
      });
      return out;
    });
    return items.map((item) => {
      const key = this.opts.keyOf(item);
      const v = values.get(key);
      if (v instanceof Error) return v;
      if (v === undefined) return new Error(`cache returned no value for ${key}`);
      const batch = computed.get(key);
      return batch ? { value: v, tier: 'warehouse', batch } : { value: v, tier: 'l2' };
    });
  }
}
