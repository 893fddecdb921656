import type { ResultCell } from './result-encoding';

/**
 * Consecutive rows of a rowset as JSON bytes, `[…],[…]` without the outer brackets: what a chunk file
 * holds (the driver wraps it in `[` `]` before parsing) and what the reply writer puts between the
 * brackets of `data.rowset`. Kept as the pieces they were written in, so that a multi-MB embedding
 * result is copied once, when the reply or the chunk file is assembled.
 */
export interface RowsetSegment {
  readonly parts: readonly Buffer[];
  readonly rowCount: number;
  /** Encoded size in bytes (counted only when a result is split; `-1` otherwise). */
  readonly bytes: number;
}

/** Where a rowset is cut: the most bytes of the first segment and of each one after it. */
export interface SegmentLimits {
  readonly first: number;
  /** Limit of segment `index + 1` (index 0 is the first chunk file after the inline part). */
  next(index: number): number;
}

/**
 * Writes a rowset as JSON, cut into segments of at most the given sizes at row boundaries (a single row
 * larger than a limit is a segment of its own). Without limits it is one segment, written without
 * counting bytes. Always returns at least one segment; every segment after the first has a row.
 *
 * String cells are JSON-encoded in runs of text; byte cells (VECTOR text, ASCII that needs no escaping)
 * are quoted and referenced as they are, never copied into a string.
 */
export function writeRowsetSegments(rowset: readonly (readonly ResultCell[])[], limits?: SegmentLimits): RowsetSegment[] {
  const segments: RowsetSegment[] = [];
  let parts: Buffer[] = [];
  let text = '';
  let rows = 0;
  let bytes = 0;
  let limit = limits ? limits.first : Infinity;
  const counting = limits !== undefined;
  const flushText = () => {
    if (text) parts.push(Buffer.from(text, 'utf8'));
    text = '';
  };

  // Without limits the row goes straight into the segment; with them it is written aside first, so
  // that its size decides which segment it opens or joins.
  const pieces: Array<string | Buffer> = [];
  for (let r = 0; r < rowset.length; r++) {
    const row = rowset[r];
    pieces.length = 0;
    let run = '[';
    for (let c = 0; c < row.length; c++) {
      if (c > 0) run += ',';
      const cell = row[c];
      if (cell === null) run += 'null';
      else if (typeof cell === 'string') run += JSON.stringify(cell);
      else {
        pieces.push(`${run}"`, cell);
        run = '"';
      }
    }
    pieces.push(`${run}]`);

    if (counting) {
      let rowBytes = 0;
      for (const p of pieces) rowBytes += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length;
      if (rows > 0 && bytes + 1 + rowBytes > limit) {
        flushText();
        segments.push({ parts, rowCount: rows, bytes });
        limit = limits.next(segments.length - 1);
        parts = [];
        rows = 0;
        bytes = 0;
      }
      bytes += rows > 0 ? 1 + rowBytes : rowBytes;
    }
    if (rows > 0) text += ',';
    for (const p of pieces) {
      if (typeof p === 'string') text += p;
      else {
        flushText();
        parts.push(p);
      }
    }
    rows++;
  }
  flushText();
  segments.push({ parts, rowCount: rows, bytes: counting ? bytes : -1 });
  return segments;
}
