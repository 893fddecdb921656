import type { Job } from 'bullmq';
import type { TieredCache } from '../cache';
import { dealKey } from '../cache/keys';
import { describeBatches } from '../contracts/batch-log';
import { type Deal, DealBatchJobData, type DealInsight, type DealInsightsResult } from '../contracts/deals';
import type { BatchRef } from '../contracts/embedding';
import { QUEUES } from '../contracts/queues';
import { getDeals } from '../warehouse/queries/get-deals';
import type { Warehouse } from '../warehouse/types';
import { CachedLoader, type TieredLoad } from './cached-loader';
import { type BatchEvent, batchTag, Coalescer } from './coalescer';
import { dealFigures, toDeal } from './deal-figures';
import { type BatchingOptions, parseJobData } from './job-data';
import { type JobLogWriter, logFailedBatches, perJobLogs } from './job-logs';

export interface DealProcessorDeps {
  warehouse: Warehouse;
  batching?: BatchingOptions;
  /** Two-tier cache of deal rows (keys: `dealKey(id)`); figures are always derived at job time. Optional. */
  cache?: TieredCache<Deal>;
  onBatch?: (event: BatchEvent) => void;
  /**
   * Where each job's "served by batch …" row goes, or "failed in batch …" naming the batches whose call
   * failed its ids. Default `job.log`; the worker roles pass `createJobLogWriter`.
   */
  logs?: JobLogWriter;
  /** Clock for derived figures; default `Date.now`. */
  now?: () => number;
}

export interface DealProcessor {
  process(job: Job): Promise<DealInsightsResult>;
  coalescer: Coalescer<string, Deal | null>;
  close(): Promise<void>;
}

/** An id the warehouse does not have; a "not found" entry, never a failed job. */
class DealNotFound extends Error {
  constructor(readonly id: string) {
    super(`deal ${id} not found`);
    this.name = 'DealNotFound';
  }
}

/**
 * Processes `deals` jobs. Every id of every concurrent job goes through one coalescer, so ten jobs of
 * fifty ids each become one `WHERE ID IN (...)` call; an unknown id is a "not found" entry, not an error.
 * With a cache, hot deals are answered from L1/L2 and only the rest reach the warehouse.
 */
export function createDealProcessor(deps: DealProcessorDeps): DealProcessor {
  const logs = deps.logs ?? perJobLogs;
  const now = deps.now ?? Date.now;
  const coalescer = new Coalescer<string, Deal | null>({
    name: 'deals',
    maxBatchSize: deps.batching?.maxBatchSize ?? 1000,
    maxWaitMs: deps.batching?.maxWaitMs ?? 10,
    maxConcurrentBatches: deps.batching?.maxConcurrentBatches ?? 8,
    loadBatch: async (ids, batch, call) => {
      const rows = await getDeals(deps.warehouse, ids, { tag: batchTag(QUEUES.deals, batch), onQueryId: call.onQueryId });
      return ids.map((id) => {
        const row = rows.get(id);
        return row ? toDeal(row) : null;
      });
    },
    onBatch: deps.onBatch,
  });
  const fromWarehouse = async (id: string) => {
    const { value, batch } = await coalescer.load(id);
    if (!value) throw new DealNotFound(id);
    return { value, batch };
  };
  // A deal's cache key is its id, so a stale key is refreshed by loading that id in the shared batch. A
  // per-key error (the deal is gone, the warehouse failed) keeps the stale row served for a while.
  const refresh = async (keys: string[]): Promise<Map<string, Deal | Error>> => {
    const settled = await Promise.allSettled(keys.map(fromWarehouse));
    return new Map(keys.map((id, i) => [id, settled[i].status === 'fulfilled' ? settled[i].value.value : (settled[i].reason as Error)]));
  };
  const cached = deps.cache
    ? new CachedLoader<string, Deal>({
        name: 'deals-cache',
        cache: deps.cache,
        keyOf: dealKey,
        loadFromWarehouse: fromWarehouse,
        refresh,
        onBatch: deps.onBatch,
      })
    : undefined;
  const load = async (id: string): Promise<TieredLoad<Deal> | null> => {
    try {
      if (cached) return await cached.load(id);
      const { value, batch } = await fromWarehouse(id);
      return { value, batch, tier: 'warehouse' };
    } catch (err) {
      if (err instanceof DealNotFound || (err as Error)?.name === 'MissingLoadResultError') return null;
      throw err;
    }
  };

  return {
    coalescer,
    async process(job) {
      const data = parseJobData<DealBatchJobData>(DealBatchJobData, job);
      const settled = await Promise.allSettled(data.dealIds.map(load));
      const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
      if (failures.length) {
        // Every batch that failed one of its ids is named in its log, so each is found with its jobs.
        await logFailedBatches(logs, job, failures, 'ids');
        throw failures[0];
      }
      const loaded = settled.map((s) => (s as PromiseFulfilledResult<TieredLoad<Deal> | null>).value);
      const at = now();
      const batches = new Map<string, BatchRef>();
      let cachedCount = 0;
      const deals: DealInsight[] = loaded.map((l, i) => {
        if (!l) return { id: data.dealIds[i], found: false, error: 'not found' };
        if (l.batch) batches.set(l.batch.batchId, l.batch);
        else cachedCount++;
        return { id: l.value.id, found: true, deal: l.value, figures: dealFigures(l.value, at) };
      });
      const refs = [...batches.values()];
      await logs.log(job, `served by ${describeBatches(refs, 'ids')}${cachedCount ? `; ${cachedCount} from cache` : ''}`);
      return { requested: deals.length, found: deals.filter((d) => d.found).length, deals, batches: refs, cached: cachedCount };
    },
    async close() {
      await cached?.close();
      await coalescer.close();
    },
  };
}
