import type { Job } from 'bullmq';
import { DealBatchJobData, type DealInsight, type DealInsightsResult } from '../contracts/deals';
import type { BatchRef } from '../contracts/embedding';
import { getDeals, type DealRow } from '../warehouse/queries/get-deals';
import type { Warehouse } from '../warehouse/types';
import { Coalescer, type BatchEvent } from './coalescer';
import { dealFigures, toDeal } from './deal-figures';
import { parseJobData, type BatchingOptions } from './embedding-processor';

export interface DealProcessorDeps {
  warehouse: Warehouse;
  batching?: BatchingOptions;
  onBatch?: (event: BatchEvent) => void;
  /** Clock for derived figures; default `Date.now`. */
  now?: () => number;
}

export interface DealProcessor {
  process(job: Job): Promise<DealInsightsResult>;
  coalescer: Coalescer<string, DealRow | null>;
  close(): Promise<void>;
}

/**
 * Processes `deals` jobs. Every id of every concurrent job goes through one coalescer, so ten jobs of
 * fifty ids each become one `WHERE ID IN (...)` call; an unknown id is a "not found" entry, not an error.
 */
export function createDealProcessor(deps: DealProcessorDeps): DealProcessor {
  const now = deps.now ?? Date.now;
  const coalescer = new Coalescer<string, DealRow | null>({
    name: 'deals',
    maxBatchSize: deps.batching?.maxBatchSize ?? 1000,
    maxWaitMs: deps.batching?.maxWaitMs ?? 10,
    maxConcurrentBatches: deps.batching?.maxConcurrentBatches ?? 8,
    loadBatch: async (ids) => {
      const rows = await getDeals(deps.warehouse, ids);
      return ids.map((id) => rows.get(id) ?? null);
    },
    onBatch: deps.onBatch,
  });

  return {
    coalescer,
    async process(job) {
      const data = parseJobData<DealBatchJobData>(DealBatchJobData, job);
      const loaded = await Promise.all(data.dealIds.map((id) => coalescer.load(id)));
      const at = now();
      const batches = new Map<string, BatchRef>();
      const deals: DealInsight[] = loaded.map(({ value, batch }, i) => {
        batches.set(batch.batchId, batch);
        if (!value) return { id: data.dealIds[i], found: false, error: 'not found' };
        const deal = toDeal(value);
        return { id: deal.id, found: true, deal, figures: dealFigures(deal, at) };
      });
      const refs = [...batches.values()];
      await job.log(`served by batch${refs.length > 1 ? 'es' : ''} ${refs.map((b) => `${b.batchId} (${b.size} ids)`).join(', ')}`);
      return { requested: deals.length, found: deals.filter((d) => d.found).length, deals, batches: refs };
    },
    close: () => coalescer.close(),
  };
}
