import { UnrecoverableError, type Job } from 'bullmq';
import { EmbeddingJobData, type EmbeddingModel, type EmbeddingResult } from '../contracts/embedding';
import { ValidationError } from '../contracts/errors';
import { validate } from '../contracts/validate';
import { encodeVector } from '../contracts/vector-codec';
import { EMBEDDING_DIMS, embedTexts } from '../warehouse/queries/embed-texts';
import type { Warehouse } from '../warehouse/types';
import { Coalescer, type BatchEvent } from './coalescer';

export interface BatchingOptions {
  /** Most distinct keys per warehouse call. Default 500. */
  maxBatchSize?: number;
  /** Longest a key waits for its batch to fill. Default 25 ms. */
  maxWaitMs?: number;
  /** Batch calls in flight; the warehouse pool size. Default 8. */
  maxConcurrentBatches?: number;
}

export interface EmbeddingProcessorDeps {
  warehouse: Warehouse;
  batching?: BatchingOptions;
  onBatch?: (event: BatchEvent) => void;
}

/** Processes `embeddings` jobs: validates, coalesces texts across concurrent jobs, one warehouse call per batch. */
export interface EmbeddingProcessor {
  process(job: Job): Promise<EmbeddingResult>;
  /** Per-model coalescers (texts of different models never share a statement). */
  coalescers(): ReadonlyMap<EmbeddingModel, Coalescer<string, Float32Array>>;
  close(): Promise<void>;
}

/** Validates job data inside a worker; a payload that can never succeed fails without retries. */
export function parseJobData<T>(schema: Parameters<typeof validate>[0], job: Job): T {
  try {
    return validate(schema, job.data) as T;
  } catch (err) {
    if (err instanceof ValidationError) throw new UnrecoverableError(err.message);
    throw err;
  }
}

export function createEmbeddingProcessor(deps: EmbeddingProcessorDeps): EmbeddingProcessor {
  const byModel = new Map<EmbeddingModel, Coalescer<string, Float32Array>>();
  const coalescerFor = (model: EmbeddingModel) => {
    let c = byModel.get(model);
    if (!c) {
      c = new Coalescer<string, Float32Array>({
        name: 'emb',
        maxBatchSize: deps.batching?.maxBatchSize ?? 500,
        maxWaitMs: deps.batching?.maxWaitMs ?? 25,
        maxConcurrentBatches: deps.batching?.maxConcurrentBatches ?? 8,
        loadBatch: (texts) => embedTexts(deps.warehouse, texts, model),
        onBatch: deps.onBatch,
      });
      byModel.set(model, c);
    }
    return c;
  };

  return {
    async process(job) {
      const data = parseJobData<EmbeddingJobData>(EmbeddingJobData, job);
      const { value, batch } = await coalescerFor(data.model).load(data.text);
      // Fire-and-forget would lose the record if the worker dies; the log write is pipelined per tick.
      await job.log(`served by batch ${batch.batchId} (${batch.size} texts)`);
      return { model: data.model, dims: EMBEDDING_DIMS, vector: encodeVector(value), batch, cached: false };
    },
    coalescers: () => byModel,
    async close() {
      await Promise.all([...byModel.values()].map((c) => c.close()));
    },
  };
}
