import type { ApplyResult, BatchAnswer, BatchQuery, NamespacedHit, NamespaceFiles, OpBatch } from './namespaced-index';
import type { CompiledIndexSettings } from './settings';
import type { OpenMode } from './vector-index';

/** Messages between `IndexThread` (main thread) and `index-worker` (the thread owning USearch). */
export type ThreadRequest =
  | { op: 'create'; settings: CompiledIndexSettings }
  | { op: 'open'; dir: string; settings: CompiledIndexSettings; namespaces: NamespaceFiles; mode: OpenMode; expansionSearch?: number; exactFilterMax?: number }
  | { op: 'apply'; batch: OpBatch }
  | { op: 'search'; vector: Float32Array; k: number; namespace?: string }
  | { op: 'searchBatch'; vectors: Float32Array; queries: BatchQuery[]; threads: number }
  | { op: 'save'; dir: string }
  | { op: 'stats' };

export interface IndexStats {
  size: number;
  namespaces: Record<string, number>;
  readOnly: boolean;
  /** Filtered searches answered exactly from the vector file, and by over-fetching from the graph. */
  filterPaths: { exact: number; overfetch: number };
  /** Resident set size of the whole process (threads share it), MB. */
  rssMb: number;
}

export interface SavedIndex {
  namespaces: NamespaceFiles;
  count: number;
}

export interface ThreadResults {
  create: { size: number };
  open: { size: number };
  apply: ApplyResult;
  search: NamespacedHit[];
  searchBatch: BatchAnswer[];
  save: SavedIndex;
  stats: IndexStats;
}

export type ThreadEnvelope = { seq: number; request: ThreadRequest };

export type ThreadReply = { seq: number; ok: true; result: unknown } | { seq: number; ok: false; error: { name: string; message: string; stack?: string } };
