import type { Worker } from 'bullmq';
import IORedis from 'ioredis';
import { QUEUES } from '../../src/contracts/queues';
import type { Warehouse } from '../../src/warehouse/types';
import { createFlowProcessors } from '../../src/workers/flow-processors';
import { createJobLogWriter } from '../../src/workers/job-logs';
import { runWorker } from '../../src/workers/run-worker';
import { testRedisUrl } from './redis';

/** The `flows` role in this process: workers for collect, analyze and workflows queues; job logs batched, as the role writes them. */
export function startFlowWorkers(warehouse: Warehouse, prefix: string, concurrency = 1000) {
  const logConnection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  const logs = createJobLogWriter(logConnection);
  const processors = createFlowProcessors({ warehouse, logs, batching: { maxWaitMs: 30 } });
  const connections: IORedis[] = [logConnection];
  const workers: Worker[] = [];
  for (const [queue, processor] of [
    [QUEUES.collect, processors.collect],
    [QUEUES.analyze, processors.analyze],
    [QUEUES.workflows, processors.synthesize],
  ] as const) {
    const connection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    connections.push(connection);
    workers.push(runWorker({ queue, connection, prefix, concurrency, processor: processor as never }));
  }
  return {
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await processors.close();
      await logs.close();
      await Promise.all(connections.map((c) => c.quit()));
    },
  };
}
