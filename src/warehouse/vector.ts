import { WarehouseResultError } from './errors';

/**
 * Parses a vector cell as the driver hands it over. Real Snowflake's `VECTOR(FLOAT, 768)` arrives from
 * snowflake-sdk 3.x as a raw string (`"[0.1,-0.2,...]"`); an ARRAY column arrives parsed; both are accepted.
 */
export function parseVector(cell: unknown, dims: number): Float32Array {
  if (typeof cell === 'string') {
    const fast = scanVector(cell, dims);
    if (fast) return fast;
  }
  let values: ArrayLike<unknown>;
  if (typeof cell === 'string') {
    try {
      values = JSON.parse(cell) as unknown[];
    } catch {
      throw new WarehouseResultError(`vector cell is not a JSON array: ${cell.slice(0, 40)}`);
    }
  } else if (Array.isArray(cell) || cell instanceof Float32Array || cell instanceof Float64Array) {
    values = cell;
  } else {
    throw new WarehouseResultError(`vector cell has unexpected type ${cell === null ? 'null' : typeof cell}`);
  }
  if (!values || typeof values.length !== 'number' || values.length !== dims) {
    throw new WarehouseResultError(`vector has ${values?.length} dimensions, expected ${dims}`);
  }
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new WarehouseResultError(`vector component ${i} is not a finite number`);
    out[i] = v;
  }
  return out;
}

// Exact powers of ten as doubles: 10^0 … 10^22 are representable exactly.
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * Reads `[d,d,…]` straight into a Float32Array, without the JSON array of `dims` doubles that
 * `JSON.parse` would build (a 500-text batch is 384,000 numbers). Exact: a component is accepted only
 * when its decimal mantissa has at most 15 significant digits and its power of ten at most 22, where one
 * IEEE division (or multiplication) of two exact doubles gives the correctly rounded value, the same
 * double JSON.parse gives. Anything else — longer mantissas, `NaN`, whitespace it does not expect, a
 * wrong count — returns undefined and the caller takes the JSON.parse path, which also produces the errors.
 */
function scanVector(s: string, dims: number): Float32Array | undefined {
  const n = s.length;
  if (n < 2 || s.charCodeAt(0) !== 91) return undefined; // [
  const out = new Float32Array(dims);
  let i = 1;
  let k = 0;
  for (;;) {
    let c = s.charCodeAt(i);
    if (c === 93 && k === 0 && i === n - 1) break; // [] (then the count check fails)
    if (k === dims) return undefined;
    let neg = false;
    if (c === 45) {
      neg = true;
      c = s.charCodeAt(++i);
    }
    let mant = 0;
    let sig = 0;
    let scale = 0;
    let any = false;
    while (c >= 48 && c <= 57) {
      if (mant !== 0 || c !== 48) sig++;
      mant = mant * 10 + (c - 48);
      any = true;
      c = s.charCodeAt(++i);
    }
    if (c === 46) {
      c = s.charCodeAt(++i);
      while (c >= 48 && c <= 57) {
        if (mant !== 0 || c !== 48) sig++;
        mant = mant * 10 + (c - 48);
        scale--;
        any = true;
        c = s.charCodeAt(++i);
      }
    }
    if (c === 101 || c === 69) {
      c = s.charCodeAt(++i);
      let eneg = false;
      if (c === 45 || c === 43) {
        eneg = c === 45;
        c = s.charCodeAt(++i);
      }
      let e = 0;
      let edigits = 0;
      while (c >= 48 && c <= 57 && edigits < 4) {
        e = e * 10 + (c - 48);
        edigits++;
        c = s.charCodeAt(++i);
      }
      if (edigits === 0) return undefined;
      scale += eneg ? -e : e;
    }
    if (!any || sig > 15 || scale > 22 || scale < -22) return undefined;
    const v = scale >= 0 ? mant * POW10[scale] : mant / POW10[-scale];
    out[k++] = neg ? -v : v;
    if (c === 44)
      i++; // ,
    else if (c === 93 && i === n - 1)
      break; // ]
    else return undefined;
  }
  return k === dims ? out : undefined;
}
