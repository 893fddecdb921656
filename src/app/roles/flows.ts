import { QUEUES } from '../../contracts/queues';
import { createFlowProcessors } from '../../workers/flow-processors';
import { batchObserver, jobLogs, type RoleModule, startWorker } from './context';

/** `flows`: the workflow tree's collectors (coalesced across workflows), analysers and synthesis. */
export const flowsRole: RoleModule = (ctx) => {
  const s = ctx.config.flows;
  const { logs } = jobLogs(ctx, 'job log');
  const processors = createFlowProcessors({
    logs,
    warehouse: ctx.warehouse,
    batching: { maxWaitMs: s.maxWaitMs, maxConcurrentBatches: ctx.config.pool.max },
    onBatch: batchObserver(ctx),
  });
  ctx.releasers.add('workflow coalescers', async () => {
    await processors.close();
    await logs.close();
  });
  return {
    workers: [
      startWorker(ctx, QUEUES.collect, processors.collect, s.concurrency),
      startWorker(ctx, QUEUES.analyze, processors.analyze, s.concurrency),
      startWorker(ctx, QUEUES.workflows, processors.synthesize, s.concurrency),
    ],
  };
};
