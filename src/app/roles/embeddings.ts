import { QUEUES } from '../../contracts/queues';
import { appendUpsertsOnce } from '../../index-builder';
import { EMBEDDING_DIMS } from '../../warehouse/queries/embed-texts';
import { createEmbeddingProcessor } from '../../workers/embedding-processor';
import { batchObserver, jobLogs, type RoleModule, startWorkers } from './context';

/** `embeddings`: coalesced EMBED_TEXT_768 calls behind the cache; index upserts and job logs on one side connection. */
export const embeddingsRole: RoleModule = (ctx) => {
  const s = ctx.config.embeddings;
  // Index upserts and job logs: small scripts, one per batch, on a connection of their own.
  const { logs, connection } = jobLogs(ctx, 'index upserts and job logs');
  const processor = createEmbeddingProcessor({
    logs,
    warehouse: ctx.warehouse,
    cache: ctx.caches?.embeddings,
    // One index log under the fleet's tag; a sharded queue's jobs mark their upsert in its slot for as long as jobs are kept.
    indexSink: (items) =>
      appendUpsertsOnce(connection, ctx.config.queuePrefix, items, {
        dimensions: EMBEDDING_DIMS,
        markerTtlS: Math.max(ctx.config.jobs.keepCompletedS, ctx.config.jobs.keepFailedS),
      }),
    batching: { maxBatchSize: s.maxBatchSize, maxWaitMs: s.maxWaitMs, targetMs: s.targetMs, maxConcurrentBatches: ctx.config.pool.max },
    onBatch: batchObserver(ctx),
  });
  ctx.releasers.add('embedding coalescers', async () => {
    await processor.close();
    await logs.close();
  });
  return { workers: startWorkers(ctx, QUEUES.embeddings, processor.process, s.concurrency) };
};
