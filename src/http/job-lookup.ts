import type { Job, Queue } from 'bullmq';
import { z } from 'zod';
import { BATCH_ID_PATTERN, batchesOfJob, type JobBatchRef, lookupKeys, TEXT_HASH_PATTERN, textHash } from '../contracts/batch-log';
import { IndexItemId } from '../contracts/embedding';
import { isQueueName } from '../contracts/queues';
import { withShardMark } from '../contracts/shards';
import { WarehouseText } from '../contracts/text';
import { idempotentJobId } from '../producers';
import { withDeadline } from '../resilience';
import { HttpError } from './http-error';
import { jobWithState } from './job-state';
import type { QueueSet } from './queue-set';
import { IdempotencyKey, JobParams } from './schemas';

/** The ways to find jobs: exactly one per lookup. */
const LOOKUPS = ['id', 'idempotencyKey', 'batch', 'text', 'textHash', 'tenant'] as const;
type LookupBy = (typeof LOOKUPS)[number];

const Cursor = z
  .string()
  .regex(/^\d{1,9}$/, 'must be the `nextCursor` of a previous page')
  .transform(Number)
  .optional()
  .meta({ description: 'Where the page starts: the `nextCursor` of the previous page (absent: the first page)' });
const Limit = z
  .string()
  .regex(/^\d{1,3}$/, 'must be an integer from 1 to 100')
  .transform(Number)
  .refine((n) => n >= 1 && n <= 100, 'must be an integer from 1 to 100')
  .optional()
  .meta({ description: 'Jobs per page, 1-100. Default 20' });
const BatchId = z.string().regex(BATCH_ID_PATTERN, 'must be a batch id as job logs name it (e.g. emb-7f3a9c-42)');

/** `GET /v1/jobs` query: a queue and exactly one of id, idempotencyKey, batch, text, textHash, tenant. */
export const JobLookupQuery = z
  .strictObject({
    queue: JobParams.shape.queue.meta({ description: 'The queue to look in (embeddings, deals)' }),
    id: JobParams.shape.id.optional().meta({ description: 'A job id' }),
    idempotencyKey: IdempotencyKey.optional().meta({ description: 'The Idempotency-Key the jobs were enqueued with (their ids follow from it)' }),
    batch: BatchId.optional().meta({ description: 'A warehouse batch id: the jobs it served' }),
    text: WarehouseText.optional().meta({ description: "A job's exact text: the jobs with that text (looked up by its hash)" }),
    textHash: z
      .string()
      .regex(TEXT_HASH_PATTERN, 'must be 43 characters of base64url (SHA-256 of the text)')
      .optional()
      .meta({ description: 'base64url SHA-256 of the text (UTF-8): the jobs with that text, without sending it' }),
    tenant: IndexItemId.optional().meta({
      description: "A tenant: the jobs that carry it (`tenant` in the job's data, or its index target's `tenant`)",
    }),
    cursor: Cursor,
    limit: Limit,
  })
  .superRefine((q, ctx) => {
    const given = LOOKUPS.filter((k) => q[k] !== undefined);
    if (given.length !== 1)
      ctx.addIssue({
        code: 'custom',
        path: given.length ? [given[1]] : [],
        message: `give exactly one of ${LOOKUPS.join(', ')}${given.length ? ` (got ${given.join(' and ')})` : ''}`,
      });
  });
export type JobLookupQuery = z.output<typeof JobLookupQuery>;

/** `GET /v1/batches/:id` query. */
export const BatchLookupQuery = z.strictObject({
  queue: JobParams.shape.queue.optional().meta({ description: 'The queue whose jobs the batch served. Default: every queue the API knows' }),
  cursor: Cursor,
  limit: Limit,
});

export const BatchParams = z.strictObject({ id: BatchId });

/** A job as a lookup lists it. */
export interface FoundJob {
  queue: string;
  id: string;
  name: string;
  state: string;
  /** The (first) warehouse batch that served it, null when none did (cache, not yet run, failed). */
  batch: string | null;
  /** Every batch it names: those whose call failed it (`outcome: failed`, e.g. before a retry), then those that served it. */
  batches: JobBatchRef[];
  createdAt: string | null;
  finishedAt: string | null;
  failedReason?: string;
  href: string;
}

