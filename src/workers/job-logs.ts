import type { Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { type BatchUnit, batchesInLogs, describeFailedBatches, failedBatchesInLogs, lookupKeys, parentBatchId, textHash } from '../contracts/batch-log';
import type { BatchRef } from '../contracts/embedding';
import { JOB_DEFAULTS } from '../contracts/job-defaults';
import { LuaCommand } from '../redis-lua/lua-command';
import { type BatchEvent, batchTag, batchThatFailed, Coalescer } from './coalescer';
import { circuitOpenCause } from './run-worker';

/** Writes one row to a job's log (Bull Board's Logs tab), resolving once Redis has it. */
export interface JobLogWriter {
  log(job: Job, row: string): Promise<void>;
  /** Writes what is pending; further logs reject. */
  close(): Promise<void>;
}

/** BullMQ's own `job.log`: one script call per row. What processors use when given no writer. */
export const perJobLogs: JobLogWriter = {
  log: async (job, row) => {
    await job.log(row);
  },
  close: async () => undefined,
};

/**
 * BullMQ's addLog-2.lua for many jobs at once, plus the job lookup indexes (src/contracts/batch-log.ts
 * `lookupKeys`) those rows feed, in the same call.
 *
 * ARGV[1] = number of rows, ARGV[2] = TTL of the index keys (s), ARGV[3] = now (ms). Then per row: KEYS
 * (job hash, job log list, then m index sets), ARGV (row, keepLogs, job id, m); the job id is added to
 * each of its index sets. After the rows, KEYS are batch record hashes and ARGV their fields (a JSON
 * array: field, value, field, value…). Every index key gets the TTL. A job whose hash is gone (removed
 * while running) gets no log and no index entry, as with job.log, and reports -1.
 */
const ADD_LOGS_LUA = `
local rows, ttl, now = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local out = {}
local k, a = 1, 4
for i = 1, rows do
  local logs, m = KEYS[k + 1], tonumber(ARGV[a + 3])
  if redis.call('EXISTS', KEYS[k]) == 1 then
    out[i] = redis.call('RPUSH', logs, ARGV[a])
    local keep = ARGV[a + 1]
    if keep ~= '' then redis.call('LTRIM', logs, -tonumber(keep), -1) end
    for j = 1, m do
      redis.call('ZADD', KEYS[k + 1 + j], now, ARGV[a + 2])
      redis.call('EXPIRE', KEYS[k + 1 + j], ttl)
    end
  else
    out[i] = -1
  end
  k = k + 2 + m
  a = a + 4
end
while k <= #KEYS do
  redis.call('HSET', KEYS[k], unpack(cjson.decode(ARGV[a])))
  redis.call('EXPIRE', KEYS[k], ttl)
  k = k + 1
  a = a + 1
end
return out`;
const addLogs = new LuaCommand('fleetAddJobLogs', ADD_LOGS_LUA);

export interface JobLogWriterOptions {
  /** Most rows in one script call. Default 1,000. */
  maxBatchSize?: number;
  /**
   * How long the lookup indexes live, in seconds: the queue's longest job retention, so an index entry
   * lasts as long as the job it points to. Refreshed by every write. Default the larger of
   * `JOB_DEFAULTS.keepCompletedS` and `keepFailedS` (7 days).
   */
  retentionS?: number;
  /**
   * The operator page rows that name a batch link to, e.g. `/admin/jobs`: such a row gets
   * ` · /admin/jobs?batch=<id>` appended for each batch, so Bull Board's Logs tab leads to the batch.
   * Default none (rows as the processors wrote them).
   */
  batchPage?: string;
  /** The text a job is found by (hashed, never stored in a key). Default `job.data.text` when it is a string. */
  textOf?: (job: Job) => string | undefined;
  /**
   * The tenant a job is found by (hashed). Default `job.data.tenant`, else the tenant of its index target
   * (`job.data.index.tenant`), when a string.
   */
  tenantOf?: (job: Job) => string | undefined;
  /** Batches remembered (`observe`) until a row names them; the oldest are forgotten first. Default 10,000. */
  maxRememberedBatches?: number;
}

/** A job log writer that also maintains the job lookup indexes. */
export interface IndexingJobLogWriter extends JobLogWriter {
  /**
   * Remembers a coalesced batch (a coalescer's `onBatch` event): the rows that name it write its record
   * (timing, outcome, QUERY_TAG, size) in the same script call as their own index entries. No I/O.
   */
  observe(event: BatchEvent): void;
}

interface LogEntry {
  seq: number;
  /** `<prefix>:<queue>`: the job's key space, where its indexes live. */
  queueKey: string;
  queueName: string;
  jobId: string;
  row: string;
  keepLogs?: number;
  textHash?: string;
  tenant?: string;
}

const defaultTenantOf = (job: Job): string | undefined => {
  const data = job.data as { tenant?: unknown; index?: { tenant?: unknown } } | undefined;
  const tenant = data?.tenant ?? data?.index?.tenant;
  return typeof tenant === 'string' ? tenant : undefined;
};

/** A batch as `observe` saw it, and when (its call had just ended). */
interface ObservedBatch {
  event: BatchEvent;
  finishedAt: number;
}

const defaultTextOf = (job: Job): string | undefined => {
  const text = (job.data as { text?: unknown } | undefined)?.text;
  return typeof text === 'string' ? text : undefined;
};

/** A batch record's fields as the script's HSET takes them (field, value, …). */
function recordFields({ event: e, finishedAt }: ObservedBatch, queueName: string): string[] {
  const error = e.ok ? undefined : e.error;
  // The statement that answered the batch; for a failed call, the one that failed it.
  const failedQueryId = (error as { queryId?: unknown } | undefined)?.queryId;
  const queryId = typeof failedQueryId === 'string' && failedQueryId ? failedQueryId : e.queryId;
  const fields: Record<string, string> = {
    batchId: e.batch.batchId,
    name: e.name,
    size: String(e.batch.size),
    jobs: String(e.batch.jobs),
    outcome: e.ok ? 'ok' : 'failed',
    split: e.split ? '1' : '0',
    durationMs: String(Math.round(e.durationMs)),
    startedAt: String(Math.round(finishedAt - e.durationMs)),
    finishedAt: String(finishedAt),
    // The fields of the statement's QUERY_TAG that identify it (the pool adds app, role, op and attempt).
    queryTag: JSON.stringify(batchTag(queueName, { ...e.batch, jobs: e.taggedJobs ?? e.batch.jobs })),
    ...(error !== undefined ? { error: String((error as Error)?.message ?? error).slice(0, 1000) } : {}),
    ...(typeof queryId === 'string' ? { queryId } : {}),
  };
  const parent = parentBatchId(e.batch.batchId);
  if (parent) fields.parent = parent;
  return Object.entries(fields).flat();
}

/**
 * Job logs written together: the rows logged during one turn of the event loop (a batch's jobs finish in
 * the same turn) go to Redis in one script call instead of one `job.log` round trip each. In the coalesced
 * embedding worker that was one extra script per job; the log is what shows an operator, in Bull Board,
 * which batch served a job. Same keys and trimming (`keepLogs`) as `job.log`, so Bull Board reads them as
 * its own. A job whose hash is gone rejects, as `job.log` does.
 *
 * The same call writes the job lookup indexes (src/contracts/batch-log.ts `lookupKeys`): each job under
 * the batches its row names (served it, or failed it: `logFailedBatches`) and the failed batches they were
 * split from, under its text's hash and its tenant's, and the record of each named batch it was told about
 * (`observe`), all expiring with the jobs' retention. So finding a job by batch or text costs the workers no
 * round trip of its own: one script call per batch, not per job.
 *
 * The connection should be a non-blocking one (a worker's blocking connection waits in BZPOPMIN).
 *
 * @example
 *   const logs = createJobLogWriter(redis, { batchPage: '/admin/jobs' });
 *   const processor = createEmbeddingProcessor({ warehouse, logs, onBatch: (e) => logs.observe(e) });
 */
export function createJobLogWriter(redis: Redis | Cluster, opts: JobLogWriterOptions = {}): IndexingJobLogWriter {
  const retentionS = opts.retentionS ?? Math.max(JOB_DEFAULTS.keepCompletedS, JOB_DEFAULTS.keepFailedS);
  if (!Number.isInteger(retentionS) || retentionS < 1)
    throw new RangeError(`createJobLogWriter: option \`retentionS\` must be an integer >= 1, got ${String(opts.retentionS)}`);
  const maxRemembered = opts.maxRememberedBatches ?? 10_000;
  if (!Number.isInteger(maxRemembered) || maxRemembered < 0)
    throw new RangeError(`createJobLogWriter: option \`maxRememberedBatches\` must be an integer >= 0, got ${String(opts.maxRememberedBatches)}`);
  const textOf = opts.textOf ?? defaultTextOf;
  const tenantOf = opts.tenantOf ?? defaultTenantOf;
  const link = opts.batchPage ? (id: string) => ` · ${opts.batchPage}?batch=${encodeURIComponent(id)}` : undefined;
  // Insertion-ordered: the first key is the oldest.
  const remembered = new Map<string, ObservedBatch>();

  /** Writes the rows of jobs whose keys share one hash tag (one slot) in one script call. */
  const writeLogs = async (entries: LogEntry[]): Promise<Array<number | Error>> => {
    const keys: string[] = [];
    const args: string[] = [String(entries.length), String(retentionS), String(Date.now())];
    const records = new Map<string, { key: string; fields: string[] }>();
    const addRecord = (queueKey: string, queueName: string, batchId: string | undefined) => {
      // The named batch, and the failed batches it was split from.
      for (let id = batchId; id !== undefined; id = parentBatchId(id)) {
        const observed = remembered.get(id);
        const key = lookupKeys.batch(queueKey, id);
        if (observed && !records.has(key)) records.set(key, { key, fields: recordFields(observed, queueName) });
      }
    };
    for (const e of entries) {
      // The batches that served the job and those whose call failed it.
      const batches = [...batchesInLogs([e.row]), ...failedBatchesInLogs([e.row])];
      // A job is one of a batch's jobs, and of each failed batch it was split from.
      const jobSets = new Set<string>();
      for (const b of batches) for (let id: string | undefined = b.batchId; id !== undefined; id = parentBatchId(id)) jobSets.add(id);
      const indexes = [...jobSets].map((id) => lookupKeys.batchJobs(e.queueKey, id));
      if (e.textHash) indexes.push(lookupKeys.text(e.queueKey, e.textHash));
      if (e.tenant !== undefined) indexes.push(lookupKeys.tenant(e.queueKey, e.tenant));
      for (const b of batches) addRecord(e.queueKey, e.queueName, b.batchId);
      const row = link && batches.length ? e.row + batches.map((b) => link(b.batchId)).join('') : e.row;
      keys.push(`${e.queueKey}:${e.jobId}`, `${e.queueKey}:${e.jobId}:logs`, ...indexes);
      args.push(row, e.keepLogs ? String(e.keepLogs) : '', e.jobId, String(indexes.length));
    }
    for (const r of records.values()) {
      keys.push(r.key);
      args.push(JSON.stringify(r.fields));
    }
    const counts = (await addLogs.run(redis, keys, args)) as number[];
    return counts.map((n, i) => (n < 0 ? new Error(`Missing key for job ${entries[i].queueKey}:${entries[i].jobId}. addLog`) : n));
  };
  let seq = 0;
  const coalescer = new Coalescer<LogEntry, number>({
    name: 'job-logs',
    maxBatchSize: opts.maxBatchSize ?? 1000,
    maxWaitMs: 0,
    maxConcurrentBatches: 4,
    keyOf: (e) => String(e.seq), // every row is written, even two equal rows of one job
    // A failed write is Redis's failure, not one row's: bisecting would only repeat it.
    shouldSplit: () => false,
    // One script call per hash tag (a sharded queue's shards each have their own, and a cluster runs a script
    // on one slot), so a batch serving three shards' jobs makes three calls; queues of one tag share one.
    loadBatch: async (entries) => {
      const byQueue = new Map<string, number[]>();
      entries.forEach((e, i) => {
        const tag = /\{[^{}]+\}/.exec(e.queueKey)?.[0] ?? '';
        const list = byQueue.get(tag);
        if (list) list.push(i);
        else byQueue.set(tag, [i]);
      });
      const out: Array<number | Error> = new Array(entries.length);
      // Each tag's call settles its own rows: a shard whose master is failing over fails its jobs' rows, not
      // the rows of the other shards' jobs in the same batch.
      await Promise.all(
        [...byQueue.values()].map(async (idx) => {
          try {
            const counts = await writeLogs(idx.map((i) => entries[i]));
            idx.forEach((i, n) => {
              out[i] = counts[n];
            });
          } catch (err) {
            for (const i of idx) out[i] = err instanceof Error ? err : new Error(String(err));
          }
        }),
      );
      return out;
    },
  });
  return {
    async log(job, row) {
      const text = textOf(job);
      await coalescer.load({
        seq: seq++,
        queueKey: job.queueQualifiedName,
        queueName: job.queueName,
        jobId: String(job.id),
        row,
        keepLogs: job.opts.keepLogs,
        textHash: text === undefined ? undefined : textHash(text),
        tenant: tenantOf(job),
      });
    },
    observe(event) {
      if (maxRemembered === 0) return;
      remembered.delete(event.batch.batchId);
      remembered.set(event.batch.batchId, { event, finishedAt: Date.now() });
      if (remembered.size > maxRemembered) remembered.delete(remembered.keys().next().value as string);
    },
    close: () => coalescer.close(),
  };
}

/**
 * Logs the row naming the batches whose call failed a job (`failed in batch … (3 texts)`), for the errors
 * that came from one (`batchThatFailed`): the job log writer indexes the job under them and writes their
 * records in the same script call, one per batch as for served rows, so a failed batch is found by its jobs.
 * Nothing for other errors, nor for a call the open circuit refused (no statement went out; the job waits
 * without spending an attempt). A row that cannot be written is dropped: the job fails with its own error.
 */
export async function logFailedBatches(logs: JobLogWriter, job: Job, errors: readonly unknown[], unit: BatchUnit): Promise<void> {
  const failed = new Map<string, BatchRef>();
  for (const err of errors) {
    const batch = circuitOpenCause(err) ? undefined : batchThatFailed(err);
    if (batch) failed.set(batch.batchId, { batchId: batch.batchId, size: batch.size });
  }
  if (failed.size === 0) return;
  await logs.log(job, describeFailedBatches([...failed.values()], unit)).catch(() => undefined);
}
