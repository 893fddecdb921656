import { createHash } from 'node:crypto';
import type { BatchRef } from './embedding';

/** What a batch's size counts in a job log row: texts (embeddings), ids (deals), requests (collectors). */
export type BatchUnit = 'texts' | 'ids' | 'requests';

/**
 * The job log row naming the warehouse batches that served a job (Bull Board's Logs tab), written by the
 * workers and read back by `batchesInLogs` (the API's job lookup): one format, both directions here.
 *
 * @example
 *   describeBatches([{ batchId: 'emb-7f3a-1', size: 200 }], 'texts') // 'batch emb-7f3a-1 (200 texts)'
 */
export function describeBatches(refs: readonly BatchRef[], unit: BatchUnit): string {
  if (refs.length === 0) return 'no warehouse batch';
  return `batch${refs.length > 1 ? 'es' : ''} ${refs.map((b) => `${b.batchId} (${b.size} ${unit})`).join(', ')}`;
}

/** How a row naming the batches whose call failed a job begins. */
const FAILED_ROW = 'failed in ';

/**
 * The job log row naming the batches whose call failed the job (its error is the job's failedReason):
 * read back by `failedBatchesInLogs`, and indexed like a served row, so a failed batch is found by its jobs.
 *
 * @example
 *   describeFailedBatches([{ batchId: 'emb-7f3a-2', size: 3 }], 'texts') // 'failed in batch emb-7f3a-2 (3 texts)'
 */
export function describeFailedBatches(refs: readonly BatchRef[], unit: BatchUnit): string {
  return `${FAILED_ROW}${describeBatches(refs, unit)}`;
}

// Batch ids are `<coalescer>-<hex>-<n>`, and `.1` / `.2` per bisection of a failed batch.
const BATCH_IN_LOG = /([A-Za-z0-9_-]+-[A-Za-z0-9_.-]+) \((\d+) (?:texts|ids|requests)\)/g;

function refsIn(lines: readonly string[], failed: boolean): BatchRef[] {
  const out: BatchRef[] = [];
  for (const line of lines) {
    if (line.startsWith(FAILED_ROW) !== failed) continue;
    for (const m of line.matchAll(BATCH_IN_LOG)) out.push({ batchId: m[1], size: Number(m[2]) });
  }
  return out;
}

/** The batches that served a job, as its log rows name them (`describeBatches`' format), in order. */
export function batchesInLogs(lines: readonly string[]): BatchRef[] {
  return refsIn(lines, false);
}

/** The batches whose call failed a job, as its log rows name them (`describeFailedBatches`), in order. */
export function failedBatchesInLogs(lines: readonly string[]): BatchRef[] {
  return refsIn(lines, true);
}

/** A batch a job names: one that served it, or one whose call failed it (a retry may be served by another). */
export interface JobBatchRef extends BatchRef {
  outcome: 'served' | 'failed';
}

/**
 * Every batch of a job: those that failed it (from its log rows), then those that served it (from its
 * result, `batch` or `batches`, else from its log rows).
 */
export function batchesOfJob(result: unknown, logs: readonly string[]): JobBatchRef[] {
  const r = result as { batch?: BatchRef; batches?: BatchRef[] } | null | undefined;
  let served = batchesInLogs(logs);
  if (r && typeof r === 'object') {
    if (Array.isArray(r.batches)) served = r.batches;
    else if (r.batch && typeof r.batch === 'object') served = [r.batch];
  }
  const failed = failedBatchesInLogs(logs);
  return [
    ...failed.map((b) => ({ batchId: b.batchId, size: b.size, outcome: 'failed' as const })),
    ...served.map((b) => ({ batchId: b.batchId, size: b.size, outcome: 'served' as const })),
  ];
}

/** What a batch id looks like wherever one is accepted from outside (the lookup API and page). */
export const BATCH_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$/;

/** What a text hash (`textHash`) looks like: 43 characters of base64url. */
export const TEXT_HASH_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * The hash under which jobs are found by their text: base64url of SHA-256 over the text (UTF-8), so the
 * text itself never becomes part of a Redis key. Independent of the model (the cache key is not).
 *
 * @example
 *   textHash('renewal is at risk') // 43 characters
 */
export function textHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url');
}

/**
 * Redis keys of the job lookup indexes, inside a queue's own key space (`<prefix>:<queue>`, BullMQ's
 * `queueQualifiedName`): removed with the queue (`obliterate`), in its cluster slot (the `{hash tag}` of
 * the prefix). BullMQ job ids cannot contain `:`, so no job's keys collide with these.
 *
 * - `batch`: a hash, the batch's record (timing, outcome, QUERY_TAG, query id when known)
 * - `batchJobs`: a sorted set of the ids of the jobs it served or failed, and of those of the halves it was
 *   split into (score: when their row was written, ms)
 * - `text`: a sorted set of the ids of the jobs whose text has that hash
 * - `tenant`: a sorted set of the ids of the jobs of a tenant (the tenant hashed like a text)
 */
export const lookupKeys = {
  batch: (queueKey: string, batchId: string) => `${queueKey}:fleet:batch:${batchId}`,
  batchJobs: (queueKey: string, batchId: string) => `${queueKey}:fleet:batch:${batchId}:jobs`,
  text: (queueKey: string, hash: string) => `${queueKey}:fleet:text:${hash}`,
  tenant: (queueKey: string, tenant: string) => `${queueKey}:fleet:tenant:${textHash(tenant)}`,
} as const;

/** The batch a split half came from (`emb-a1-3.2` → `emb-a1-3`), or undefined for a batch that is no half. */
export function parentBatchId(batchId: string): string | undefined {
  const m = /^(.+)\.[12]$/.exec(batchId);
  return m ? m[1] : undefined;
}

/** Where the API serves the operator page that finds jobs and opens batches; job log rows link to it. */
export const JOB_LOOKUP_PAGE = '/admin/jobs';
