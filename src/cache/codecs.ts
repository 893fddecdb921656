import os from 'node:os';

/**
 * How one cache turns values into bytes for Redis and back, and how much room a value takes in L1.
 * A codec is part of the storage format: changing it means bumping the cache's key `version`.
 */
export interface CacheCodec<V> {
  /** For messages and stats, e.g. `float32le(768)`. */
  readonly name: string;
  /** Bytes (or a UTF-8 string) to store in Redis. */
  encode(value: V): Buffer | string;
  /** Inverse of `encode`; throws on a payload it does not recognise (the entry is then treated as a miss). */
  decode(raw: Buffer): V;
  /** Approximate bytes the decoded value holds in memory, for the L1 byte bound. */
  byteSize(value: V): number;
  /**
   * Optional shortcut: the L1 size of a value from the length of its encoded form, used when the cache
   * has just encoded or read it (saves a second pass over a large JSON value). Default: `byteSize`.
   */
  sizeOfEncoded?(encodedBytes: number): number;
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** Overhead charged per L1 entry on top of the value (key string, entry object, LRU bookkeeping). */
export const L1_ENTRY_OVERHEAD_BYTES = 96;

/**
 * Float32Array of a fixed length as raw little-endian float32 bytes: 3,072 bytes for 768 dimensions,
 * against ~4 KB as base64 and ~15 KB as a JSON list. Decoding copies into a fresh, aligned array, so a
 * cached vector never aliases ioredis's reply buffer.
 */
export function float32Codec(dims = 768): CacheCodec<Float32Array> {
  if (!Number.isInteger(dims) || dims < 1) throw new RangeError(`float32Codec: dims must be an integer >= 1, got ${dims}`);
  const bytes = dims * 4;
  return {
    name: `float32le(${dims})`,
    encode(v) {
      if (!(v instanceof Float32Array) || v.length !== dims) {
        throw new TypeError(`float32Codec: expected Float32Array(${dims}), got ${describe(v)}`);
      }
      if (LITTLE_ENDIAN) return Buffer.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)); // copies
      const buf = Buffer.allocUnsafe(bytes);
      for (let i = 0; i < dims; i++) buf.writeFloatLE(v[i], i * 4);
      return buf;
    },
    decode(raw) {
      if (raw.length !== bytes) throw new RangeError(`float32Codec: expected ${bytes} bytes, got ${raw.length}`);
      if (LITTLE_ENDIAN) return new Float32Array(new Uint8Array(raw).buffer); // copy: aligned, not shared
      const out = new Float32Array(dims);
      for (let i = 0; i < dims; i++) out[i] = raw.readFloatLE(i * 4);
      return out;
    },
    byteSize: () => bytes,
  };
}

/**
 * JSON text, for plain data such as deal insights. `byteSize` is the UTF-16 length of the JSON text
 * times two: an estimate of the decoded object's footprint that needs no second pass over it when the
 * cache already has the encoded form (it passes that length through `sizeOfEncoded`).
 */
export function jsonCodec<V>(name = 'json'): CacheCodec<V> {
  return {
    name,
    encode: (v) => {
      const s = JSON.stringify(v);
      if (s === undefined) throw new TypeError(`jsonCodec: value is not JSON-serialisable (${describe(v)})`);
      return s;
    },
    decode: (raw) => JSON.parse(raw.toString('utf8')) as V,
    byteSize: (v) => 2 * (JSON.stringify(v)?.length ?? 0),
    sizeOfEncoded: (encodedBytes) => 2 * encodedBytes,
  };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length?: number }).length ?? v.byteLength})`;
  return typeof v;
}
