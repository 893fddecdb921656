import { QUEUES } from '../../contracts/queues';
import { createFlowProcessors } from '../../workers/flow-processors';
import { batchObserver, jobLogs, type RoleModule, startWorkers } from './context';

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
      ...startWorkers(ctx, QUEUES.collect, processors.collect, s.concurrency),
      ...startWorkers(ctx, QUEUES.analyze, processors.analyze, s.concurrency),
      ...startWorkers(ctx, QUEUES.workflows, processors.synthesize, s.concurrency),
    ],
  };
};
