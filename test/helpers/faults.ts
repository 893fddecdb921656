import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { PrivateRedis } from '../../src/app/redis-server';
import { indexLogKey } from '../../src/index-builder/upsert-stream';
import { type Launched, launchFleet } from './processes';

/**
 * Shared pieces of the fault suite (test/faults-*.test.ts, test/shutdown-signals.test.ts): real worker
 * replicas in their own processes (the CLI from dist/, as the image runs it), effect counting and the
 * one-row report each fault prints. Waiting is test/helpers/wait.ts; the process itself, test/helpers/processes.ts.
 */
const OUT = path.join(__dirname, '..', '..', 'test-output');

/** A worker replica: a launched `fleet worker` (stop it with `stop()`, SIGTERM then SIGKILL, or `kill()`). */
export type Replica = Launched;

/** `fleet worker --role <role>` in its own process, its stdout and stderr collected. */
export function startReplica(env: Record<string, string>, role = 'embeddings'): Replica {
  // HEALTH_PORT 0: an ephemeral port, so replicas of parallel test runs never collide on 9464.
  return launchFleet(['worker', '--role', role], { env: { LOG_LEVEL: 'info', HEALTH_PORT: '0', ...env }, name: `replica (${role})` });
}

/**
 * Environment of an embeddings replica in the fault tests: its own queue prefix, the test's warehouse, short
 * locks so a dead replica's jobs run elsewhere within seconds, and batches small enough that several are in
 * flight at any moment.
 */
export function faultReplicaEnv(prefix: string, warehouseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    FLEET_QUEUE_PREFIX: prefix,
    SNOWFLAKE_ACCESS_URL: warehouseUrl,
    LOG_LEVEL: 'warn',
    WORKER_LOCK_DURATION_MS: '2000',
    WORKER_STALLED_INTERVAL_MS: '1000',
    POOL_MIN: '0',
    POOL_MAX: '2',
    EMBED_BATCH_MAX_SIZE: '100',
    EMBED_BATCH_MAX_WAIT_MS: '20',
    EMBED_WORKER_CONCURRENCY: '200',
    ...extra,
  };
}

/** What the index log holds, per job: the effects the fault suite checks are exactly-once. */
export interface EffectCount {
  /** Log entries written by jobs (field `j`). */
  entries: number;
  /** Distinct jobs with at least one entry. */
  jobs: number;
  /** Jobs with more than one entry: a duplicated effect each. */
  duplicated: number;
  perJob: Map<string, number>;
}

export async function countIndexEffects(redis: Redis | Cluster, prefix: string): Promise<EffectCount> {
  const perJob = new Map<string, number>();
  let entries = 0;
  let start = '-';
  for (;;) {
    const rows = await redis.xrange(indexLogKey(prefix), start, '+', 'COUNT', 2000);
    for (const [, fields] of rows) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i] === 'j') {
          perJob.set(fields[i + 1], (perJob.get(fields[i + 1]) ?? 0) + 1);
          entries += 1;
        }
      }
    }
    if (rows.length < 2000) break;
    start = `(${rows[rows.length - 1][0]}`;
  }
  let duplicated = 0;
  for (const n of perJob.values()) if (n > 1) duplicated += 1;
  return { entries, jobs: perJob.size, duplicated, perJob };
}

/** One row of the fault table (docs/reliability.md): printed to the test output and kept in test-output/faults.jsonl. */
export interface FaultRow {
  fault: string;
  accepted: number;
  completed: number;
  failed: number;
  /** Effects (index log entries) written more than once for one job. */
  duplicatedEffects: number;
  /** Anything else worth a column: runs of a job, retries, RSS, durations. */
  detail?: string;
}

export function reportFault(row: FaultRow): void {
  const line = `FAULT | ${row.fault} | accepted ${row.accepted} | completed ${row.completed} | failed ${row.failed} | duplicated effects ${row.duplicatedEffects}${row.detail ? ` | ${row.detail}` : ''}`;
  process.stdout.write(`${line}\n`);
  try {
    mkdirSync(OUT, { recursive: true });
    appendFileSync(path.join(OUT, 'faults.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), ...row })}\n`);
  } catch {
    // the report file is a convenience; the printed row is the record
  }
}

/**
 * Crashes a private redis-server: SIGKILL, so Redis neither rewrites nor fsyncs its AOF on the way out (what
 * it had handed to the kernel survives; with `appendfsync everysec` a power loss could still take up to the
 * last second). Resolves once the process has exited, so the port and directory are free for a restart.
 */
export async function crashRedis(server: PrivateRedis): Promise<void> {
  const child = server.process;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

/**
 * Per job id, how many `completed` events a queue's event stream (`<prefix>:<queue>:events`) holds: a job
 * that finished twice (a late write from a replica that had lost the job) shows 2. The stream is trimmed at
 * about 10,000 events (BullMQ's default), so count runs smaller than that.
 */
export async function countCompletedEvents(redis: Redis, prefix: string, queue: string): Promise<Map<string, number>> {
  const perJob = new Map<string, number>();
  let start = '-';
  for (;;) {
    const rows = await redis.xrange(`${prefix}:${queue}:events`, start, '+', 'COUNT', 2000);
    for (const [, fields] of rows) {
      const entry = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) entry.set(fields[i], fields[i + 1]);
      const jobId = entry.get('jobId');
      if (entry.get('event') === 'completed' && jobId) perJob.set(jobId, (perJob.get(jobId) ?? 0) + 1);
    }
    if (rows.length < 2000) break;
    start = `(${rows[rows.length - 1][0]}`;
  }
  return perJob;
}

/** How many of `counts`' values are above one: each a job (or effect) that happened more than once. */
export function moreThanOnce(counts: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const c of counts.values()) if (c > 1) n += 1;
  return n;
}

/**
 * Per job id, how many rows of its log (`<prefix>:<queue>:<id>:logs`, what Bull Board shows) match `row`:
 * how many runs of the job reached the point where it logs (a job re-run after its replica died logs again).
 */
export async function countLogRows(redis: Redis, prefix: string, queue: string, ids: readonly string[], row: RegExp): Promise<Map<string, number>> {
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.lrange(`${prefix}:${queue}:${id}:logs`, 0, -1);
  const replies = (await pipeline.exec()) ?? [];
  const perJob = new Map<string, number>();
  replies.forEach(([err, rows], i) => {
    if (err) throw err;
    perJob.set(ids[i], (rows as string[]).filter((r) => row.test(r)).length);
  });
  return perJob;
}
