import type { Job, Worker } from 'bullmq';
import { tenantOfData } from '../contracts/tenants';
import type { TenantLanes } from './lanes';

export interface WorkerLanesOptions {
  /** How long finished jobs gather before one release call (default 5 ms); a batch of jobs finishing together makes one call. */
  flushMs?: number;
  /** Most releases in one call (default 1,000). */
  maxBatch?: number;
  /** How often the lanes are reconciled (stale slots freed, tenants refilled). Default 15,000 ms; 0 = never. */
  reconcileEveryMs?: number;
  /** Release or reconcile errors (Redis away): the next release or reconcile repairs what this one missed. */
  onError?: (err: Error) => void;
}

/** A worker's side of the tenant lanes; `close` flushes the pending releases. */
interface WorkerLanes {
  /** Releases waiting to be sent. */
  pending(): number;
  close(): Promise<void>;
}

/**
 * Frees a finished job's slot in its tenant's lane (see TenantLanes): on BullMQ's `completed`, and on
 * `failed` once the job failed for good (a job that will retry keeps its slot). Releases are gathered for
 * `flushMs` so the jobs of one coalesced batch cost one script call; the lanes are reconciled every
 * `reconcileEveryMs`, which also repairs releases lost with a killed process.
 */
export function attachWorkerLanes(worker: Worker, lanes: TenantLanes, opts: WorkerLanesOptions = {}): WorkerLanes {
  const flushMs = opts.flushMs ?? 5;
  const maxBatch = opts.maxBatch ?? 1_000;
  const onError = opts.onError ?? (() => undefined);
  let batch: { tenant: string; jobId: string }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const inFlight = new Set<Promise<unknown>>();

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (batch.length === 0) return;
    const sent = batch;
    batch = [];
    const p = lanes
      .release(sent)
      .catch((err: Error) => onError(err))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const release = (job: Job | undefined) => {
    if (!job?.id) return;
    batch.push({ tenant: tenantOfData(job.data), jobId: job.id });
    if (batch.length >= maxBatch) flush();
    else timer ??= setTimeout(flush, flushMs);
  };
  const onCompleted = (job: Job) => release(job);
  const onFailed = (job: Job | undefined) => {
    if (job?.finishedOn) release(job);
  };
  worker.on('completed', onCompleted);
  worker.on('failed', onFailed);

  const every = opts.reconcileEveryMs ?? 15_000;
  let reconciling: Promise<unknown> | undefined;
  const reconciler =
    every > 0
      ? setInterval(() => {
          reconciling ??= lanes
            .reconcile()
            .catch((err: Error) => onError(err))
            .finally(() => {
              reconciling = undefined;
            });
        }, every)
      : undefined;
  reconciler?.unref();

  return {
    pending: () => batch.length + inFlight.size,
    async close() {
      if (reconciler) clearInterval(reconciler);
      flush();
      worker.off('completed', onCompleted);
      worker.off('failed', onFailed);
      await Promise.allSettled([...inFlight, reconciling]);
    },
  };
}
