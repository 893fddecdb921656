import { UnrecoverableError, type Job } from 'bullmq';
import { EmbeddingJobData, type EmbeddingModel, type EmbeddingResult } from '../contracts/embedding';
import { ValidationError } from '../contracts/errors';
import { validate } from '../contracts/validate';
import { encodeVector } from '../contracts/vector-codec';
import { EMBEDDING_DIMS, embedTexts } from '../warehouse/queries/embed-texts';
import type { Warehouse } from '../warehouse/types';
import type { TieredCache } from '../cache';
import { embeddingKey } from '../cache/keys';
import { CachedLoader, type TieredLoad } from './cached-loader';
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
  /** Two-tier cache in front of the warehouse (keys: `embeddingKey(model, text)`). Optional. */
  cache?: TieredCache<Float32Array>;
  onBatch?: (event: BatchEvent) => void;
}

/** Embeds one text through the cache (if any) and the coalescer; the processor and benchmarks share it. */
export interface EmbeddingService {
  embed(model: EmbeddingModel, text: string): Promise<TieredLoad<Float32Array>>;
  coalescers(): ReadonlyMap<EmbeddingModel, Coalescer<string, Float32Array>>;
  close(): Promise<void>;
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

export function createEmbeddingService(deps: EmbeddingProcessorDeps): EmbeddingService {
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

  const cached = deps.cache
    ? new CachedLoader<{ model: EmbeddingModel; text: string }, Float32Array>({
        name: 'emb-cache',
        cache: deps.cache,
        keyOf: (i) => embeddingKey(i.model, i.text),
        loadFromWarehouse: (i) => coalescerFor(i.model).load(i.text),
        onBatch: deps.onBatch,
      })
    : undefined;

  return {
    async embed(model, text) {
      if (cached) return cached.load({ model, text });
      const { value, batch } = await coalescerFor(model).load(text);
      return { value, batch, tier: 'warehouse' };
    },
    coalescers: () => byModel,
    async close() {
      await cached?.close();
      await Promise.all([...byModel.values()].map((c) => c.close()));
    },
  };
}

export function createEmbeddingProcessor(deps: EmbeddingProcessorDeps): EmbeddingProcessor {
  const service = createEmbeddingService(deps);
  return {
    async process(job) {
      const data = parseJobData<EmbeddingJobData>(EmbeddingJobData, job);
      const { value, batch, tier } = await service.embed(data.model, data.text);
      // Awaited, not fire-and-forget: ioredis pipelines the log writes of one tick into one round trip.
      await job.log(batch ? `served by batch ${batch.batchId} (${batch.size} texts)` : `served from cache (${tier})`);
      return { model: data.model, dims: EMBEDDING_DIMS, vector: encodeVector(value), ...(batch ? { batch } : {}), cached: tier !== 'warehouse', tier };
    },
    coalescers: service.coalescers,
    close: () => service.close(),
  };
}
