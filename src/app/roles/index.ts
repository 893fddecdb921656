import type { Worker } from 'bullmq';
import type { Logger } from '../../telemetry/logger';
import { type DependencyLog, isConnectionError } from '../../telemetry/outage-log';
import type { RoleContext, RoleModule, StartedRole } from './context';
import { dealsRole } from './deals';
import { embeddingsRole } from './embeddings';
import { flowsRole } from './flows';
import { indexRole } from './index-builder';
import type { WorkerRole } from './names';
import { searchRole } from './search';

export type { RoleContext, StartedRole } from './context';

/** The roles a process can run, one module each (`fleet worker --role R`; `fleet up` runs them all). */
const ROLES = {
  embeddings: embeddingsRole,
  deals: dealsRole,
  flows: flowsRole,
  index: indexRole,
  search: searchRole,
} as const satisfies Record<WorkerRole, RoleModule>;

export { WORKER_ROLES, type WorkerRole } from './names';

function watch(worker: Worker, logger: Logger, redisLog: DependencyLog): void {
  worker.on('failed', (job, err) => logger.warn({ queue: worker.name, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'job failed'));
  // A connection error is Redis's outage, which every connection reports to one log (one line, then counts).
  worker.on('error', (err) =>
    isConnectionError(err) ? redisLog.failed(err, { queue: worker.name }) : logger.error({ queue: worker.name, err }, 'worker error'),
  );
  worker.on('stalled', (jobId) => logger.warn({ queue: worker.name, jobId }, 'job stalled: its worker stopped renewing the lock; it will run again'));
}

/**
 * Closes a worker: it stops fetching and its in-flight jobs finish. With Redis down (before or during the
 * close) their completions cannot be written, and BullMQ's close would wait for a reconnect (it reconnects
 * a dropped client to finish): the close is left running and the step ends, and the jobs' locks expire so
 * stalled-job recovery runs them on another replica.
 */
async function closeUnlessRedisDown(worker: Worker, redisLog: DependencyLog): Promise<void> {
  const closing = worker.close();
  // Its late failure (connections dropped under it) must not become an unhandled rejection.
  closing.catch(() => undefined);
  if (redisLog.down) return;
  let stopWatching = () => {};
  const down = new Promise<void>((resolve) => (stopWatching = redisLog.onDown(resolve)));
  try {
    await Promise.race([closing, down]);
  } finally {
    stopWatching();
  }
}

/**
 * Starts one role in this process. What the role opens is registered with `ctx.releasers` as it opens it;
 * its workers are registered last, so on shutdown they stop taking jobs and let active ones finish before
 * anything they use closes.
 */
export function startRole(role: WorkerRole, ctx: RoleContext): StartedRole {
  const logger = ctx.logger.child({ role });
  const started = ROLES[role]({ ...ctx, logger });
  for (const worker of started.workers) {
    watch(worker, logger, ctx.redisLog);
    // A shard's worker is named by its prefix (shard 0's is the fleet's own).
    const shard = worker.opts.prefix === ctx.config.queuePrefix ? {} : { prefix: worker.opts.prefix };
    ctx.releasers.add(`${worker.name} worker${shard.prefix ? ` ${shard.prefix}` : ''}`, () => closeUnlessRedisDown(worker, ctx.redisLog));
    logger.info({ queue: worker.name, ...shard, concurrency: worker.opts.concurrency }, 'worker started');
  }
  return started;
}
