/**
 * LOCAL STAND-IN for Snowflake Cortex `e5-base-v2` embeddings. This is NOT a language model: it is a
 * deterministic, lexical feature hasher, so development, tests and benchmarks without a Snowflake account
 * still get 768-dimensional unit vectors in which texts that share words (and word pieces) are near each
 * other. Scores are not comparable with real e5-base-v2 vectors; never mix the two in one index.
 *
 * Features, each hashed (FNV-1a over UTF-16 code units, then a murmur3 finaliser) into one of 768 buckets
 * with a hash-derived sign:
 * - word unigrams (weight 1.0) and adjacent-word bigrams (0.5), after dropping very common stop words;
 * - character 3- and 4-grams of each word with boundary marks `<word>` (0.3 each), so that inflections
 *   (`renewal` / `renewals`) and typos still overlap.
 * The sum is L2-normalised. Text is NFKC-normalised and lower-cased first, so case and Unicode
 * compatibility forms do not matter.
 *
 * Edge cases, chosen so every output is a valid unit vector (cosine indexes reject zero vectors):
 * - text with no letters or digits but some other characters (emoji, punctuation) is embedded from the
 *   character 3-grams of its trimmed code points;
 * - empty or whitespace-only text maps to {@link EMPTY_TEXT_VECTOR}: the unit vector along dimension 0.
 */

/** Dimensions of the stand-in, matching `EMBED_TEXT_768`. */
export const EMBEDDER_DIMS = 768;
// Hot loops use this module-local copy: CommonJS output reads exported constants as `exports.X`.
const DIMS = EMBEDDER_DIMS;

const UNIGRAM_WEIGHT = 1.0;
const BIGRAM_WEIGHT = 0.5;
const CHAR_NGRAM_WEIGHT = 0.3;

// Distinct FNV offset bases per feature family, so the word "abc" and the trigram "abc" land apart.
const SEED_UNIGRAM = 0x811c9dc5;
const SEED_BIGRAM = 0x01000193 ^ 0x5bd1e995;
const SEED_CHAR3 = 0x9747b28c;
const SEED_CHAR4 = 0x2f5a3c1d;
const SEED_SYMBOL = 0x68e31da4;

const FNV_PRIME = 0x01000193;

// Globals are read once: inside jest's vm sandbox every `Math.x` lookup in a hot loop goes through the
// sandbox's global object and made this embedder ~15x slower than in plain Node.
const imul = Math.imul;
const sqrt = Math.sqrt;

/**
 * Words too common to say anything about a text's topic. Without this, any two English sentences look
 * alike because they share "the", "and" and "to".
 */
const STOP_WORDS = new Set(
  (
    'a an and are as at be been but by can could did do does for from had has have he her him his i if in into ' +
    'is it its just me my no nor not of on or our ours she so than that the their them then there these they ' +
    'this those to too up us was we were what when where which while who will with would you your'
  ).split(' '),
);

const WORD_PATTERN = /[\p{L}\p{N}]+/gu;

/** The vector for text with nothing to hash (empty or whitespace only). Frozen copy-on-read: see embedText. */
export const EMPTY_TEXT_VECTOR: Readonly<Float32Array> = (() => {
  const v = new Float32Array(DIMS);
  v[0] = 1;
  return v;
})();

function fnv1a(seed: number, s: string, start: number, end: number): number {
  let h = seed >>> 0;
  for (let i = start; i < end; i++) {
    h ^= s.charCodeAt(i);
    h = imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/** murmur3 fmix32: spreads FNV's weak low bits so `% 768` and the sign bit are independent. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function addFeature(acc: Float64Array, hash: number, weight: number): void {
  const h = fmix32(hash);
  const bucket = h % DIMS;
  acc[bucket] += h & 0x80000000 ? -weight : weight;
}

function addCharNgrams(acc: Float64Array, marked: string, n: number, seed: number, weight: number): void {
  for (let i = 0; i + n <= marked.length; i++) addFeature(acc, fnv1a(seed, marked, i, i + n), weight);
}

function addSymbolNgrams(acc: Float64Array, text: string): void {
  const points = Array.from(text);
  if (points.length < 3) {
    addFeature(acc, fnv1a(SEED_SYMBOL, text, 0, text.length), 1);
    return;
  }
  for (let i = 0; i + 3 <= points.length; i++) {
    const gram = points[i] + points[i + 1] + points[i + 2];
    addFeature(acc, fnv1a(SEED_SYMBOL, gram, 0, gram.length), 1);
  }
}

/**
 * Embeds one text with the local lexical stand-in for e5-base-v2 (see the module comment). Deterministic
 * across processes and platforms; returns a new 768-dimensional, L2-normalised vector.
 *
 * @example
 *   const a = embedText('renewal at risk: pricing concerns');
 *   const b = embedText('pricing concerns put the renewal at risk');
 *   // cosine(a, b) is high; cosine(a, embedText('lunch menu for friday')) is near 0
 */
export function embedText(text: string): Float32Array {
  const normalised = text.normalize('NFKC').toLowerCase();
  const acc = new Float64Array(DIMS);

  const allWords = normalised.match(WORD_PATTERN) ?? [];
  const contentWords = allWords.filter((w) => !STOP_WORDS.has(w));
  // A text made only of stop words ("to be or not to be") still deserves a vector of its own.
  const words = contentWords.length > 0 ? contentWords : allWords;

  if (words.length > 0) {
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      addFeature(acc, fnv1a(SEED_UNIGRAM, w, 0, w.length), UNIGRAM_WEIGHT);
      if (i > 0) {
        // Hash "previous \u0001 current" without building the joined string.
        let h = fnv1a(SEED_BIGRAM, words[i - 1], 0, words[i - 1].length);
        h = imul(h ^ 1, FNV_PRIME) >>> 0;
        addFeature(acc, fnv1a(h, w, 0, w.length), BIGRAM_WEIGHT);
      }
      const marked = `<${w}>`;
      addCharNgrams(acc, marked, 3, SEED_CHAR3, CHAR_NGRAM_WEIGHT);
      addCharNgrams(acc, marked, 4, SEED_CHAR4, CHAR_NGRAM_WEIGHT);
    }
  } else {
    const trimmed = normalised.trim();
    if (trimmed.length === 0) return Float32Array.from(EMPTY_TEXT_VECTOR);
    addSymbolNgrams(acc, trimmed);
  }

  let norm = 0;
  for (let i = 0; i < DIMS; i++) norm += acc[i] * acc[i];
  // Opposite-signed features can cancel exactly; fall back rather than divide by zero.
  if (norm === 0) return Float32Array.from(EMPTY_TEXT_VECTOR);
  const scale = 1 / sqrt(norm);
  const out = new Float32Array(DIMS);
  for (let i = 0; i < DIMS; i++) out[i] = acc[i] * scale;
  return out;
}

/** Cosine similarity of two equal-length vectors (both are unit vectors when they come from embedText). */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`vectors differ in length: ${a.length} vs ${b.length}`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
