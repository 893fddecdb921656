import { QUEUES } from '../../contracts/queues';
import { createDealProcessor } from '../../workers/deal-processor';
import { batchObserver, jobLogs, type RoleModule, startWorkers } from './context';

/** `deals`: deal ids coalesced into one `WHERE ID IN (…)` per batch, behind the deal cache. */
export const dealsRole: RoleModule = (ctx) => {
  const s = ctx.config.deals;
  const { logs } = jobLogs(ctx, 'job log');
  const processor = createDealProcessor({
    logs,
    warehouse: ctx.warehouse,
    cache: ctx.caches?.deals,
    batching: { maxBatchSize: s.maxBatchSize, maxWaitMs: s.maxWaitMs, maxConcurrentBatches: ctx.config.pool.max },
    onBatch: batchObserver(ctx),
  });
  ctx.releasers.add('deal coalescer', async () => {
    await processor.close();
    await logs.close();
  });
  return { workers: startWorkers(ctx, QUEUES.deals, processor.process, s.concurrency) };
};
