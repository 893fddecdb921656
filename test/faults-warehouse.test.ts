import type { ChildProcess } from 'node:child_process';
import type { Job } from 'bullmq';
import { type LocalWarehouse, startLocalWarehouse } from 'local-snowflake';
import { CircuitBreaker } from '../src/pool';
import { createProducer, type Producer } from '../src/producers';
import { countIndexEffects, type Replica, reportFault, startReplica } from './helpers/faults';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { sleep, waitUntil } from './helpers/wait';
import { pooledClient } from './helpers/warehouse';

/**
 * Fault 3 (docs/reliability.md): the warehouse goes away for 30 s - the local warehouse process is
 * stopped (10 s), then a new one on the same port answers every query with an internal error (10 s), then
 * it answers slower than the worker's per-attempt deadline (10 s) - and then recovers.
 *
 * What must hold: calls end by their own deadline (not the driver's minutes of retries), the circuit
 * opens, jobs go back to waiting (an open circuit spends no attempt) and all complete after recovery.
 *
 * Retry policy asserted: the fleet defaults (5 attempts per job, exponential backoff from 1 s). Attempts
 * are spent only by calls that really went out and failed (the error phase: 000603 is not a transient
 * code, and a lone call can exhaust its WAREHOUSE_RETRIES before the breaker's threshold); 10 s of errors
 * cannot use up 5 attempts (1 + 2 + 4 + 8 s of backoff = 15 s), and every other phase ends in an open
 * circuit, which defers. So the test asserts ZERO failed jobs; should any fail, the failure message lists
 * each one with its attempts and reason (they are visible in the failed set, not lost).
 */
const JOBS = 2_000;
const BEFORE = 400;
const PHASE_MS = 10_000;
/** Per-attempt deadline of a warehouse call in the worker (WAREHOUSE_QUERY_TIMEOUT_MS). */
const DEADLINE_MS = 3_000;
/** Extra delay in the slow phase: well above the deadline, so every call ends by the deadline. */
const SLOW_MS = 6_000;
const QUERY_LATENCY_MS = 50;
const DEFAULT_ATTEMPTS = 5;

/** What the worker's JSON log says, tallied line by line (the replica's own buffer keeps only the tail). */
interface LogTally {
  /** Times of 'warehouse circuit open: jobs go back to waiting …' lines (logged at most once per 5 s). */
  deferrals: number[];
  /** Times of call attempts that ended by their own deadline ('did not finish within <DEADLINE_MS> ms'). */
  deadlineTimeouts: number[];
  /** 'warehouse call failed' lines by error code. */
  failedCallsByCode: Map<string, number>;
  /** 'job failed' lines: attempts spent (the job is retried unless it was its last). */
  jobAttemptsFailed: number;
}

