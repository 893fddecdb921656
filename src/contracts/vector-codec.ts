import { endianness } from 'node:os';

const LE = endianness() === 'LE';

/**
 * Embedding vectors travel in job results as base64 of little-endian float32: 4 KB for 768 dims,
 * against ~15 KB as a JSON list (and `JSON.stringify(Float32Array)` gives an object, not a list).
 */
export function encodeVector(v: Float32Array): string {
  // On a little-endian machine (every platform Node ships for, in practice) the array's bytes already are the format.
  if (LE) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  const buf = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i], i * 4);
  return buf.toString('base64');
}

/** Inverse of `encodeVector`. Throws on input that is not a whole number of float32 values. */
export function decodeVector(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  if (buf.length % 4 !== 0) throw new RangeError(`vector payload has ${buf.length} bytes, not a multiple of 4`);
  const out = new Float32Array(buf.length / 4);
  if (LE) new Uint8Array(out.buffer).set(buf);
  else for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}
