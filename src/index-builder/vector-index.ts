import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type BatchMatches, Index, type MetricKind, type ScalarKind } from 'usearch';
import { IndexItemId } from '../contracts/embedding';
import { type ItemMeta, ItemMetadata, type SavedMeta, type SearchFilter } from './item-metadata';
import { type CompiledIndexSettings, isValidId } from './settings';
import { dtypeOfVectorFile, FileVectors, MemoryVectors, type VectorRows, vectorFileDtype, vectorFileName } from './vector-file';

/**
 * Filtered search over-fetches: it asks USearch for `k × (size / matching) × FILTER_OVERFETCH` candidates
 * (the binding has no predicate callback), keeps those that match, and grows the request 4× while too few
 * matched. The recall cost this has is measured in test/index-filter.test.ts and docs/search.md.
 */
const FILTER_OVERFETCH = 4;
/**
 * Most candidates one filtered search asks for. A search for `c` candidates costs about what ef = `c`
 * costs, so this bounds the work of a very selective filter (below ~k / size × 2 / this, hits can be
 * missing: the answer says how many items matched, so a caller can tell).
 */
const FILTER_MAX_CANDIDATES = 16_384;
/**
 * Default of `exactFilterMax`: a filter matching at most this many items (or `EXACT_PER_K × k`, if more)
 * is answered exactly from the stored vectors instead of by over-fetching. Measured on GloVe 100k × 768
 * (docs/search.md, "Filters"): exact costs ~7 µs per matching item (6.9 ms for 1,000), the over-fetch
 * ~22 ms at 1,000 matching and 3.3 ms at 10,000 (∝ size / matching): they cross near 1,800 at 100k, and
 * higher in bigger indexes. Exact is also complete (recall 1.0).
 */
export const DEFAULT_EXACT_FILTER_MAX = 2_048;
/** The over-fetch asks for candidates in proportion to `k`, so the exact threshold grows with `k` too. */
const EXACT_PER_K = 32;

/** One search result. `score` is a similarity (higher is closer); `distance` is USearch's raw distance. */
export interface VectorHit {
  id: string;
  /** `1 - distance` for `cos` (cosine similarity) and `ip` (inner product); `-distance` for `l2sq`. */
  score: number;
  distance: number;
}

/**
 * The persistent id ↔ key mapping of one index. USearch keys are 64-bit integers; our ids are strings.
 * Keys are handed out by a counter that only grows (a deleted id's key is never reused), so a key in
 * a snapshot always means the same id. Saved beside the index file in every snapshot.
 */
export interface IdMapping {
  /** The key the next new id gets. */
  nextKey: number;
  /** `ids[i]` has key `keys[i]`. Parallel arrays keep the JSON small (no per-entry object). */
  ids: string[];
  keys: number[];
  /**
   * Filter metadata, parallel to `ids` (tenant, deal, timestamp). Absent when no item carries any —
   * which is also how every mapping written before filters reads: such an index has no metadata,
   * and a filtered search over it matches nothing.
   */
  meta?: SavedMeta;
}

/** A filtered search's hits, how many items of the index matched the filter, and how it was answered. */
export interface FilteredHits {
  hits: VectorHit[];
  matching: number;
  /** `exact`: from the stored vectors (complete); `overfetch`: from the graph; `none`: nothing matched. */
  path: 'exact' | 'overfetch' | 'none';
}

/** How `open` finds the namespace's vector file and when filtered searches use it. */
export interface VectorIndexOpenOptions {
  /** Overrides the saved `expansionSearch` (with `view` it can only be chosen here). */
  expansionSearch?: number;
  /** Path of the namespace's vector file in the snapshot (verified), if it has one. */
  vectorFile?: string;
}

/** What one upsert or delete batch did. Rejected items are reported, never thrown: one bad item never fails its batch. */
export interface UpsertResult {
  applied: number;
  rejected: { id: string; reason: string }[];
}

export type OpenMode = 'load' | 'view';

/**
 * One USearch HNSW index with string ids. Synchronous and CPU-bound: call it only inside an index
 * thread (`IndexThread`), never on a thread that serves BullMQ locks or HTTP.
 *
 * A re-upsert replaces the vector: the old node is removed and the new one added under the same key.
 *
 * @example
 *   const index = new VectorIndex(compileIndexSettings({ dimensions: 3 }));
 *   index.upsertMany([{ id: 'call-1', vector: [0.1, 0.2, 0.3] }]);
 *   index.search(new Float32Array([0.1, 0.2, 0.3]), 5); // [{ id: 'call-1', score: 1, distance: 0 }]
 */
