import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
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

export async function countIndexEffects(redis: Redis, prefix: string): Promise<EffectCount> {
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
