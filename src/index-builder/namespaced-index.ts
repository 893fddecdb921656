import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ItemMeta, isActiveFilter, type SearchFilter } from './item-metadata';
import { type CompiledIndexSettings, isValidNamespace } from './settings';
import { DEFAULT_EXACT_FILTER_MAX, type IdMapping, type OpenMode, type VectorHit, VectorIndex } from './vector-index';

/** One change to the index, as it travels through the log. Upserts take their vector from `OpBatch.vectors`. */
export interface IndexOp {
  kind: 'upsert' | 'delete';
  namespace: string;
  id: string;
  /** Upserts: what filters can select the item by (tenant, deal, timestamp). */
  meta?: ItemMeta;
}

/** One query of a batch; its vector is row `i` of the batch's matrix. */
export interface BatchQuery {
  k: number;
  /** Omitted: every namespace, merged by distance. */
  namespace?: string;
  filter?: SearchFilter;
}

/** The answer to one query: hits, and for a filtered query how many items matched the filter. */
export interface QueryAnswer {
  hits: NamespacedHit[];
  matching?: number;
}

/** One query's outcome in a batch: a failing query fails alone. */
export type BatchAnswer = ({ ok: true } & QueryAnswer) | { ok: false; error: { name: string; message: string } };

/**
 * An ordered list of changes. `vectors` holds one row (`dimensions` floats) per upsert, in the order
 * the upserts appear in `ops`; deletes take no row. Applying a batch twice gives the same index.
 */
export interface OpBatch {
  ops: IndexOp[];
  vectors: Float32Array;
}

export interface ApplyResult {
  upserted: number;
  deleted: number;
  rejected: { namespace: string; id: string; reason: string }[];
  /** Vectors in the whole index after the batch. */
  size: number;
}

export interface NamespacedHit extends VectorHit {
  namespace: string;
}

/**
 * Where each namespace's index file is inside a snapshot folder, how many vectors it holds, and its
 * vector file (exact filtered search; absent in snapshots written before vector files).
 */
export type NamespaceFiles = Record<string, { file: string; count: number; vectors?: string }>;

/** How `NamespacedIndex.open` opens a snapshot for search. */
export interface OpenOptions {
  /** Overrides the snapshot's `expansionSearch` (ef). */
  expansionSearch?: number;
  /**
   * Filters matching at most `max(exactFilterMax, 32 × k)` items are answered exactly from the vector
   * file (complete: every matching item can be returned); more, by over-fetching from the graph.
   * Default 2,048 (`DEFAULT_EXACT_FILTER_MAX`); 0 always over-fetches.
   */
  exactFilterMax?: number;
}

/** The mapping file of a snapshot: every namespace's id ↔ key mapping. */
export interface MappingFile {
  format: 1;
  namespaces: Record<string, IdMapping>;
}

export const MAPPING_FILE = 'mapping.json';

export function namespaceFile(namespace: string): string {
  return `ns-${namespace}.usearch`;
}

/**
 * The index as a set of namespaces (`call_notes`, `messages`, `deals`, ...), one USearch index each.
 *
 * Why one index per namespace rather than one index with a namespace filter: this USearch binding
 * has no filtered search, so a filter means over-fetching and post-filtering, which returns too few
 * hits for a small namespace next to a big one. Separate graphs give exact-k results per namespace,
 * and a query without a namespace searches each and merges by distance (comparable: same metric).
 * Ids are unique per namespace.
 */
export class NamespacedIndex {
  private readonly indexes = new Map<string, VectorIndex>();
  private exactMax = DEFAULT_EXACT_FILTER_MAX;
  /** Filtered searches answered per namespace and path: exact (vector file) or over-fetch (graph). */
  readonly filterPaths = { exact: 0, overfetch: 0 };

  constructor(
    readonly settings: CompiledIndexSettings,
    readOnly = false,
  ) {
    this.readOnly = readOnly;
  }

  readonly readOnly: boolean;

  /** See `OpenOptions.exactFilterMax`. */
  get exactFilterMax(): number {
    return this.exactMax;
  }

