import type { Worker } from 'bullmq';
import type { Logger } from '../../telemetry/logger';
import type { RoleContext, RoleModule, StartedRole } from './context';
import { dealsRole } from './deals';
import { embeddingsRole } from './embeddings';
import { flowsRole } from './flows';
import { indexRole } from './index-builder';
import { searchRole } from './search';

export type { RoleContext, StartedRole } from './context';

/** The roles a process can run, one module each (`fleet worker --role R`; `fleet up` runs them all). */
const ROLES = {
  embeddings: embeddingsRole,
  deals: dealsRole,
  flows: flowsRole,
  index: indexRole,
  search: searchRole,
} as const satisfies Record<string, RoleModule>;

export type WorkerRole = keyof typeof ROLES;
export const WORKER_ROLES = Object.keys(ROLES) as WorkerRole[];

function watch(worker: Worker, logger: Logger): void {
  worker.on('failed', (job, err) => logger.warn({ queue: worker.name, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'job failed'));
  worker.on('error', (err) => logger.error({ queue: worker.name, err }, 'worker error'));
  worker.on('stalled', (jobId) => logger.warn({ queue: worker.name, jobId }, 'job stalled: its worker stopped renewing the lock; it will run again'));
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
    watch(worker, logger);
    ctx.releasers.add(`${worker.name} worker`, () => worker.close());
    logger.info({ queue: worker.name, concurrency: worker.opts.concurrency }, 'worker started');
  }
  return started;
}
