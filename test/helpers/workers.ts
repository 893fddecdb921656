import type { Job, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { QUEUES, type QueueName } from '../../src/contracts/queues';
import type { PooledWarehouse } from '../../src/pool';
import { createDealProcessor } from '../../src/workers/deal-processor';
import { createEmbeddingProcessor } from '../../src/workers/embedding-processor';
import type { BatchingOptions } from '../../src/workers/job-data';
import { runWorker } from '../../src/workers/run-worker';
import { testRedisUrl } from './redis';

export interface InProcessWorker {
  worker: Worker;
  close(): Promise<void>;
}

/** A real BullMQ worker running `processor` in this process, on the test Redis. */
function startWorker(queue: QueueName, prefix: string, concurrency: number, processor: { process(job: Job): Promise<unknown>; close(): Promise<void> }): InProcessWorker {
  const connection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  const worker = runWorker({ queue, connection, prefix, concurrency, processor: processor.process });
  return {
    worker,
    async close() {
      await worker.close();
      await processor.close();
      await connection.quit();
    },
  };
}

export function startEmbeddingWorker(warehouse: PooledWarehouse, prefix: string, batching: BatchingOptions = {}, concurrency = 1000): InProcessWorker {
  return startWorker(QUEUES.embeddings, prefix, concurrency, createEmbeddingProcessor({ warehouse, batching: { maxBatchSize: 500, maxWaitMs: 30, ...batching } }));
}

export function startDealWorker(warehouse: PooledWarehouse, prefix: string, batching: BatchingOptions = {}, concurrency = 50): InProcessWorker {
  return startWorker(QUEUES.deals, prefix, concurrency, createDealProcessor({ warehouse, batching: { maxBatchSize: 1000, maxWaitMs: 20, ...batching } }));
}
