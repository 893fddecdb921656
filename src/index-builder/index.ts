/**
 * The vector index part of the fleet: a USearch HNSW index built by one dedicated builder role and
 * served by scalable search replicas, both running USearch off the main thread.
 *
 * Data path: embedding workers → `appendUpserts` (Redis Stream `<prefix>:index:log`) → `IndexBuilder`
 * (batch adds in its index thread, snapshots to `snapshotDir`, announcement on `<prefix>:index:snapshots`)
 * → `SearchService` (verifies, opens in new threads and hot-swaps each snapshot) → `search(vector, k, ns)`.
 */
export { createIndexBuilder, IndexBuilder } from './builder';
export { IndexNotReadyError } from './errors/index-not-ready-error';
export { IndexThread } from './index-thread';
export { rebuildFromWarehouse } from './rebuild';
export { createSearchService, SearchService } from './search-service';
export {
  appendUpserts,
  appendUpsertsOnce,
  indexLogKey,
} from './upsert-stream';
