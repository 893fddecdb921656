import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { LuaCommand } from '../redis-lua/lua-command';
import { Coalescer } from './coalescer';

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

// BullMQ's addLog-2.lua for many jobs at once: KEYS are (job hash, job log list) pairs, ARGV (row, keepLogs)
// pairs. A job whose hash is gone (removed while running) gets no log, as with job.log, and reports -1.
const ADD_LOGS_LUA = `
local out = {}
for i = 1, #KEYS / 2 do
  local logs = KEYS[2 * i]
  if redis.call('EXISTS', KEYS[2 * i - 1]) == 1 then
    out[i] = redis.call('RPUSH', logs, ARGV[2 * i - 1])
    local keep = ARGV[2 * i]
    if keep ~= '' then redis.call('LTRIM', logs, -tonumber(keep), -1) end
  else
    out[i] = -1
  end
end
return out`;
const addLogs = new LuaCommand('fleetAddJobLogs', ADD_LOGS_LUA);

interface LogEntry {
  seq: number;
  jobKey: string;
  row: string;
  keepLogs?: number;
}

/**
 * Job logs written together: the rows logged during one turn of the event loop (a batch's jobs finish in
 * the same turn) go to Redis in one script call instead of one `job.log` round trip each. In the coalesced
 * embedding worker that was one extra script per job; the log is what shows an operator, in Bull Board,
 * which batch served a job. Same keys and trimming (`keepLogs`) as `job.log`, so Bull Board reads them as
 * its own. A job whose hash is gone rejects, as `job.log` does.
 *
 * The connection should be a non-blocking one (a worker's blocking connection waits in BZPOPMIN).
 *
 * @example
 *   const logs = createJobLogWriter(redis);
 *   await logs.log(job, `served by batch ${batch.batchId}`);
 */
export function createJobLogWriter(redis: Redis, opts: { maxBatchSize?: number } = {}): JobLogWriter {
  let seq = 0;
  const coalescer = new Coalescer<LogEntry, number>({
    name: 'job-logs',
    maxBatchSize: opts.maxBatchSize ?? 1000,
    maxWaitMs: 0,
    maxConcurrentBatches: 4,
    keyOf: (e) => String(e.seq), // every row is written, even two equal rows of one job
    // A failed write is Redis's failure, not one row's: bisecting would only repeat it.
    shouldSplit: () => false,
    loadBatch: async (entries) => {
      const keys: string[] = [];
      const args: string[] = [];
      for (const e of entries) {
        keys.push(e.jobKey, `${e.jobKey}:logs`);
        args.push(e.row, e.keepLogs ? String(e.keepLogs) : '');
      }
      const counts = (await addLogs.run(redis, keys, args)) as number[];
      return counts.map((n, i) => (n < 0 ? new Error(`Missing key for job ${entries[i].jobKey}. addLog`) : n));
    },
  });
  return {
    async log(job, row) {
      await coalescer.load({ seq: seq++, jobKey: `${job.queueQualifiedName}:${job.id}`, row, keepLogs: job.opts.keepLogs });
    },
    close: () => coalescer.close(),
  };
}