export class VectorIndex {
  private readonly index: Index;
  private readonly idToKey = new Map<string, number>();
  private readonly keyToId = new Map<number, string>();
  private nextKey = 1;
  private readonly meta = new ItemMetadata();
  /**
   * Stored vectors by key, for exact filtered search: in memory for a writable index (so every save
   * writes a complete vector file), a positional-read view of the snapshot's file for `view`, absent
   * for a viewed snapshot written before vector files (filtered search then always over-fetches).
   */
  private vectors?: VectorRows;
  /** Filters matching at most `max(exactFilterMax, 32 × k)` items are answered exactly; 0 never. */
  exactFilterMax = DEFAULT_EXACT_FILTER_MAX;
  /** False from `open` until the first add: only then may one search call use more than one thread. */
  private touched = true;
  /** True for an index memory-mapped with `view`: searchable, not writable. */
  readonly readOnly: boolean;

  constructor(
    readonly settings: CompiledIndexSettings,
    opts: { expansionSearch?: number; readOnly?: boolean } = {},
  ) {
    this.index = new Index({
      dimensions: settings.dimensions,
      metric: settings.metric as MetricKind,
      quantization: settings.dtype as ScalarKind,
      connectivity: settings.connectivity,
      expansion_add: settings.expansionAdd,
      expansion_search: opts.expansionSearch ?? settings.expansionSearch,
      multi: false,
    });
    this.readOnly = opts.readOnly ?? false;
    if (!this.readOnly) this.vectors = new MemoryVectors(settings.dimensions, vectorFileDtype(settings));
  }

  /**
   * Opens a saved index file with its mapping. `view` memory-maps the file (read-only, near-instant,
   * pages shared between threads viewing the same file); `load` copies it into RAM (writable).
   * `expansionSearch` overrides the saved setting: with `view` it can only be chosen here.
   * The file must already be verified (size and sha256): USearch crashes on some truncated files.
   */
  static open(settings: CompiledIndexSettings, file: string, mapping: IdMapping, mode: OpenMode, opts: VectorIndexOpenOptions = {}): VectorIndex {
    const vi = new VectorIndex(settings, { expansionSearch: opts.expansionSearch, readOnly: mode === 'view' });
    if (mode === 'view') vi.index.view(file);
    else vi.index.load(file);
    if (vi.index.dimensions() !== settings.dimensions) {
      throw new Error(`index file ${file} has ${vi.index.dimensions()} dimensions, its manifest says ${settings.dimensions}`);
    }
    vi.importMapping(mapping, file);
    const dtype = opts.vectorFile === undefined ? undefined : dtypeOfVectorFile(opts.vectorFile);
    if (opts.vectorFile !== undefined && dtype !== undefined) {
      vi.vectors =
        mode === 'view'
          ? FileVectors.open(opts.vectorFile, settings.dimensions, dtype, mapping.nextKey)
          : MemoryVectors.fromFile(opts.vectorFile, settings.dimensions, dtype, mapping.nextKey);
    }
    // Without a file, a loaded (writable) index keeps the empty store from the constructor: items it
    // had are absent (their filters over-fetch) until upserted again; new upserts are stored.
    vi.touched = false;
    return vi;
  }

  get size(): number {
    return this.index.size();
  }

  get dimensions(): number {
    return this.settings.dimensions;
  }

  has(id: string): boolean {
    return this.idToKey.has(id);
  }

  /** Upserts `{ id, vector }` items (one batch `add`). A later item with the same id wins. */
  upsertMany(items: readonly { id: string; vector: ArrayLike<number>; meta?: ItemMeta }[]): UpsertResult {
    const d = this.dimensions;
    const flat = new Float32Array(items.length * d);
    const ids: string[] = [];
    const metas: (ItemMeta | undefined)[] = [];
    const rejected: UpsertResult['rejected'] = [];
    for (const item of items) {
      if (item.vector?.length !== d) {
        rejected.push({ id: String(item.id), reason: `vector has ${item.vector?.length} components, expected ${d}` });
        continue;
      }
      flat.set(item.vector, ids.length * d);
      ids.push(item.id);
      metas.push(item.meta);
    }
    const result = this.upsertRows(ids, ids.length === items.length ? flat : flat.slice(0, ids.length * d), metas);
    return { applied: result.applied, rejected: [...rejected, ...result.rejected] };
  }

