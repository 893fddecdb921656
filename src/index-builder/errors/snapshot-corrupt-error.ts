/**
 * A snapshot on disk failed validation: its manifest is missing or malformed (usually a partial copy or
 * an interrupted write outside our atomic rename), or a file's size or sha256 differs from the manifest
 * (disk corruption, a truncated copy, someone editing the folder). Such a snapshot is never opened —
 * USearch crashes the process on some truncated files — and the previous good snapshot is used instead.
 */
export class SnapshotCorruptError extends Error {
  /** `snapshot`: folder name (or the snapshot directory when no snapshot is usable); `version` when known. */
  constructor(
    readonly snapshot: string,
    readonly reason: string,
    readonly version?: number,
  ) {
    super(`snapshot ${snapshot} refused: ${reason}`);
    this.name = 'SnapshotCorruptError';
  }
}
