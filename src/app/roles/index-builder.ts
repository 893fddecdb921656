import { createIndexBuilder } from '../../index-builder';
import { EMBEDDING_DIMS } from '../../warehouse/queries/embed-texts';
import { closeRedis, dropRedis } from '../redis';
import type { RoleModule } from './context';

/** `index`: the one builder (a Redis lease makes it one) applying the upsert stream and writing snapshots. */
export const indexRole: RoleModule = (ctx) => {
  const i = ctx.config.index;
  const connection = ctx.redis();
  ctx.releasers.add('index builder connection', () => closeRedis(connection), { force: () => dropRedis(connection) });
  const builder = createIndexBuilder({
    redis: connection,
    prefix: ctx.config.queuePrefix,
    snapshotDir: i.snapshotDir,
    snapshotEveryMs: i.snapshotEveryMs,
    settings: {
      dimensions: EMBEDDING_DIMS,
      metric: i.metric,
      dtype: i.dtype,
      connectivity: i.connectivity,
      expansionAdd: i.expansionAdd,
      expansionSearch: i.expansionSearch,
    },
    logger: ctx.logger as never,
  });
  ctx.releasers.add('index builder (final snapshot)', () => builder.close());
  return { workers: [], ready: builder.start().then(() => ctx.logger.info({ snapshotDir: i.snapshotDir }, 'index builder started')) };
};