export interface JobPage {
  queue: string;
  by: LookupBy;
  jobs: FoundJob[];
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

/** A batch's record and the jobs it served (one page of their ids). */
export interface BatchView {
  batchId: string;
  /** The queues whose jobs it served. */
  queues: string[];
  /** Coalescer that made it (`emb`, `deals`, `analyze-calls`…). */
  name: string | null;
  /** Distinct keys (texts, ids) in the statement. */
  size: number | null;
  /** Jobs the statement answered. */
  jobsServed: number | null;
  outcome: 'ok' | 'failed' | null;
  error: string | null;
  /** The failed batch this one is a half of (bisection), if any. */
  parent: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  /** The QUERY_TAG fields that identify the statement (queue, batch, jobs). */
  queryTag: Record<string, unknown> | null;
  /** Snowflake's query id of the statement that answered the batch (or failed it), when the worker learned it. */
  queryId: string | null;
  /** Ids of the jobs it served, one page; each with its queue. */
  jobs: { queue: string; id: string; href: string }[];
  total: number;
  nextCursor: string | null;
}

const iso = (ms: number | undefined | null) => (typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString() : null);
const num = (s: string | undefined) => (s === undefined || s === '' ? null : Number(s));

export interface JobLookupOptions {
  /** Queues jobs are looked up in, every shard of each; other names get 404. */
  queues: QueueSet;
  /** Deadline of the Redis work of one lookup; past it a 503 with Retry-After. */
  redisTimeoutMs: number;
}

/**
 * Finds jobs and batches through the indexes the workers' job log writer maintains (src/workers/job-logs.ts):
 * never a scan of a queue. By id: the job itself. By idempotency key: the ids it determines (`idem-…`, and
 * `…#0`, `…#1`… for a list of texts). By batch, text or tenant: the index set, one page of it.
 */
export function createJobLookup(opts: JobLookupOptions) {
  const { queues, redisTimeoutMs } = opts;
  const bounded = <T>(work: Promise<T>) =>
    withDeadline(
      work,
      redisTimeoutMs,
      () =>
        new HttpError(503, 'redis_timeout', `Redis did not answer within ${redisTimeoutMs} ms (job lookup); retry later`, undefined, { 'retry-after': '1' }),
    );
  /** The shards of the queue `name`, shard 0 first; 404 for a queue the API does not serve. */
  const queueNamed = (name: string): readonly Queue[] => {
    const shards = queues.shards(name);
    if (shards.length === 0)
      throw new HttpError(404, 'unknown_queue', `unknown queue ${JSON.stringify(name)}; known queues: ${queues.names().join(', ') || '(none)'}`);
    return shards;
  };
  const href = (queue: string, id: string) => `/v1/jobs/${queue}/${encodeURIComponent(id)}`;

  const describe = async (queue: Queue, read: Job): Promise<FoundJob> => {
    const id = String(read.id);
    const [{ job, state }, logs] = await Promise.all([jobWithState(queue, read), queue.getJobLogs(id, 0, 9, true)]);
    const batches = batchesOfJob(job.returnvalue, logs.logs);
    return {
      queue: queue.name,
      id,
      name: job.name,
      state,
      batch: batches.find((b) => b.outcome === 'served')?.batchId ?? null,
      batches,
      createdAt: iso(job.timestamp),
      finishedAt: iso(job.finishedOn),
      ...(job.failedReason ? { failedReason: job.failedReason } : {}),
      href: href(queue.name, id),
    };
  };

  /** The jobs among `ids` that still exist (an index may outlive a job removed by count), described. */
  const jobsByIds = async (queue: Queue, ids: readonly string[]): Promise<FoundJob[]> => {
    const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
    return Promise.all(jobs.filter((j): j is Job => Boolean(j)).map((j) => describe(queue, j)));
  };

  /**
   * One page of a sorted-set index kept in every shard (`keyOf` a shard's key): ids in the order they were
   * written, shard by shard; the cursor counts across the shards, as a batch's jobs are counted across queues.
   */
  const indexPage = async (shards: readonly Queue[], keyOf: (q: Queue) => string, cursor: number, limit: number) => {
    const totals = await Promise.all(shards.map(async (q) => (await q.getBackend().client).zcard(keyOf(q))));
    const found: { queue: Queue; id: string }[] = [];
    let skip = cursor;
    for (const [i, q] of shards.entries()) {
      if (found.length >= limit) break;
      if (skip >= totals[i]) {
        skip -= totals[i];
        continue;
      }
      const ids = await (await q.getBackend().client).zrange(keyOf(q), skip, skip + (limit - found.length) - 1);
      skip = 0;
      for (const id of ids) found.push({ queue: q, id });
    }
    const total = totals.reduce((a, b) => a + b, 0);
    return { found, nextCursor: cursor + found.length < total ? String(cursor + found.length) : null };
  };
  /** The jobs of `found` that still exist, described, in order. */
  const jobsFound = async (found: readonly { queue: Queue; id: string }[]): Promise<FoundJob[]> => {
    const jobs = await Promise.all(found.map((f) => f.queue.getJob(f.id)));
    return Promise.all(found.flatMap((f, i) => (jobs[i] ? [describe(f.queue, jobs[i])] : [])));
  };
  /** The jobs with these ids in any shard (an idempotency key's id carries the shard its layout gave it). */
  const jobsInAnyShard = (shards: readonly Queue[], baseIds: readonly string[]) =>
    jobsFound(baseIds.flatMap((id) => shards.map((q) => ({ queue: q, id: withShardMark(id, queues.shardOf(q)) }))));

  async function findJobs(q: JobLookupQuery): Promise<JobPage> {
    const shards = queueNamed(q.queue);
    const name = shards[0].name;
    const cursor = q.cursor ?? 0;
    const limit = q.limit ?? 20;
    const by = LOOKUPS.find((k) => q[k] !== undefined)!;
    return bounded(
      (async (): Promise<JobPage> => {
        if (by === 'id') {
          const shard = queues.ofJob(name, q.id!);
          return { queue: name, by, jobs: cursor === 0 && shard ? await jobsByIds(shard, [q.id!]) : [], nextCursor: null };
        }
        if (by === 'idempotencyKey') {
          if (!isQueueName(name)) return { queue: name, by, jobs: [], nextCursor: null };
          // One text: the key's own id. A list: `key#0`, `key#1`…, consecutive; a page past the last finds fewer.
          const listIds = Array.from({ length: limit }, (_, i) => idempotentJobId(name, `${q.idempotencyKey}#${cursor + i}`));
          const ids = cursor === 0 ? [idempotentJobId(name, q.idempotencyKey!), ...listIds] : listIds;
          const found = await jobsInAnyShard(shards, ids);
          const listFound = found.filter((j) => listIds.some((id) => j.id === id || j.id.endsWith(`.${id}`))).length;
          return { queue: name, by, jobs: found, nextCursor: listFound === limit ? String(cursor + limit) : null };
        }
        const keyOf = (queue: Queue) =>
          by === 'batch'
            ? lookupKeys.batchJobs(queue.qualifiedName, q.batch!)
            : by === 'tenant'
              ? lookupKeys.tenant(queue.qualifiedName, q.tenant!)
              : lookupKeys.text(queue.qualifiedName, by === 'text' ? textHash(q.text!) : q.textHash!);
        const page = await indexPage(shards, keyOf, cursor, limit);
        return { queue: name, by, jobs: await jobsFound(page.found), nextCursor: page.nextCursor };
      })(),
    );
  }

  /** A batch's record and one page of its jobs, from `queue` or every known queue; 404 when none has it. */
  async function getBatch(batchId: string, q: { queue?: string; cursor?: number; limit?: number }): Promise<BatchView> {
    const candidates = q.queue ? queueNamed(q.queue) : queues.all();
    const cursor = q.cursor ?? 0;
    const limit = q.limit ?? 100;
    return bounded(
      (async (): Promise<BatchView> => {
        const found = await Promise.all(
          candidates.map(async (queue) => {
            const client = await queue.getBackend().client;
            const [record, total] = await Promise.all([
              client.hgetall(lookupKeys.batch(queue.qualifiedName, batchId)),
              client.zcard(lookupKeys.batchJobs(queue.qualifiedName, batchId)),
            ]);
            return { queue, record, total };
          }),
        );
        const holding = found.filter((f) => f.total > 0 || Object.keys(f.record).length > 0);
        if (holding.length === 0) {
          throw new HttpError(
            404,
            'batch_not_found',
            `no batch ${JSON.stringify(batchId)}${q.queue ? ` in queue ${q.queue}` : ''} (unknown, or its jobs' retention has passed)`,
          );
        }
        const record = holding.find((f) => Object.keys(f.record).length > 0)?.record ?? {};
        // The jobs of every queue holding it, queue by queue: the cursor counts across them.
        const jobs: BatchView['jobs'] = [];
        let skip = cursor;
        for (const f of holding) {
          if (jobs.length >= limit) break;
          if (skip >= f.total) {
            skip -= f.total;
            continue;
          }
          const client = await f.queue.getBackend().client;
          const ids = await client.zrange(lookupKeys.batchJobs(f.queue.qualifiedName, batchId), skip, skip + (limit - jobs.length) - 1);
          skip = 0;
          for (const id of ids) jobs.push({ queue: f.queue.name, id, href: href(f.queue.name, id) });
        }
        const total = holding.reduce((n, f) => n + f.total, 0);
        let queryTag: Record<string, unknown> | null = null;
        try {
          queryTag = record.queryTag ? (JSON.parse(record.queryTag) as Record<string, unknown>) : null;
        } catch {
          queryTag = null;
        }
        return {
          batchId,
          queues: [...new Set(holding.map((f) => f.queue.name))],
          name: record.name ?? null,
          size: num(record.size),
          jobsServed: num(record.jobs),
          outcome: record.outcome === 'ok' || record.outcome === 'failed' ? record.outcome : null,
          error: record.error ?? null,
          parent: record.parent ?? null,
          startedAt: iso(num(record.startedAt)),
          finishedAt: iso(num(record.finishedAt)),
          durationMs: num(record.durationMs),
          queryTag,
          queryId: record.queryId ?? null,
          jobs,
          total,
          nextCursor: cursor + jobs.length < total ? String(cursor + jobs.length) : null,
        };
      })(),
    );
  }

  return { findJobs, getBatch };
}

export type JobLookup = ReturnType<typeof createJobLookup>;
