/**
 * The vector index part of the fleet: a USearch HNSW index built by one dedicated builder role and
 * served by scalable search replicas, both running USearch off the main thread.
 *
 * Data path: embedding workers → `appendUpserts` (Redis Stream `<prefix>:index:log`) → `IndexBuilder`
 * (batch adds in its index thread, snapshots to `snapshotDir`, announcement on `<prefix>:index:snapshots`)
 * → `SearchService` (verifies, opens in new threads and hot-swaps each snapshot) → `search(vector, k, ns)`.
 */
export { createIndexBuilder, IndexBuilder, type IndexBuilderEvents, type IndexBuilderOptions, type IndexBuilderState } from './builder';
export { checkFilter, createSearchService, SearchService, type SearchResult, type SearchServiceEvents, type SearchServiceOptions } from './search-service';
export { ItemMetadata, isActiveFilter, type ItemMeta, type SavedMeta, type SearchFilter } from './item-metadata';
export {
  appendDeletes,
  appendUpserts,
  appendUpsertsOnce,
  INDEX_EFFECT_FIELD,
  type JobUpsert,
  compareStreamIds,
  indexLogKey,
  MAX_APPEND_BATCH,
  readLog,
  snapshotChannel,
  trimLog,
  type AppendOptions,
  type IndexDeletion,
  type IndexUpsert,
  type LogRead,
  type SnapshotAnnouncement,
} from './upsert-stream';
export { SnapshotStore, snapshotName, MANIFEST_FILE, type LatestSnapshot, type PendingSnapshot, type SnapshotManifest, type SnapshotRef, type SnapshotStoreOptions } from './snapshot-store';
export { IndexThread, type IndexThreadOptions } from './index-thread';
export { FILTER_MAX_CANDIDATES, FILTER_OVERFETCH, VectorIndex, type FilteredHits, type IdMapping, type OpenMode, type UpsertResult, type VectorHit } from './vector-index';
export {
  NamespacedIndex,
  MAPPING_FILE,
  namespaceFile,
  type ApplyResult,
  type BatchAnswer,
  type BatchQuery,
  type IndexOp,
  type NamespacedHit,
  type OpBatch,
  type QueryAnswer,
} from './namespaced-index';
export {
  compileIndexSettings,
  DEFAULT_INDEX_SETTINGS,
  DEFAULT_NAMESPACE,
  INDEX_DTYPES,
  INDEX_METRICS,
  isValidNamespace,
  type CompiledIndexSettings,
  type IndexDType,
  type IndexMetric,
  type IndexSettings,
} from './settings';
export type { IndexStats, SavedIndex } from './thread-protocol';
export { startWorkerScript } from './worker-script';
export { rebuildFromWarehouse, type RebuildOptions, type RebuildProgress } from './rebuild';
export { BuilderLockError } from './errors/builder-lock-error';
export { IndexClosedError } from './errors/index-closed-error';
export { IndexNotReadyError } from './errors/index-not-ready-error';
export { IndexOptionError } from './errors/index-option-error';
export { IndexThreadError } from './errors/index-thread-error';
export { SnapshotCorruptError } from './errors/snapshot-corrupt-error';
