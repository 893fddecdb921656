import { type Job, UnrecoverableError } from 'bullmq';
import type { TieredCache } from '../cache';
import { embeddingKey } from '../cache/keys';
import { describeBatches } from '../contracts/batch-log';
import { EmbeddingJobData, type EmbeddingModel, type EmbeddingResult } from '../contracts/embedding';
import { QUEUES } from '../contracts/queues';
import { encodeVector } from '../contracts/vector-codec';
import { withCacheSpan } from '../telemetry/tracing';
import { EMBEDDING_DIMS, embedTexts } from '../warehouse/queries/embed-texts';
import type { Warehouse } from '../warehouse/types';
import { CachedLoader, type TieredLoad } from './cached-loader';
import { type BatchEvent, batchTag, Coalescer } from './coalescer';
import { type BatchingOptions, parseJobData } from './job-data';
import { type JobLogWriter, logFailedBatches, perJobLogs } from './job-logs';

export interface EmbeddingProcessorDeps {
  warehouse: Warehouse;
  batching?: BatchingOptions;
  /** Two-tier cache in front of the warehouse (keys: `embeddingKey(model, text)`). Optional. */
  cache?: TieredCache<Float32Array>;
  /**
   * Appends index upserts to the index builder's durable log (`appendUpsertsOnce` bound to Redis). Jobs
   * that carry `index` are coalesced into one append per batch; the job completes only after its upsert
   * is acknowledged. Each item names its job, so a job that runs twice (lost lock, killed worker) appends once.
   */
  indexSink?: (items: IndexUpsertItem[]) => Promise<unknown>;
  onBatch?: (event: BatchEvent) => void;
  /**
   * Where each job's "served by batch …" row goes, or "failed in batch …" when its batch call failed it.
   * Default `job.log` (one call per job); the worker roles pass `createJobLogWriter`.
   */
  logs?: JobLogWriter;
  /** The queue whose jobs this serves, named in each statement's QUERY_TAG and cost figures. Default `embeddings`. */
  queue?: string;
}

interface IndexUpsertItem {
  namespace: string;
  id: string;
  vector: Float32Array;
  /** Metadata filtered search can select on (the job's index target carries them). */
  tenant?: string;
  dealId?: string;
  ts?: number;
  /** The job whose effect this upsert is: its Redis hash key and id (the sink appends once per job). */
  jobKey: string;
  jobId: string;
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

export function createEmbeddingService(deps: EmbeddingProcessorDeps): EmbeddingService {
  const byModel = new Map<EmbeddingModel, Coalescer<string, Float32Array>>();
  const coalescerFor = (model: EmbeddingModel) => {
    let c = byModel.get(model);
    if (!c) {
      c = new Coalescer<string, Float32Array>({
        name: 'emb',
        maxBatchSize: deps.batching?.maxBatchSize ?? 500,
        maxWaitMs: deps.batching?.maxWaitMs ?? 25,
        targetMs: deps.batching?.targetMs,
        maxConcurrentBatches: deps.batching?.maxConcurrentBatches ?? 8,
        loadBatch: (texts, batch, call) =>
          embedTexts(deps.warehouse, texts, model, { tag: batchTag(deps.queue ?? QUEUES.embeddings, batch), onQueryId: call.onQueryId }),
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
      if (cached) return withCacheSpan('embeddings', () => cached.load({ model, text }));
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
  const logs = deps.logs ?? perJobLogs;
  let seq = 0;
  const upserts = deps.indexSink
    ? new Coalescer<IndexUpsertItem & { seq: number }, true>({
        name: 'index-upserts',
        maxBatchSize: 1000,
        maxWaitMs: 5,
        maxConcurrentBatches: 4,
        keyOf: (i) => String(i.seq), // never de-duplicated: two jobs may upsert one id with different vectors
        loadBatch: async (items) => {
          await deps.indexSink!(
            items.map(({ namespace, id, vector, tenant, dealId, ts, jobKey, jobId }) => ({ namespace, id, vector, tenant, dealId, ts, jobKey, jobId })),
          );
          return items.map(() => true as const);
        },
        onBatch: deps.onBatch,
      })
    : undefined;
  return {
    async process(job) {
      const data = parseJobData<EmbeddingJobData>(EmbeddingJobData, job);
      const { value, batch, tier } = await service.embed(data.model, data.text).catch(async (err: unknown) => {
        // The batch that failed the job is named in its log, so the batch is found with its jobs.
        await logFailedBatches(logs, job, [err], 'texts');
        throw err;
      });
      if (data.index) {
        if (!upserts) throw new UnrecoverableError('this worker has no search index configured, but the job asks for an index upsert');
        await upserts.load({ ...data.index, vector: value, jobKey: `${job.queueQualifiedName}:${job.id}`, jobId: String(job.id), seq: seq++ });
      }
      // Awaited, not fire-and-forget: the job completes only once its log says which batch served it.
      await logs.log(job, batch ? `served by ${describeBatches([batch], 'texts')}` : `served from cache (${tier})`);
      return {
        model: data.model,
        dims: EMBEDDING_DIMS,
        vector: encodeVector(value),
        ...(batch ? { batch } : {}),
        cached: tier !== 'warehouse',
        tier,
        ...(data.index ? { indexed: data.index } : {}),
      };
    },
    coalescers: service.coalescers,
    async close() {
      await service.close();
      await upserts?.close();
    },
  };
}
