import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip, constants as zlibConstants } from 'node:zlib';
import type { RowsetSegment, SegmentLimits } from './rowset-segments';

const gzipAsync = promisify(gzip);

/** Largest chunk file, uncompressed, unless the inline part is set larger (Snowflake's reach ~16 MB and more). */
export const MAX_CHUNK_FILE_BYTES = 16 * 1024 * 1024;

/** One entry of `data.chunks`, as snowflake-sdk reads it (lib/connection/result/chunk.js). */
interface ChunkDescriptor {
  readonly url: string;
  readonly rowCount: number;
  readonly uncompressedSize: number;
  readonly compressedSize: number;
}

/**
 * The chunk files of one result, stored gzip-compressed (as they are served), with the per-result key
 * (`qrmk`) a download must present. They live as long as the reply that points at them.
 */
export interface ResultChunks {
  readonly qrmk: string;
  readonly files: readonly Buffer[];
  readonly descriptors: readonly ChunkDescriptor[];
}

/**
 * How a result is cut: `inlineBytes` inline, then chunk files that double from twice that up to
 * {@link MAX_CHUNK_FILE_BYTES} (or `inlineBytes`, if larger), like Snowflake's, which start small and grow.
 * `undefined` when results are never chunked.
 */
export function chunkLimits(inlineBytes: number): SegmentLimits | undefined {
  if (!Number.isFinite(inlineBytes)) return undefined;
  const cap = Math.max(inlineBytes, MAX_CHUNK_FILE_BYTES);
  return { first: inlineBytes, next: (index) => Math.min(cap, inlineBytes * 2 ** Math.min(index + 1, 40)) };
}

/** The URL path of chunk `index` of a query's result. */
function chunkPath(queryId: string, index: number): string {
  return `/chunks/${queryId}/${index}`;
}

/**
 * Compresses the segments after the inline one into chunk files (in parallel, off the event loop; gzip
 * level 1, because a chunk is written once and read once, moments later) and describes them with
 * absolute URLs on `origin`, as the driver requires.
 */
export async function packResultChunks(queryId: string, origin: string, segments: readonly RowsetSegment[]): Promise<ResultChunks> {
  const files = await Promise.all(segments.map((s) => gzipAsync(Buffer.concat(s.parts as Buffer[]), { level: zlibConstants.Z_BEST_SPEED })));
  const descriptors = segments.map((s, i) => ({
    url: `${origin}${chunkPath(queryId, i)}`,
    rowCount: s.rowCount,
    uncompressedSize: s.bytes,
    compressedSize: files[i].length,
  }));
  // A query-result master key is a base64 AES-256 key; here it only has to be unguessable.
  return { qrmk: randomBytes(32).toString('base64'), files, descriptors };
}

/** Bytes a result's chunk files hold in memory. */
export function chunkBytes(chunks: ResultChunks | undefined): number {
  return chunks ? chunks.files.reduce((n, f) => n + f.length, 0) : 0;
}
