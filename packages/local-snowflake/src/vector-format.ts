/**
 * Writes a numeric vector as Snowflake shows a VECTOR cell, `[0.0123457,-0.25,…]`, as ASCII bytes.
 *
 * A 500-text embedding batch is 384,000 numbers; `Number#toString` on float32-widened values (17
 * significant digits each) costs ~100–300 ms and doubles the payload. Instead each component is written
 * as fixed-point with {@link VECTOR_DECIMALS} decimals (trailing zeros trimmed) straight into a byte
 * buffer: an absolute error below 5e-8, finer than float32 resolution for unit-vector components, at a
 * few milliseconds per batch. Magnitudes of 1e9 and above (never produced by embeddings) and non-finite
 * values fall back to `String(v)`.
 *
 * The result is bytes, not a string, and never needs JSON escaping (digits, `-`, `.`, `,`, `[`, `]`,
 * `e`, `+`, and the letters of `NaN`/`Infinity`): the reply writer copies it into the reply as it is,
 * where a string would be copied into `JSON.stringify`'s output and encoded to UTF-8 once more.
 */
export const VECTOR_DECIMALS = 7;

const SCALE = 10 ** VECTOR_DECIMALS;
// Read once: under jest's vm sandbox each `Math.x` / `Number.x` lookup in the loop is a slow global read.
const { round, abs, floor } = Math;
const isFiniteNumber = Number.isFinite;
const FIXED_LIMIT = 1e9;
const ZERO = 48;

// Formatting goes through one scratch buffer, grown when a longer vector comes; the result is an exact-size copy.
let scratch = Buffer.allocUnsafe(768 * 26 + 2);

export function formatNumberVector(items: ArrayLike<number>): Buffer {
  // Fixed-point cells are at most 1 + 10 + 1 + 7 + 1 bytes; a String(v) fallback at most 24 + 1.
  if (scratch.length < items.length * 26 + 2) scratch = Buffer.allocUnsafe(items.length * 26 + 2);
  const buf = scratch;
  let p = 0;
  buf[p++] = 91; // [
  for (let k = 0; k < items.length; k++) {
    if (k > 0) buf[p++] = 44; // ,
    const v = items[k];
    if (!isFiniteNumber(v) || abs(v) >= FIXED_LIMIT) {
      p += buf.write(String(v), p, 'latin1');
      continue;
    }
    const scaled = round(abs(v) * SCALE);
    if (v < 0 && scaled !== 0) buf[p++] = 45; // -
    let intPart = floor(scaled / SCALE);
    let frac = scaled - intPart * SCALE; // integer in [0, SCALE)
    // integer digits
    if (intPart === 0) {
      buf[p++] = ZERO;
    } else {
      const start = p;
      while (intPart > 0) {
        buf[p++] = ZERO + (intPart % 10);
        intPart = floor(intPart / 10);
      }
      buf.subarray(start, p).reverse();
    }
    buf[p++] = 46; // .
    if (frac === 0) {
      buf[p++] = ZERO;
      continue;
    }
    // frac < 1e7 fits in int32, so `| 0` division is exact and much cheaper than Math.floor.
    let digits = VECTOR_DECIMALS;
    let q = (frac / 10) | 0;
    while (frac === q * 10) {
      frac = q;
      q = (frac / 10) | 0;
      digits--;
    }
    for (let d = digits - 1; d >= 0; d--) {
      q = (frac / 10) | 0;
      buf[p + d] = ZERO + frac - q * 10;
      frac = q;
    }
    p += digits;
  }
  buf[p++] = 93; // ]
  const out = Buffer.allocUnsafe(p);
  buf.copy(out, 0, 0, p);
  return out;
}
