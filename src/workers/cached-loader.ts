import type { LoadMany, TieredCache } from '../cache';
import { type BatchEvent, type BatchInfo, Coalescer, type Loaded } from './coalescer';

/** Where a value came from: the in-process cache, Redis, or a warehouse batch. */
type Tier = 'l1' | 'l2' | 'warehouse';

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
  /**
   * Reloads keys the cache served stale (stale-while-revalidate, in the background: nobody waits), through
   * the same warehouse coalescer, so a refresh shares its statement with the misses of the jobs running
   * then. A per-key Error keeps serving the stale value for a while. Default none: a stale entry is served
   * until its grace period ends.
   */
  refresh?: LoadMany<V>;
  /** L2 lookups wait at most this long to share one Redis round trip. Default 0: the lookups of one event-loop turn. */
  lookupWaitMs?: number;
  /** Most keys per L2 lookup or write-back batch. Default 1,000. */
  lookupBatchSize?: number;
  /** L2 lookup batches in flight. Default 16. */
  lookupConcurrency?: number;
  onBatch?: (event: BatchEvent) => void;
}

/** Marks a key neither tier had; never cached (an Error is not cached by `getMany`). */
class Miss extends Error {
  constructor() {
    super('not cached');
  }
}

/**
 * The cache in front of a warehouse coalescer, in three steps:
 *
 * 1. `peek` answers L1 hits synchronously: they never wait for a batch window.
 * 2. The rest asked in the same event-loop turn share one `cache.getMany` — one Redis round trip — and an
 *    L2 hit is answered as soon as that round trip returns, never held back by the batch's misses.
 * 3. Only the keys neither tier has go to the warehouse coalescer, so a cached item never occupies a
 *    warehouse call; what the warehouse computed is written back to L2 in one round trip per batch
 *    (a write-back failure only costs a future miss: the cache degrades, the job does not fail).
 */
export class CachedLoader<I, V> {
  private readonly opts: CachedLoaderOptions<I, V>;
  private readonly lookups: Coalescer<I, V>;
  private readonly writeBacks: Coalescer<string, true>;
  private readonly toWrite = new Map<string, V>();

  constructor(opts: CachedLoaderOptions<I, V>) {
    this.opts = opts;
    const batchSize = opts.lookupBatchSize ?? 1_000;
    // A key neither tier has comes back as a per-key Miss error: that caller goes to the warehouse.
    this.lookups = new Coalescer<I, V>({
      name: opts.name,
      keyOf: opts.keyOf,
      maxBatchSize: batchSize,
      maxWaitMs: opts.lookupWaitMs ?? 0,
      maxConcurrentBatches: opts.lookupConcurrency ?? 16,
      loadBatch: async (items) => {
        const keys = items.map(opts.keyOf);
        // Callers waiting on a miss go to the warehouse themselves (step 3); a background refresh has no caller.
        const found = await opts.cache.getMany(keys, async (missing, info) =>
          info.refresh && opts.refresh ? opts.refresh(missing, info) : new Map(missing.map((k) => [k, new Miss()])),
        );
        return keys.map((k) => {
          const v = found.get(k);
          return v instanceof Miss || v === undefined ? new Miss() : v;
        });
      },
      onBatch: opts.onBatch,
    });
    this.writeBacks = new Coalescer<string, true>({
      name: `${opts.name}-fill`,
      maxBatchSize: batchSize,
      maxWaitMs: 0,
      maxConcurrentBatches: 4,
      // getMany with a loader that hands over the computed values writes them to L2 in one pipeline,
      // without the invalidation publish that `setMany` sends (a fill changes nothing other replicas hold).
      loadBatch: async (keys) => {
        const values = new Map(keys.map((k) => [k, this.toWrite.get(k)] as const));
        for (const k of keys) this.toWrite.delete(k);
        await opts.cache.getMany(keys, async (missing) => new Map(missing.map((k) => [k, values.get(k) ?? new Miss()])));
        return keys.map(() => true as const);
      },
    });
  }

  /** Loads one item: L1, else L2 (one round trip per turn), else the warehouse (batched). */
  async load(item: I): Promise<TieredLoad<V>> {
    const key = this.opts.keyOf(item);
    const hit = this.opts.cache.peek(key);
    if (hit !== undefined) return { value: hit, tier: 'l1' };
    const looked = await this.lookups.load(item).then(
      (l) => l.value,
      () => undefined, // a Miss, or L2 trouble (the cache reports that itself): the warehouse answers
    );
    if (looked !== undefined) return { value: looked, tier: 'l2' };
    const { value, batch } = await this.opts.loadFromWarehouse(item);
    this.toWrite.set(key, value);
    this.writeBacks.load(key).catch(() => undefined);
    return { value, tier: 'warehouse', batch };
  }

  async close(): Promise<void> {
    await this.lookups.close();
    await this.writeBacks.close();
  }
}
