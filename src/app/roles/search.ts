import { QUEUES } from '../../contracts/queues';
import { createSearchService } from '../../index-builder';
import { createEmbeddingService } from '../../workers/embedding-processor';
import { createSearchProcessor } from '../../workers/search-processor';
import { closeRedis, dropRedis } from '../redis';
import { type RoleModule, startWorkers } from './context';

/** `search`: serves the latest snapshot (hot-swapped) to the `search` queue and, in-process, to POST /v1/search. */
export const searchRole: RoleModule = (ctx) => {
  const i = ctx.config.index;
  const connection = ctx.redis();
  ctx.releasers.add('search service connection', () => closeRedis(connection), { force: () => dropRedis(connection) });
  const service = createSearchService({
    redis: connection,
    prefix: ctx.config.queuePrefix,
    snapshotDir: i.snapshotDir,
    mode: i.searchMode,
    expansionSearch: i.expansionSearch,
    exactFilterMax: i.exactFilterMax,
    logger: ctx.logger as never,
  });
  ctx.releasers.add('search service', () => service.close());
  const ready = service.start().then(() => ctx.logger.info({ snapshotVersion: service.snapshotVersion, ready: service.ready }, 'search service started'));
  // Text queries are embedded through the same cache and coalescer as embedding jobs.
  const embeddings = createEmbeddingService({
    warehouse: ctx.warehouse,
    cache: ctx.caches?.embeddings,
    batching: { maxBatchSize: ctx.config.embeddings.maxBatchSize, maxWaitMs: ctx.config.embeddings.maxWaitMs, maxConcurrentBatches: ctx.config.pool.max },
  });
  ctx.releasers.add('search embeddings', () => embeddings.close());
  const search = createSearchProcessor({ index: service, embeddings });
  return { workers: startWorkers(ctx, QUEUES.search, search.process, i.searchConcurrency), ready, search };
};