  /**
   * Upserts `ids[i]` with row `i` of the flattened `rows` (`ids.length × dimensions`). Rows are checked
   * (finite; non-zero under `cos`); duplicates in one call keep the last valid row. All survivors go to
   * USearch in one `add(keys, vectors)` call. `metas[i]` is row `i`'s filter metadata: an upsert replaces
   * the whole item, so a row without metadata clears what the id carried before.
   */
  upsertRows(ids: readonly string[], rows: Float32Array, metas?: readonly (ItemMeta | undefined)[]): UpsertResult {
    this.assertWritable();
    const d = this.dimensions;
    if (rows.length !== ids.length * d) throw new RangeError(`upsertRows: ${rows.length} values for ${ids.length} ids of ${d} dimensions`);
    const rejected: UpsertResult['rejected'] = [];
    const lastRow = new Map<string, number>();
    for (let i = 0; i < ids.length; i++) {
      const problem = isValidId(ids[i]) ? this.rowProblem(rows, i) : `id ${IndexItemId.safeParse(ids[i]).error?.issues[0].message ?? 'is not valid'}`;
      if (problem) rejected.push({ id: String(ids[i]), reason: problem });
      else {
        lastRow.delete(ids[i]); // keep insertion order = order of the winning rows
        lastRow.set(ids[i], i);
      }
    }
    const n = lastRow.size;
    if (n === 0) return { applied: 0, rejected };

    const vectors = n === ids.length && rows.byteOffset === 0 ? rows : new Float32Array(n * d);
    const keys = new BigUint64Array(n);
    const replaced: bigint[] = [];
    const added: { id: string; key: number }[] = [];
    let j = 0;
    for (const [id, row] of lastRow) {
      if (vectors !== rows) vectors.set(rows.subarray(row * d, row * d + d), j * d);
      let key = this.idToKey.get(id);
      if (key === undefined) {
        key = this.nextKey++;
        added.push({ id, key });
      } else replaced.push(BigInt(key));
      keys[j++] = BigInt(key);
    }
    this.touched = true;
    if (replaced.length) this.index.remove(BigUint64Array.from(replaced));
    for (const { id, key } of added) this.bind(id, key);
    if (metas || this.meta.size > 0) for (const [id, row] of lastRow) this.meta.set(this.idToKey.get(id)!, metas?.[row]);
    const store = this.vectors instanceof MemoryVectors ? this.vectors : undefined;
    try {
      this.index.add(keys, vectors, this.settings.addThreads);
    } catch (err) {
      // Keep the mapping true to the index: forget every id whose node did not make it in.
      const present = this.index.contains(keys) as boolean[];
      keys.forEach((key, i) => {
        if (!present[i]) this.unbind(Number(key));
        else store?.set(Number(key), vectors, i);
      });
      throw err;
    }
    if (store) for (let i = 0; i < n; i++) store.set(Number(keys[i]), vectors, i);
    return { applied: n, rejected };
  }

  /** Removes the given ids; unknown ids are ignored. Returns how many were removed. */
  deleteMany(ids: readonly string[]): number {
    this.assertWritable();
    const keys: bigint[] = [];
    for (const id of new Set(ids)) {
      const key = this.idToKey.get(id);
      if (key !== undefined) keys.push(BigInt(key));
    }
    if (keys.length === 0) return 0;
    this.index.remove(BigUint64Array.from(keys));
    for (const key of keys) this.unbind(Number(key));
    return keys.length;
  }

  /** The `k` nearest ids to `vector` (fewer if the index holds fewer), closest first. */
  search(vector: Float32Array, k: number): VectorHit[] {
    if (vector.length !== this.dimensions) throw new RangeError(`query has ${vector.length} components, expected ${this.dimensions}`);
    if (this.index.size() === 0) return [];
    const m = this.index.search(vector, k, 1);
    const hits: VectorHit[] = [];
    for (let i = 0; i < m.keys.length; i++) {
      const id = this.keyToId.get(Number(m.keys[i]));
      if (id !== undefined) hits.push({ id, distance: m.distances[i], score: this.score(m.distances[i]) });
    }
    return hits;
  }

