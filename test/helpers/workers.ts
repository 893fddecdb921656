import type { Job, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { QUEUES, type QueueName } from '../../src/contracts/queues';
import type { PooledWarehouse } from '../../src/pool';
import { createDealProcessor } from '../../src/workers/deal-processor';
import { createEmbeddingProcessor } from '../../src/workers/embedding-processor';
import type { BatchingOptions } from '../../src/workers/job-data';
import { createJobLogWriter, type IndexingJobLogWriter, type JobLogWriterOptions } from '../../src/workers/job-logs';
import { runWorker } from '../../src/workers/run-worker';
import { testRedisUrl } from './redis';

export interface InProcessWorker {
  worker: Worker;
  close(): Promise<void>;
}

/**
 * A real BullMQ worker running the processor in this process, on the test Redis, with job logs written as
 * the roles write them (`logOptions` as the role passes them; `make` also gets the log writer's connection,
 * which the roles share with the index sink).
 */
export function startWorker(
  queue: QueueName,
  prefix: string,
  concurrency: number,
  make: (logs: IndexingJobLogWriter, logConnection: IORedis) => { process(job: Job): Promise<unknown>; close(): Promise<void> },
  logOptions: JobLogWriterOptions = {},
): InProcessWorker {
  const connection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  const logConnection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  const logs = createJobLogWriter(logConnection, logOptions);
  const processor = make(logs, logConnection);
  const worker = runWorker({ queue, connection, prefix, concurrency, processor: processor.process });
  return {
    worker,
    async close() {
      await worker.close();
      await processor.close();
      await logs.close();
      await Promise.all([connection.quit(), logConnection.quit()]);
    },
  };
}

export function startEmbeddingWorker(warehouse: PooledWarehouse, prefix: string, batching: BatchingOptions = {}, concurrency = 1000): InProcessWorker {
  return startWorker(QUEUES.embeddings, prefix, concurrency, (logs) =>
    createEmbeddingProcessor({ warehouse, logs, batching: { maxBatchSize: 500, maxWaitMs: 30, ...batching } }),
  );
}

export function startDealWorker(warehouse: PooledWarehouse, prefix: string, batching: BatchingOptions = {}, concurrency = 50): InProcessWorker {
  return startWorker(QUEUES.deals, prefix, concurrency, (logs) =>
    createDealProcessor({ warehouse, logs, batching: { maxBatchSize: 1000, maxWaitMs: 20, ...batching } }),
  );
}
