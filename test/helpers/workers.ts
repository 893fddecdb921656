import type { Worker } from 'bullmq';
import IORedis from 'ioredis';
import { QUEUES } from '../../src/contracts/queues';
import type { PooledWarehouse } from '../../src/pool';
import { createDealProcessor } from '../../src/workers/deal-processor';
import { createEmbeddingProcessor, type BatchingOptions } from '../../src/workers/embedding-processor';
import { runWorker } from '../../src/workers/run-worker';
import { testRedisUrl } from './redis';

export interface InProcessWorker {
  worker: Worker;
  close(): Promise<void>;
}

/** A real BullMQ worker with the fleet's processor, in this process, on the test Redis. */
export function startEmbeddingWorker(warehouse: PooledWarehouse, prefix: string, batching: BatchingOptions = {}, concurrency = 1000): InProcessWorker {
  const connection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  const processor = createEmbeddingProcessor({ warehouse, batching: { maxBatchSize: 500, maxWaitMs: 30, ...batching } });
  const worker = runWorker({ queue: QUEUES.embeddings, connection, prefix, concurrency, processor: processor.process });
  return {
    worker,
    async close() {
      await worker.close();
      await processor.close();
      await connection.quit();
    },
  };
}

export function startDealWorker(warehouse: PooledWarehouse, prefix: string, batching: BatchingOptions = {}, concurrency = 50): InProcessWorker {
  const connection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  const processor = createDealProcessor({ warehouse, batching: { maxBatchSize: 1000, maxWaitMs: 20, ...batching } });
  const worker = runWorker({ queue: QUEUES.deals, connection, prefix, concurrency, processor: processor.process });
  return {
    worker,
    async close() {
      await worker.close();
      await processor.close();
      await connection.quit();
    },
  };
}