  /**
   * The `k` nearest ids among the items matching `filter`, by over-fetching (see `FILTER_OVERFETCH`):
   * every hit matches; fewer than `min(k, matching)` come back only when the matching items are too
   * rare to be reached within `FILTER_MAX_CANDIDATES` candidates.
   */
  searchFiltered(vector: Float32Array, k: number, filter: SearchFilter): FilteredHits {
    if (vector.length !== this.dimensions) throw new RangeError(`query has ${vector.length} components, expected ${this.dimensions}`);
    const compiled = this.meta.compile(filter);
    const matching = compiled.count();
    const size = this.index.size();
    if (matching === 0 || size === 0) return { hits: [], matching, path: 'none' };
    if (this.vectors && this.exactFilterMax > 0 && matching <= Math.max(this.exactFilterMax, EXACT_PER_K * k)) {
      const keys = compiled.keys(matching);
      const vectors = this.vectors;
      // Every matching item needs its stored vector (items indexed before vector files have none).
      if (keys.every((key) => vectors.has(key))) {
        try {
          return { hits: this.exactHits(vector, k, keys, vectors.read(keys)), matching, path: 'exact' };
        } catch {
          // unreadable vector file (e.g. removed under a long-retired snapshot): the graph still answers
        }
      }
    }
    const cap = Math.max(k, FILTER_MAX_CANDIDATES);
    const want = Math.min(k, matching);
    let fetch = Math.min(size, cap, Math.max(k, Math.ceil(((k * size) / matching) * FILTER_OVERFETCH)));
    for (;;) {
      const m = this.index.search(vector, fetch, 1);
      const hits: VectorHit[] = [];
      for (let i = 0; i < m.keys.length && hits.length < k; i++) {
        const key = Number(m.keys[i]);
        if (!compiled.matches(key)) continue;
        const id = this.keyToId.get(key);
        if (id !== undefined) hits.push({ id, distance: m.distances[i], score: this.score(m.distances[i]) });
      }
      if (hits.length >= want || fetch >= size || fetch >= cap) return { hits, matching, path: 'overfetch' };
      fetch = Math.min(size, cap, fetch * 4);
    }
  }

  /**
   * Exact top-k of `keys` (whose rows are `rows`) by the index's metric, computed as USearch defines
   * it: `cos` 1 − a·b / (|a| |b|), `ip` 1 − a·b, `l2sq` Σ (a − b)².
   */
  private exactHits(query: Float32Array, k: number, keys: readonly number[], rows: Float32Array): VectorHit[] {
    const d = this.dimensions;
    const metric = this.settings.metric;
    let qq = 0;
    for (let j = 0; j < d; j++) qq += query[j] * query[j];
    const scored: { key: number; distance: number }[] = [];
    for (let i = 0; i < keys.length; i++) {
      const base = i * d;
      let distance: number;
      if (metric === 'l2sq') {
        distance = 0;
        for (let j = 0; j < d; j++) {
          const x = rows[base + j] - query[j];
          distance += x * x;
        }
      } else {
        let dot = 0;
        let rr = 0;
        for (let j = 0; j < d; j++) {
          const r = rows[base + j];
          dot += r * query[j];
          rr += r * r;
        }
        distance = metric === 'ip' ? 1 - dot : qq === 0 || rr === 0 ? 1 : 1 - dot / Math.sqrt(qq * rr);
      }
      scored.push({ key: keys[i], distance: Math.fround(distance) });
    }
    scored.sort((a, b) => a.distance - b.distance || a.key - b.key);
    const hits: VectorHit[] = [];
    for (const { key, distance } of scored) {
      if (hits.length >= k) break;
      const id = this.keyToId.get(key);
      if (id !== undefined) hits.push({ id, distance, score: this.score(distance) });
    }
    return hits;
  }

  /**
   * Writes the vector file (see vector-file.ts) of `namespace` into `dir` and returns its name;
   * undefined when this index has none to write (a viewed snapshot from before vector files).
   */
  saveVectors(dir: string, namespace: string): string | undefined {
    if (!this.vectors) return undefined;
    const name = vectorFileName(namespace, this.vectors.dtype);
    this.vectors.write(join(dir, name), this.nextKey);
    return name;
  }

