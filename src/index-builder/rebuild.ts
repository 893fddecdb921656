import { countSourceRows, type IndexSource, readSourceTexts } from '../warehouse/queries/read-source-texts';
import type { Warehouse } from '../warehouse/types';

export interface RebuildProgress {
  source: IndexSource;
  done: number;
  total: number;
  /** Rows answered by the embedding cache (no warehouse call). */
  cached: number;
  rowsPerS: number;
}

export interface RebuildOptions {
  warehouse: Warehouse;
  source: IndexSource;
  /** Embeds one text (through the cache and the coalescer); returns the vector and whether it was cached. */
  embed: (text: string) => Promise<{ value: Float32Array; cached: boolean }>;
  /** Appends upserts to the index log (one call per chunk). */
  append: (items: { namespace: string; id: string; vector: Float32Array }[]) => Promise<unknown>;
  /** Rows per chunk. Default 500. */
  chunkSize?: number;
  onProgress?: (p: RebuildProgress) => void;
}

/**
 * Full (re)build of one namespace from a warehouse table: streams rows in chunks (keyset pagination,
 * never the whole table in memory), embeds the texts the cache does not have — a chunk's misses become
 * one coalesced warehouse call — and appends one batch of upserts per chunk to the builder's log. The
 * namespace is the source name (`calls`, `messages`, `deals`). Re-running it is harmless: upserts by id.
 */
export async function rebuildFromWarehouse(opts: RebuildOptions): Promise<RebuildProgress> {
  const chunkSize = opts.chunkSize ?? 500;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > 5000)
    throw new RangeError(`rebuild: chunkSize must be an integer from 1 to 5000, got ${chunkSize}`);
  const total = await countSourceRows(opts.warehouse, opts.source);
  const started = performance.now();
  let done = 0;
  let cached = 0;
  let after = '';
  const progress = (): RebuildProgress => ({
    source: opts.source,
    done,
    total,
    cached,
    rowsPerS: Math.round(done / Math.max(0.001, (performance.now() - started) / 1000)),
  });
  for (;;) {
    const rows = await readSourceTexts(opts.warehouse, opts.source, after, chunkSize);
    if (rows.length === 0) break;
    const embeddable = rows.filter((r) => r.text.trim().length > 0);
    const vectors = await Promise.all(embeddable.map((r) => opts.embed(r.text)));
    cached += vectors.filter((v) => v.cached).length;
    await opts.append(embeddable.map((r, i) => ({ namespace: opts.source, id: r.id, vector: vectors[i].value })));
    done += rows.length;
    after = rows[rows.length - 1].id;
    opts.onProgress?.(progress());
  }
  return progress();
}
