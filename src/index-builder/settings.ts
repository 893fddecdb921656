import { IndexOptionError } from './errors/index-option-error';

const INDEX_METRICS = ['cos', 'ip', 'l2sq'] as const;
/** Distance used by the index. `cos` for embeddings; `ip` expects normalised vectors; `l2sq` is squared Euclidean. */
type IndexMetric = (typeof INDEX_METRICS)[number];

const INDEX_DTYPES = ['f32', 'f16', 'i8'] as const;
/** How each stored vector component is kept: 4, 2 or 1 byte(s). Queries are always given as float32. */
type IndexDType = (typeof INDEX_DTYPES)[number];

/**
 * The settings of one USearch HNSW index. Every field is optional; the default is given with each.
 * The same settings apply to every namespace of an index and are recorded in each snapshot's manifest.
 */
export interface IndexSettings {
  /** Vector length. Default 768 (`EMBED_TEXT_768`). Fixed for the index's lifetime: a change needs a rebuild. */
  dimensions?: number;
  /** Default `'cos'`. Fixed for the index's lifetime. */
  metric?: IndexMetric;
  /**
   * Stored scalar type. Default `'f16'`: on the benchmark's clustered 768-d data it gave the same
   * recall@10 as `'f32'` (to 3 decimals) at half the memory and snapshot size and ~1.7× faster search.
   * `'f32'` for unnormalised vectors with large components (f16 overflows past ±65504); `'i8'` quarters
   * memory but capped recall@10 near 0.92 there. Fixed for the index's lifetime.
   */
  dtype?: IndexDType;
  /** HNSW graph degree M (links per node per layer). Default 16; 2–256. */
  connectivity?: number;
  /** Candidate-list size while inserting (ef_construction). Default 128; 1–4096. */
  expansionAdd?: number;
  /**
   * Candidate-list size while searching (ef). Default 192, measured with `runAnnBench` on the hard
   * clustered data set at 100k × 768 (f16, M 16): recall@10 was 0.856 at 64 (the library default),
   * 0.926 at 128, 0.944 at 160, 0.957 at 192, 0.972 at 256. On real vectors (GloVe 6B, 100k × 768
   * through an orthogonal map; `fleet bench ann --dataset glove`): 0.902 at 64, 0.954 at 128, 0.972 at
   * 192, 0.979 at 256 (docs/search.md). Recall falls as the index grows, hence the margin. 1–4096. A search service
   * may override it per replica without a rebuild (a viewed index takes it at construction only).
   */
  expansionSearch?: number;
  /**
   * Threads used by one batch `add` call. Default 1: concurrent adds can leave nodes unreachable
   * (USearch #735, open in 2.25.x). Raise only after measuring recall with `runAnnBench`. 1–64.
   */
  addThreads?: number;
}

/** Settings after defaults and validation; what travels to the index thread and into manifests. */
export interface CompiledIndexSettings {
  readonly dimensions: number;
  readonly metric: IndexMetric;
  readonly dtype: IndexDType;
  readonly connectivity: number;
  readonly expansionAdd: number;
  readonly expansionSearch: number;
  readonly addThreads: number;
}

export const DEFAULT_INDEX_SETTINGS: CompiledIndexSettings = Object.freeze({
  dimensions: 768,
  metric: 'cos',
  dtype: 'f16',
  connectivity: 16,
  expansionAdd: 128,
  expansionSearch: 192,
  addThreads: 1,
});

const KNOWN_KEYS = new Set(Object.keys(DEFAULT_INDEX_SETTINGS));

/**
 * Defaults spread first, then every value checked; a bad one throws `IndexOptionError` naming it.
 * `path` prefixes option names in messages (`settings.connectivity`).
 *
 * @example compileIndexSettings({ dimensions: 384, dtype: 'f16' })
 */
export function compileIndexSettings(input: IndexSettings | undefined, path = 'settings'): CompiledIndexSettings {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new IndexOptionError(path, input, 'an object');
  }
  for (const key of Object.keys(input ?? {})) {
    if (!KNOWN_KEYS.has(key))
      throw new IndexOptionError(`${path}.${key}`, (input as Record<string, unknown>)[key], `one of the known settings: ${[...KNOWN_KEYS].join(', ')}`);
  }
  const defined = Object.fromEntries(Object.entries(input ?? {}).filter(([, v]) => v !== undefined));
  const s = { ...DEFAULT_INDEX_SETTINGS, ...defined } as CompiledIndexSettings;
  integerIn(`${path}.dimensions`, s.dimensions, 1, 65_536);
  oneOf(`${path}.metric`, s.metric, INDEX_METRICS);
  oneOf(`${path}.dtype`, s.dtype, INDEX_DTYPES);
  integerIn(`${path}.connectivity`, s.connectivity, 2, 256);
  integerIn(`${path}.expansionAdd`, s.expansionAdd, 1, 4096);
  integerIn(`${path}.expansionSearch`, s.expansionSearch, 1, 4096);
  integerIn(`${path}.addThreads`, s.addThreads, 1, 64);
  return Object.freeze({ ...s });
}

/** Throws `IndexOptionError` unless `value` is an integer in [min, max]. Returns it typed. */
export function integerIn(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new IndexOptionError(option, value, `an integer from ${min} to ${max}`);
  }
  return value;
}

export function oneOf<T extends string>(option: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) throw new IndexOptionError(option, value, `one of ${allowed.join(', ')}`);
  return value as T;
}

/** The settings that define what a stored index file is; changing any of them needs a rebuild. */
export function sameStorageSettings(a: CompiledIndexSettings, b: CompiledIndexSettings): boolean {
  return a.dimensions === b.dimensions && a.metric === b.metric && a.dtype === b.dtype;
}

/** Namespace used when a producer or a query names none. */
export const DEFAULT_NAMESPACE = 'default';

// One rule for namespaces and ids, the contracts' (src/contracts/embedding.ts): what a producer may send is
// exactly what the index accepts.
export { isValidId, isValidNamespace } from '../contracts/embedding';
