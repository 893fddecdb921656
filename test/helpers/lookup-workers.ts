import { JOB_LOOKUP_PAGE } from '../../src/contracts/batch-log';
import { QUEUES } from '../../src/contracts/queues';
import { appendUpsertsOnce } from '../../src/index-builder';
import type { PooledWarehouse } from '../../src/pool';
import { EMBEDDING_DIMS } from '../../src/warehouse/queries/embed-texts';
import { createDealProcessor } from '../../src/workers/deal-processor';
import { createEmbeddingProcessor } from '../../src/workers/embedding-processor';
import { type InProcessWorker, startWorker } from './workers';

/**
 * The embedding worker as the embeddings role wires it (src/app/roles/context.ts `jobLogs` and
 * `batchObserver`): its job log writer is told about every batch and links rows to the lookup page, so
 * the jobs it runs can be found by batch and text.
 */
export function startIndexedEmbeddingWorker(
  warehouse: PooledWarehouse,
  prefix: string,
  opts: { retentionS?: number; maxWaitMs?: number; maxBatchSize?: number } = {},
): InProcessWorker {
  return startWorker(
    QUEUES.embeddings,
    prefix,
    200,
    (logs, logConnection) =>
      createEmbeddingProcessor({
        warehouse,
        logs,
        batching: { maxBatchSize: opts.maxBatchSize ?? 500, maxWaitMs: opts.maxWaitMs ?? 50 },
        onBatch: (e) => logs.observe(e),
        indexSink: (items) => appendUpsertsOnce(logConnection, prefix, items, { dimensions: EMBEDDING_DIMS }),
      }),
    { retentionS: opts.retentionS, batchPage: JOB_LOOKUP_PAGE },
  );
}

/** The deal worker as the deals role wires it: batches observed by its job log writer, rows linked to the lookup page. */
export function startIndexedDealWorker(warehouse: PooledWarehouse, prefix: string, opts: { retentionS?: number; maxWaitMs?: number } = {}): InProcessWorker {
  return startWorker(
    QUEUES.deals,
    prefix,
    50,
    (logs) => createDealProcessor({ warehouse, logs, batching: { maxWaitMs: opts.maxWaitMs ?? 50 }, onBatch: (e) => logs.observe(e) }),
    { retentionS: opts.retentionS, batchPage: JOB_LOOKUP_PAGE },
  );
}
