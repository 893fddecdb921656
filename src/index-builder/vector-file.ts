import { closeSync, copyFileSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import type { CompiledIndexSettings } from './settings';

/**
 * The vector file of one namespace in a snapshot (`vec-<namespace>.f16` or `.f32`): every stored vector,
 * so that a filter matching few items can be answered exactly (the USearch Node binding can neither
 * take a predicate nor return stored vectors).
 *
 * Layout, addressed by the USearch key the mapping uses (keys only grow and are never reused):
 *
 *   [ row 0 | row 1 | … | row nextKey-1 ]  nextKey × dimensions × 2 (f16) or 4 (f32) bytes, little-endian
 *   [ present 0 | … | present nextKey-1 ]  nextKey bytes: 1 = the row holds the key's vector, 0 = none
 *
 * so row `key` is at byte `key × rowBytes`: a positional read per matching key, nothing else touched.
 * Deleted keys (and keys of items indexed before vector files existed) are absent. Rows are stored in the
 * index's own dtype for f16 (the precision the index searches at; half the bytes) and as f32 otherwise
 * (i8 would lose what the exact answer is for).
 */
export type VectorFileDtype = 'f16' | 'f32';

/** Node 24's `Float16Array` (the TypeScript lib this project targets does not declare it). */
type HalfArray = {
  readonly length: number;
  subarray(begin: number, end: number): HalfArray;
  set(src: ArrayLike<number>, offset?: number): void;
} & ArrayLike<number>;
type HalfArrayCtor = new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => HalfArray;
const Float16: HalfArrayCtor | undefined = (globalThis as { Float16Array?: HalfArrayCtor }).Float16Array;

/** f16 for an f16 index (when the runtime has `Float16Array`), else f32. */
export function vectorFileDtype(settings: Pick<CompiledIndexSettings, 'dtype'>): VectorFileDtype {
  return settings.dtype === 'f16' && Float16 ? 'f16' : 'f32';
}

/** `vec-call_notes.f16`. */
export function vectorFileName(namespace: string, dtype: VectorFileDtype): string {
  return `vec-${namespace}.${dtype}`;
}

/** The dtype a vector file's name says, or undefined when this runtime cannot read it. */
export function dtypeOfVectorFile(name: string): VectorFileDtype | undefined {
  if (name.endsWith('.f32')) return 'f32';
  if (name.endsWith('.f16') && Float16) return 'f16';
  return undefined;
}

function bytesPer(dtype: VectorFileDtype): number {
  return dtype === 'f16' ? 2 : 4;
}

function rowView(buffer: ArrayBufferLike, dtype: VectorFileDtype, length?: number): Float32Array | HalfArray {
  return dtype === 'f16' ? new Float16!(buffer, 0, length) : new Float32Array(buffer, 0, length);
}

/** Stored vectors by key: rows are read (as float32) only for the keys asked for. */
export interface VectorRows {
  readonly dtype: VectorFileDtype;
  has(key: number): boolean;
  /** Rows of `keys` (all present), flattened: `keys.length × dimensions` float32s. */
  read(keys: readonly number[]): Float32Array;
  /** Writes the file for `nextKey` keys to `path`. */
  write(path: string, nextKey: number): void;
}

/**
 * Vectors in memory, grown by doubling: the writable index (the builder) keeps them so that every
 * snapshot can write a complete vector file. `dimensions × 2` bytes per key at f16 (1.5 KB at 768-d).
 */
export class MemoryVectors implements VectorRows {
  private rows: Float32Array | HalfArray;
  private present = new Uint8Array(0);

  constructor(
    private readonly dimensions: number,
    readonly dtype: VectorFileDtype,
  ) {
    this.rows = rowView(new ArrayBuffer(0), dtype, 0);
  }

  /** Reads a whole vector file (already verified) written for `nextKey` keys. */
  static fromFile(path: string, dimensions: number, dtype: VectorFileDtype, nextKey: number): MemoryVectors {
    const v = new MemoryVectors(dimensions, dtype);
    const rowBytes = dimensions * bytesPer(dtype);
    const fd = openSync(path, 'r');
    try {
      checkSize(path, fstatSync(fd).size, rowBytes, nextKey);
      v.ensure(Math.max(0, nextKey - 1));
      const rowsBytes = new Uint8Array(nextKey * rowBytes);
      readFully(fd, rowsBytes, 0);
      v.rows.set(rowView(rowsBytes.buffer, dtype, nextKey * dimensions));
      readFully(fd, v.present.subarray(0, nextKey), nextKey * rowBytes);
    } finally {
      closeSync(fd);
    }
    return v;
  }

  has(key: number): boolean {
    return key < this.present.length && this.present[key] === 1;
  }

  /** Stores row `row` of `src` (flattened `dimensions`-wide rows) as the vector of `key`. */
  set(key: number, src: Float32Array, row: number): void {
    this.ensure(key);
    const d = this.dimensions;
    this.rows.set(src.subarray(row * d, row * d + d), key * d);
    this.present[key] = 1;
  }

  clear(key: number): void {
    if (key < this.present.length) this.present[key] = 0;
  }

  read(keys: readonly number[]): Float32Array {
    const d = this.dimensions;
    const out = new Float32Array(keys.length * d);
    keys.forEach((key, j) => {
      out.set(this.rows.subarray(key * d, key * d + d), j * d);
    });
    return out;
  }

  write(path: string, nextKey: number): void {
    const d = this.dimensions;
    const bytes = nextKey * d * bytesPer(this.dtype);
    const fd = openSync(path, 'wx');
    try {
      const rows = new Uint8Array((this.rows as unknown as { buffer: ArrayBufferLike }).buffer);
      const have = Math.min(bytes, rows.length);
      writeFully(fd, rows.subarray(0, have));
      if (have < bytes) writeFully(fd, new Uint8Array(bytes - have)); // keys never given a vector: zero rows
      const present = new Uint8Array(nextKey);
      present.set(this.present.subarray(0, Math.min(nextKey, this.present.length)));
      writeFully(fd, present);
    } finally {
      closeSync(fd);
    }
  }

  private ensure(key: number): void {
    if (key < this.present.length) return;
    let cap = Math.max(1024, this.present.length);
    while (cap <= key) cap *= 2;
    const rows = rowView(new ArrayBuffer(cap * this.dimensions * bytesPer(this.dtype)), this.dtype);
    rows.set(this.rows);
    this.rows = rows;
    const present = new Uint8Array(cap);
    present.set(this.present);
    this.present = present;
  }
}

/**
 * A snapshot's vector file, read with positional reads: only the rows of the keys asked for are read
 * (from the page cache once warm), so a replica's RSS does not grow by the file's size. The file is
 * opened per read, so no descriptor outlives a retired snapshot's thread.
 */
export class FileVectors implements VectorRows {
  private constructor(
    private readonly path: string,
    private readonly dimensions: number,
    readonly dtype: VectorFileDtype,
    private readonly present: Uint8Array,
  ) {}

  /** Opens a vector file (already verified) written for `nextKey` keys: reads its presence bytes only. */
  static open(path: string, dimensions: number, dtype: VectorFileDtype, nextKey: number): FileVectors {
    const rowBytes = dimensions * bytesPer(dtype);
    const present = new Uint8Array(nextKey);
    const fd = openSync(path, 'r');
    try {
      checkSize(path, fstatSync(fd).size, rowBytes, nextKey);
      readFully(fd, present, nextKey * rowBytes);
    } finally {
      closeSync(fd);
    }
    return new FileVectors(path, dimensions, dtype, present);
  }

  has(key: number): boolean {
    return key < this.present.length && this.present[key] === 1;
  }

  read(keys: readonly number[]): Float32Array {
    const d = this.dimensions;
    const rowBytes = d * bytesPer(this.dtype);
    const raw = new Uint8Array(keys.length * rowBytes);
    const fd = openSync(this.path, 'r');
    try {
      keys.forEach((key, j) => {
        readFully(fd, raw.subarray(j * rowBytes, (j + 1) * rowBytes), key * rowBytes);
      });
    } finally {
      closeSync(fd);
    }
    const out = new Float32Array(keys.length * d);
    out.set(rowView(raw.buffer, this.dtype, keys.length * d));
    return out;
  }

  write(path: string): void {
    copyFileSync(this.path, path);
  }
}

function checkSize(path: string, size: number, rowBytes: number, nextKey: number): void {
  const want = nextKey * (rowBytes + 1);
  if (size !== want) throw new Error(`vector file ${path} has ${size} bytes, expected ${want} (${nextKey} keys of ${rowBytes} bytes plus presence)`);
}

function readFully(fd: number, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new Error('vector file ended early');
    done += n;
  }
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}