function tallyLog(child: ChildProcess): LogTally {
  const tally: LogTally = { deferrals: [], deadlineTimeouts: [], failedCallsByCode: new Map(), jobAttemptsFailed: 0 };
  const onLine = (line: string) => {
    if (!line.startsWith('{')) return;
    let entry: { msg?: string; time?: number; code?: string; err?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (entry.msg?.startsWith('warehouse circuit open')) tally.deferrals.push(entry.time ?? Date.now());
    else if (entry.msg === 'warehouse call failed') {
      const code = String(entry.code ?? 'none');
      tally.failedCallsByCode.set(code, (tally.failedCallsByCode.get(code) ?? 0) + 1);
      if (typeof entry.err === 'string' && entry.err.includes(`did not finish within ${DEADLINE_MS} ms`)) tally.deadlineTimeouts.push(entry.time ?? Date.now());
    } else if (entry.msg === 'job failed') tally.jobAttemptsFailed++;
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  return tally;
}

/** Starts the local warehouse on `port`; the port was just freed by the previous one, so retry while it is still in use. */
function warehouseOn(port: number): Promise<LocalWarehouse> {
  return waitUntil(
    `the local warehouse to listen on port ${port} again`,
    () =>
      startLocalWarehouse({ port, loginLatencyMs: 0, queryLatencyMs: QUERY_LATENCY_MS, deals: 200 }).catch((err: Error) => {
        if (/EADDRINUSE/.test(String(err.message))) return undefined;
        throw err;
      }),
    { timeoutMs: 10_000, everyMs: 250 },
  );
}

describe('fault 3: the warehouse goes away for 30 s (stopped, then errors, then slow)', () => {
  const redis = testRedis();
  const warehouses: LocalWarehouse[] = [];
  let replica: Replica | undefined;
  let producer: Producer | undefined;

  afterAll(async () => {
    await replica?.stop();
    await producer?.close().catch(() => undefined);
    for (const w of warehouses) await w.close().catch(() => undefined);
    await redis.quit();
  });

  it('calls end by their own deadline, the circuit opens, jobs defer and all complete after recovery', async () => {
    const prefix = uniquePrefix('fault-warehouse');
    const first = await startLocalWarehouse({ port: 0, loginLatencyMs: 0, queryLatencyMs: QUERY_LATENCY_MS, deals: 200 });
    warehouses.push(first);
    const port = first.port;

    replica = startReplica({
      REDIS_URL: testRedisUrl(),
      FLEET_QUEUE_PREFIX: prefix,
      CACHE_KEY_PREFIX: `${prefix}:cache`,
      SNOWFLAKE_ACCESS_URL: first.url,
      HEALTH_PORT: '0',
      WAREHOUSE_QUERY_TIMEOUT_MS: String(DEADLINE_MS),
      // Fleet defaults otherwise: WAREHOUSE_RETRIES 3, breaker 5 failures / 10 s, JOB_ATTEMPTS 5, JOB_BACKOFF_MS 1000,
      // POOL_MIN 1 / POOL_MAX 8, EMBED_BATCH_MAX_SIZE 500, EMBED_WORKER_CONCURRENCY 1000.
    });
    const log = tallyLog(replica.child);
    await replica.logged('worker started', 60_000);

    producer = createProducer({ connection: redis, prefix });
    const queue = producer.queue('embeddings');
    let accepted = 0;
    const enqueue = async (n: number) => {
      const from = accepted;
      const ids = Array.from({ length: n }, (_, k) => from + k);
      accepted += n;
      await producer!.embed(
        ids.map((i) => `warehouse outage ${prefix} note ${i}: renewal call about pricing and the rollout plan`),
        { index: ids.map((i) => ({ namespace: 'faults', id: `doc-${i}` })) },
      );
    };

    // Before the outage: some jobs complete normally, so the pool holds sessions of the first warehouse.
    await enqueue(BEFORE);
    await waitUntil('the first jobs complete', async () => (await queue.getJobCounts('completed')).completed >= BEFORE / 2, {
      timeoutMs: 60_000,
      everyMs: 100,
    });

    // The rest arrive steadily over the outage (and a little beyond it). The sleeps below are the scenario's
    // timeline (each phase lasts PHASE_MS), not waits for something to happen.
    const outageAt = Date.now();
    const ticks = 64;
    const perTick = (JOBS - BEFORE) / ticks;
    const feeder = (async () => {
      for (let t = 0; t < ticks; t++) {
        await enqueue(perTick);
        await sleep(Math.max(0, outageAt + ((t + 1) * (3 * PHASE_MS + 2_000)) / ticks - Date.now()));
      }
    })();

    // Phase 1: stopped. Nothing listens on the port: connections are refused.
    await first.close();
    const firstStats = first.stats();
    await sleep(Math.max(0, outageAt + PHASE_MS - Date.now()));
    // Phase 2: a new warehouse process on the same port (it knows none of the old sessions), failing every query.
    const second = await warehouseOn(port);
    warehouses.push(second);
    second.setFault({ mode: 'error' });
    const errorAt = Date.now();
    await sleep(Math.max(0, outageAt + 2 * PHASE_MS - Date.now()));
    // Phase 3: answers slower than the per-attempt deadline (logins and every other request too).
    second.setFault({ mode: 'slow', slowMs: SLOW_MS });
    const slowAt = Date.now();
    await sleep(Math.max(0, outageAt + 3 * PHASE_MS - Date.now()));
    second.setFault({ mode: 'none' });
    const recoveredAt = Date.now();
    await feeder;
    expect(accepted).toBe(JOBS);

    await waitUntil(
      'every job completed or failed',
      async () => {
        const c = await queue.getJobCounts('completed', 'failed');
        return c.completed + c.failed >= JOBS;
      },
      { timeoutMs: 150_000, everyMs: 250 },
    );
    const drainedAt = Date.now();
    const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized');
    const failedJobs = await queue.getJobs(['failed'], 0, -1);
    const completedJobs: Job[] = await queue.getJobs(['completed'], 0, -1);
    const effects = await countIndexEffects(redis, prefix);
    const stats = second.stats();

    const maxAttempts = Math.max(0, ...completedJobs.map((j) => j.attemptsMade), ...failedJobs.map((j) => j.attemptsMade));
    const maxStarted = Math.max(0, ...completedJobs.map((j) => j.attemptsStarted ?? 0));
    const retried = completedJobs.filter((j) => j.attemptsMade > 1).length;
    const codes = [...log.failedCallsByCode].map(([c, n]) => `${c}:${n}`).join(' ');
    const stale = ['390111', '407002', '401004'].reduce((n, code) => n + (log.failedCallsByCode.get(code) ?? 0), 0);
    const phaseOf = (t: number) => (t < outageAt ? 'before' : t < errorAt ? 'stopped' : t < slowAt ? 'error' : t < recoveredAt ? 'slow' : 'recovered');
    const byPhase = (times: number[]) => {
      const n = new Map<string, number>();
      for (const t of times) n.set(phaseOf(t), (n.get(phaseOf(t)) ?? 0) + 1);
      return [...n].map(([p, k]) => `${p} ${k}`).join(', ');
    };
    const singleEntry = completedJobs.filter((j) => effects.perJob.get(j.id!) === 1).length;

    reportFault({
      fault: 'warehouse away 30 s (stopped, errors, slow)',
      accepted,
      completed: counts.completed,
      failed: counts.failed,
      duplicatedEffects: effects.duplicated,
      detail:
        `phases: stopped ${Math.round((errorAt - outageAt) / 1000)} s, error ${Math.round((slowAt - errorAt) / 1000)} s, ` +
        `slow +${SLOW_MS} ms ${Math.round((recoveredAt - slowAt) / 1000)} s (deadline ${DEADLINE_MS} ms); ` +
        `drained ${Math.round((drainedAt - recoveredAt) / 1000)} s after recovery; ` +
        `max attempts used ${maxAttempts}/${DEFAULT_ATTEMPTS} (${retried} jobs retried, max runs started ${maxStarted}); ` +
        `circuit-open deferral notices ${log.deferrals.length} (${byPhase(log.deferrals)}); ` +
        `calls ended by their deadline ${log.deadlineTimeouts.length} (${byPhase(log.deadlineTimeouts)}); warehouse aborts ${stats.aborts}; stale-session errors ${stale}; ` +
        `logins ${firstStats.logins} then ${stats.logins}; failed calls by code ${codes}`,
    });

    // Nothing failed for good; if anything did, it is visible in the failed set with its reason.
    expect(failedJobs.map((j) => ({ id: j.id, attempts: j.attemptsMade, reason: j.failedReason }))).toEqual([]);
    expect(counts).toMatchObject({ completed: JOBS, failed: 0, active: 0, waiting: 0, delayed: 0, prioritized: 0 });
    expect(maxAttempts).toBeLessThanOrEqual(DEFAULT_ATTEMPTS);
    // Exactly-once effects: every completed job wrote exactly one index log entry, and nothing else wrote any.
    expect(effects.duplicated).toBe(0);
    expect(singleEntry).toBe(JOBS);
    expect(effects.jobs).toBe(JOBS);
    expect(effects.entries).toBe(JOBS);
    // The circuit opened and jobs went back to waiting without spending attempts.
    expect(log.deferrals.length).toBeGreaterThan(0);
    expect(replica.output()).toContain('warehouse circuit open: jobs go back to waiting without spending an attempt');
    // Calls ended by their own deadline: the worker says so, and the warehouse saw the cancellations.
    expect(log.deadlineTimeouts.length).toBeGreaterThan(0);
    expect(stats.aborts).toBeGreaterThan(0);
    // The pool re-logged-in to the new warehouse process (sessions of the old one are unknown there).
    expect(stats.logins).toBeGreaterThan(0);
    expect(stats.queriesByKind.embed).toBeGreaterThan(0);
  }, 300_000);

  it('after a warehouse restart, a full pool of sessions it no longer knows is replaced without opening the circuit', async () => {
    // The pool side of the restart above, made deterministic: every pooled session predates the restart.
    const before = await startLocalWarehouse({ port: 0, loginLatencyMs: 0, queryLatencyMs: 0, deals: 50 });
    warehouses.push(before);
    const breaker = new CircuitBreaker({ threshold: 5, resetMs: 60_000 });
    const { pool, warehouse } = pooledClient(before, { max: 8, validateAfterIdleMs: 60_000 }, { retries: 1, breaker });
    try {
      await Promise.all(Array.from({ length: 8 }, (_, i) => warehouse.query('SELECT ? AS I', [i])));
      expect(pool.stats()).toMatchObject({ size: 8, created: 8 });
      await before.close();
      const after = await warehouseOn(before.port);
      warehouses.push(after);
      const rows = await Promise.all(Array.from({ length: 8 }, (_, i) => warehouse.query('SELECT ? AS I', [i])));
      expect(rows.map((r) => Number(r[0].I))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(breaker.state).toBe('closed');
      expect(pool.stats()).toMatchObject({ destroyed: 8, created: 16 });
      expect(after.stats().logins).toBe(8);
    } finally {
      await pool.close();
    }
  });
});