  /** Filter metadata of `id`, if it carries any. */
  metaOf(id: string): ItemMeta | undefined {
    const key = this.idToKey.get(id);
    return key === undefined ? undefined : this.meta.get(key);
  }

  /**
   * Many queries in one native call (`queries.length / dimensions` rows), spread over `threads`
   * threads (0 = all cores). For throughput measurements and bulk jobs. More than one thread needs
   * an index opened with `load`/`view` (they reserve a search context per core); an index grown by
   * single-threaded adds has one, and USearch answers "Reserve capacity ahead of searches!".
   */
  searchMany(queries: Float32Array, k: number, threads = 1): VectorHit[][] {
    const d = this.dimensions;
    // Only an index fresh from load/view is sure to hold a search context per core; adds reserve as
    // many as their add threads (see above).
    if (this.touched) threads = 1;
    else if (threads === 0 || threads > availableParallelism()) threads = availableParallelism();
    const count = queries.length / d;
    if (!Number.isInteger(count)) throw new RangeError(`searchMany: ${queries.length} values is not a whole number of ${d}-d rows`);
    if (count === 0 || this.index.size() === 0) return Array.from({ length: count }, () => []);
    if (count === 1) return [this.search(queries, k)];
    // One flat matrix: the binding returns BatchMatches for more than one row (its typings say Matches).
    const m = this.index.search(queries, k, threads) as unknown as BatchMatches;
    return Array.from({ length: count }, (_, q) => {
      const r = m.get(q);
      const hits: VectorHit[] = [];
      for (let i = 0; i < r.keys.length; i++) {
        const id = this.keyToId.get(Number(r.keys[i]));
        if (id !== undefined) hits.push({ id, distance: r.distances[i], score: this.score(r.distances[i]) });
      }
      return hits;
    });
  }

  /** Writes the USearch file (synchronously) and returns the mapping to persist beside it. */
  save(file: string): IdMapping {
    this.index.save(file);
    return this.exportMapping();
  }

  exportMapping(): IdMapping {
    const keys = [...this.idToKey.values()];
    const meta = this.meta.export(keys);
    return { nextKey: this.nextKey, ids: [...this.idToKey.keys()], keys, ...(meta ? { meta } : {}) };
  }

  private importMapping(mapping: IdMapping, file: string): void {
    const { ids, keys, nextKey, meta } = mapping;
    if (!Array.isArray(ids) || !Array.isArray(keys) || ids.length !== keys.length || !Number.isSafeInteger(nextKey)) {
      throw new Error(`mapping for ${file} is malformed`);
    }
    if (ids.length !== this.index.size()) throw new Error(`mapping for ${file} has ${ids.length} ids but the index holds ${this.index.size()} vectors`);
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isSafeInteger(keys[i]) || keys[i] >= nextKey)
        throw new Error(`mapping for ${file}: key ${keys[i]} of ${ids[i]} is not below nextKey ${nextKey}`);
      this.bind(ids[i], keys[i]);
    }
    if (meta !== undefined) this.meta.import(keys, meta, `the mapping for ${file}`);
    this.nextKey = nextKey;
  }

  private bind(id: string, key: number): void {
    this.idToKey.set(id, key);
    this.keyToId.set(key, id);
  }

  private unbind(key: number): void {
    this.meta.clear(key);
    if (this.vectors instanceof MemoryVectors) this.vectors.clear(key);
    const id = this.keyToId.get(key);
    this.keyToId.delete(key);
    if (id !== undefined) this.idToKey.delete(id);
  }

  private rowProblem(rows: Float32Array, row: number): string | undefined {
    const d = this.dimensions;
    let norm = 0;
    for (let i = row * d, end = i + d; i < end; i++) {
      const x = rows[i];
      if (!Number.isFinite(x)) return `component ${i - row * d} is not a finite number`;
      norm += x * x;
    }
    if (norm === 0 && this.settings.metric === 'cos') return 'zero vector has no direction under the cos metric';
    return undefined;
  }

  private score(distance: number): number {
    return this.settings.metric === 'l2sq' ? -distance : 1 - distance;
  }

  private assertWritable(): void {
    if (this.readOnly) throw new Error('this index is memory-mapped (view) and read-only; load it to modify it');
  }
}