  set exactFilterMax(value: number) {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`exactFilterMax must be a non-negative integer, got ${value}`);
    this.exactMax = value;
    for (const index of this.indexes.values()) index.exactFilterMax = value;
  }

  /**
   * Opens a snapshot folder's files (already verified against their checksums). A namespace with a
   * vector file answers rare filters exactly; one without (an older snapshot) over-fetches.
   */
  static open(dir: string, settings: CompiledIndexSettings, namespaces: NamespaceFiles, mode: OpenMode, opts: OpenOptions = {}): NamespacedIndex {
    const mapping = JSON.parse(readFileSync(join(dir, MAPPING_FILE), 'utf8')) as MappingFile;
    if (mapping?.format !== 1 || typeof mapping.namespaces !== 'object') throw new Error(`${MAPPING_FILE} in ${dir} is not a format-1 mapping`);
    const set = new NamespacedIndex(settings, mode === 'view');
    for (const [ns, { file, vectors }] of Object.entries(namespaces)) {
      const m = mapping.namespaces[ns];
      if (!m) throw new Error(`mapping has no entry for namespace ${ns}`);
      set.indexes.set(
        ns,
        VectorIndex.open(settings, join(dir, file), m, mode, {
          expansionSearch: opts.expansionSearch,
          ...(vectors !== undefined ? { vectorFile: join(dir, vectors) } : {}),
        }),
      );
    }
    if (opts.exactFilterMax !== undefined) set.exactFilterMax = opts.exactFilterMax;
    return set;
  }

  get size(): number {
    let n = 0;
    for (const index of this.indexes.values()) n += index.size;
    return n;
  }

  namespaceSizes(): Record<string, number> {
    return Object.fromEntries([...this.indexes].map(([ns, index]) => [ns, index.size]));
  }

  /**
   * Applies a batch: only the last op per (namespace, id) matters, so the batch is reduced to that,
   * then each namespace gets one `remove` and one batch `add`.
   */
  apply(batch: OpBatch): ApplyResult {
    if (this.readOnly) throw new Error('this index is memory-mapped (view) and read-only');
    const d = this.settings.dimensions;
    const upserts = batch.ops.reduce((n, op) => n + (op.kind === 'upsert' ? 1 : 0), 0);
    if (batch.vectors.length !== upserts * d) throw new RangeError(`batch has ${upserts} upserts but ${batch.vectors.length / d} vector rows`);

    const rejected: ApplyResult['rejected'] = [];
    const last = new Map<string, { op: IndexOp; row: number }>();
    let row = 0;
    for (const op of batch.ops) {
      const r = op.kind === 'upsert' ? row++ : -1;
      if (!isValidNamespace(op.namespace)) {
        rejected.push({ namespace: String(op.namespace), id: String(op.id), reason: 'namespace must be 1-64 of A-Z a-z 0-9 _ . -' });
        continue;
      }
      const key = `${op.namespace}\u0000${op.id}`;
      last.delete(key);
      last.set(key, { op, row: r });
    }

    const perNs = new Map<string, { deletes: string[]; ids: string[]; rows: number[]; metas: (ItemMeta | undefined)[] }>();
    for (const { op, row: r } of last.values()) {
      let g = perNs.get(op.namespace);
      if (!g) perNs.set(op.namespace, (g = { deletes: [], ids: [], rows: [], metas: [] }));
      if (op.kind === 'delete') g.deletes.push(op.id);
      else {
        g.ids.push(op.id);
        g.rows.push(r);
        g.metas.push(op.meta);
      }
    }

    let upserted = 0;
    let deleted = 0;
    for (const [ns, g] of perNs) {
      let index = this.indexes.get(ns);
      if (g.deletes.length && index) deleted += index.deleteMany(g.deletes);
      if (g.ids.length === 0) continue;
      if (!index) {
        this.indexes.set(ns, (index = new VectorIndex(this.settings)));
        index.exactFilterMax = this.exactMax;
      }
      const rows = new Float32Array(g.ids.length * d);
      g.rows.forEach((r, i) => rows.set(batch.vectors.subarray(r * d, r * d + d), i * d));
      const res = index.upsertRows(g.ids, rows, g.metas);
      upserted += res.applied;
      for (const x of res.rejected) rejected.push({ namespace: ns, ...x });
    }
    return { upserted, deleted, rejected, size: this.size };
  }

  /**
   * The `k` nearest items in `namespace`, or across every namespace (each searched for `k`, then
   * merged by distance) when it is omitted. An unknown namespace has no hits.
   */
  search(vector: Float32Array, k: number, namespace?: string): NamespacedHit[] {
    if (namespace !== undefined) {
      const index = this.indexes.get(namespace);
      return index ? index.search(vector, k).map((h) => ({ ...h, namespace })) : [];
    }
    const all: NamespacedHit[] = [];
    for (const [ns, index] of this.indexes) for (const h of index.search(vector, k)) all.push({ ...h, namespace: ns });
    return all.sort((a, b) => a.distance - b.distance).slice(0, k);
  }

  /**
   * One query, optionally filtered (see `VectorIndex.searchFiltered`). Without a namespace every
   * namespace is searched and the hits merged; `matching` then sums over namespaces.
   */
  query(vector: Float32Array, q: BatchQuery): QueryAnswer {
    if (!Number.isInteger(q.k) || q.k < 1) throw new RangeError(`k must be a positive integer, got ${q.k}`);
    if (!isActiveFilter(q.filter)) return { hits: this.search(vector, q.k, q.namespace) };
    const filter = q.filter;
    const targets =
      q.namespace === undefined ? [...this.indexes] : this.indexes.has(q.namespace) ? [[q.namespace, this.indexes.get(q.namespace)!] as const] : [];
    let matching = 0;
    const all: NamespacedHit[] = [];
    for (const [ns, index] of targets) {
      const r = index.searchFiltered(vector, q.k, filter);
      if (r.path !== 'none') this.filterPaths[r.path]++;
      matching += r.matching;
      for (const h of r.hits) all.push({ ...h, namespace: ns });
    }
    if (targets.length > 1) all.sort((a, b) => a.distance - b.distance);
    return { hits: all.slice(0, q.k), matching };
  }

  /**
   * A batch of queries (row `i` of `vectors` for `queries[i]`) in as few native calls as possible:
   * unfiltered queries with the same namespace and `k` go to USearch as one matrix spread over
   * `threads` threads (0 = all cores); filtered ones run one by one. A query that fails (or whose
   * group call fails) gets its own error; the others are answered.
   */
  searchBatch(vectors: Float32Array, queries: readonly BatchQuery[], threads = 0): BatchAnswer[] {
    const d = this.settings.dimensions;
    if (vectors.length !== queries.length * d) throw new RangeError(`searchBatch: ${vectors.length} values for ${queries.length} queries of ${d} dimensions`);
    const out: BatchAnswer[] = new Array(queries.length);
    const row = (i: number) => vectors.subarray(i * d, i * d + d);
    const one = (i: number) => {
      try {
        out[i] = { ok: true, ...this.query(row(i), queries[i]) };
      } catch (err) {
        out[i] = { ok: false, error: errorOf(err) };
      }
    };
    const groups = new Map<string, number[]>();
    queries.forEach((q, i) => {
      if (isActiveFilter(q.filter) || !Number.isInteger(q.k) || q.k < 1) {
        one(i);
        return;
      }
      const key = `${q.namespace ?? ''}\u0000${q.k}`;
      const g = groups.get(key);
      if (g) g.push(i);
      else groups.set(key, [i]);
    });
    for (const members of groups.values()) {
      if (members.length === 1) {
        one(members[0]);
        continue;
      }
      const { k, namespace } = queries[members[0]];
      const matrix = new Float32Array(members.length * d);
      members.forEach((i, j) => {
        matrix.set(row(i), j * d);
      });
      try {
        const targets = namespace === undefined ? [...this.indexes.keys()] : [namespace];
        const merged: NamespacedHit[][] = members.map(() => []);
        for (const ns of targets) {
          this.searchMany(matrix, k, ns, threads).forEach((hits, j) => {
            merged[j].push(...hits);
          });
        }
        members.forEach((i, j) => {
          const hits = targets.length > 1 ? merged[j].sort((a, b) => a.distance - b.distance).slice(0, k) : merged[j];
          out[i] = { ok: true, hits };
        });
      } catch {
        for (const i of members) one(i); // isolate the query that broke the group call
      }
    }
    return out;
  }

  /** Many queries (a flat `count × dimensions` matrix) against one namespace in one native call over `threads` threads (0 = all cores). */
  searchMany(queries: Float32Array, k: number, namespace: string, threads = 1): NamespacedHit[][] {
    const index = this.indexes.get(namespace);
    if (!index) return Array.from({ length: Math.floor(queries.length / this.settings.dimensions) }, () => []);
    return index.searchMany(queries, k, threads).map((hits) => hits.map((h) => ({ ...h, namespace })));
  }

  /**
   * Writes one index file and one vector file per namespace and the mapping file into `dir` (not
   * fsynced: the snapshot store does that).
   */
  save(dir: string): { namespaces: NamespaceFiles; count: number } {
    const namespaces: NamespaceFiles = {};
    const mapping: MappingFile = { format: 1, namespaces: {} };
    for (const [ns, index] of this.indexes) {
      const file = namespaceFile(ns);
      mapping.namespaces[ns] = index.save(join(dir, file));
      const vectors = index.saveVectors(dir, ns);
      namespaces[ns] = { file, count: index.size, ...(vectors !== undefined ? { vectors } : {}) };
    }
    writeFileSync(join(dir, MAPPING_FILE), JSON.stringify(mapping));
    return { namespaces, count: this.size };
  }
}

function errorOf(err: unknown): { name: string; message: string } {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message };
}
