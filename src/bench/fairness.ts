import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Job, type JobsOptions, Queue } from 'bullmq';
import IORedis, { type Redis } from 'ioredis';
import type { LocalWarehouseProcess } from 'local-snowflake';
import { loadLocalSnowflake } from '../app/local-snowflake';
import { startPrivateRedis } from '../app/redis-server';
import { jobOptionsFrom, loadConfig } from '../config';
import { QUEUES } from '../contracts/queues';
import { type FairnessSettings, TenantLanes } from '../fairness';
import { PooledWarehouse, snowflakeConnector, WarehousePool } from '../pool';
import { createEmbeddingProcessor } from '../workers/embedding-processor';
import { createJobLogWriter, type JobLogWriter } from '../workers/job-logs';
import { runWorker } from '../workers/run-worker';
import type { BenchContext } from './context';
import { busyFraction, cpuSeconds } from './cpu';
import { ENQUEUE_CHUNK, type ProducerPhase, type ProducerReply, TENANT_B } from './fairness-shared';
import { percentile, round } from './stats';

/** The local warehouse's round trip, as `fleet bench coalesce` simulates it. */
const RTT_MS = 100;
/** The calibration drains a fifth of A's jobs (at least 2,000, at most all) to estimate how long all of them take. */
const calibrationSize = (aJobs: number) => Math.min(aJobs, Math.max(2_000, Math.round(aJobs / 5)));

/**
 * How long `aJobs` take to drain, from a calibration drain's completion times (ms after its first enqueue): the
 * time its first quarter took (the ramp: fetching the first batches, enqueue under way) plus the rest at the
 * rate of its last three quarters.
 */
function estimatePeriodMs(aJobs: number, finishedAfterMs: number[]): number {
  const t = [...finishedAfterMs].sort((x, y) => x - y);
  const n = t.length;
  const q = Math.floor(n / 4);
  const steadyMs = t[n - 1] - t[q];
  if (q === 0 || steadyMs <= 0) return Math.round((t[n - 1] * aJobs) / n);
  return Math.round(t[q] + ((aJobs - q) * steadyMs) / (n - 1 - q));
}

/** A phase that sees no job finish for this long has stalled: the run fails with what it saw. */
const STALL_MS = 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Enqueued = Extract<ProducerReply, { type: 'enqueued' }>;

/** One producer process (fairness-producers.ts), one phase at a time over IPC. */
interface ProducerProcess {
  readonly pid: number | undefined;
  enqueue(phase: ProducerPhase): Promise<Enqueued>;
  close(): Promise<void>;
}

async function startProducerProcess(): Promise<ProducerProcess> {
  const script = path.join(__dirname, 'fairness-producers.js');
  if (!existsSync(script)) throw new Error(`fleet bench fairness runs the compiled bench (${script} is missing): build dist/ first`);
  // The same node flags as this process (bin/fleet.js gives the benchmark the embeddings Deployment's); what it
  // prints goes to stderr, so stdout keeps only the result.
  const child: ChildProcess = fork(script, [], { stdio: ['ignore', 2, 2, 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return {
    pid: child.pid,
    enqueue: (phase) =>
      new Promise((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`a producer process exited (code ${code}) during a phase`));
        child.once('exit', onExit);
        child.once('message', (reply: ProducerReply) => {
          child.off('exit', onExit);
          if (reply.type === 'error') reject(new Error(`producer process: ${reply.message}`));
          else resolve(reply);
        });
        child.send(phase);
      }),
    async close() {
      if (child.connected) child.disconnect();
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** Tenant A's and tenant B's producers, each in a process of its own (as two clients of the fleet). */
interface Producers {
  readonly pids: (number | undefined)[];
  /** Sends A's part of the phase to A's process and B's part to B's, at once; merges their replies. */
  enqueue(phase: ProducerPhase): Promise<Enqueued>;
  close(): Promise<void>;
}

async function startProducers(): Promise<Producers> {
  const [a, b] = await Promise.all([startProducerProcess(), startProducerProcess()]);
  return {
    pids: [a.pid, b.pid],
    async enqueue(phase) {
      const [ra, rb] = await Promise.all([a.enqueue({ ...phase, bJobs: 0 }), b.enqueue({ ...phase, aJobs: 0 })]);
      return { ...ra, bIds: rb.bIds, calledAt: rb.calledAt, bMaxLagMs: rb.bMaxLagMs };
    },
    async close() {
      await Promise.all([a.close(), b.close()]);
    },
  };
}

/** What every phase shares: the private Redis, the local warehouse behind the pool, the role's settings. */
interface Env {
  ctx: BenchContext;
  redisUrl: string;
  redis: () => Redis;
  producers: Producers;
  /** The private redis-server's and the local warehouse's pids, for their CPU time. */
  pids: { redis?: number; warehouse?: number };
  server: LocalWarehouseProcess;
  warehouse: PooledWarehouse;
  logs: JobLogWriter;
  jobOpts: JobsOptions;
  concurrency: number;
  batching: { maxBatchSize: number; maxWaitMs: number; targetMs?: number; maxConcurrentBatches: number };
  worker: {
    lockDurationMs: number;
    stalledIntervalMs: number;
    maxStalledCount: number;
    keepCompleted: { age: number; count: number };
    keepFailed: { age: number };
  };
}

interface PhaseSpec {
  name: 'calibrate' | 'alone' | 'fifo' | 'fair';
  aJobs: number;
  bJobs: number;
  /** B's jobs are enqueued one by one, evenly over this period, from the moment A's enqueue begins. */
  periodMs: number;
  /** Producers' and worker's fairness: `false` is plain FIFO. */
  fairness: FairnessSettings | false;
}

/** How the phase's jobs ended, counted per job id against the ids the producers returned. */
interface Completions {
  /** Jobs enqueued (ids the producers returned). */
  enqueued: number;
  /** Enqueued jobs that completed exactly once. */
  once: number;
  /** Enqueued jobs never completed. */
  missing: number;
  /** Jobs completed more than once. */
  duplicates: number;
  /** Completions of ids no producer returned. */
  unexpected: number;
  /** Failed attempts (a job that failed for good also counts in `missing`). */
  failedAttempts: number;
  /** Processor runs beyond one per job (a job run again after a lost lock). */
  extraRuns: number;
  /** Jobs still waiting, parked, running or delayed in Redis after the phase. */
  leftInQueue: number;
  /** Jobs in Redis's failed set after the phase. */
  failedInRedis: number;
  /** Fair phase: jobs still holding a slot or parked in a tenant lane once the worker has closed. */
  leftInLanes: number;
}

/** One of B's jobs: when its producer call began, its timestamp, when the processor got it, when it finished. */
interface BJob {
  calledAt?: number;
  timestamp: number;
  /** Date.now() as the processor was called. (BullMQ's processedOn is the time the worker asked for a job, which
   * can be before the job existed: the worker asks, Redis is busy with a bulk add, B's add is served first.) */
  pickedUp: number;
  finishedOn: number;
}

interface PhaseFigures {
  name: PhaseSpec['name'];
  jobs: number;
  /** finishedOn - timestamp of A's jobs (timestamp: when the producer built the job, just before sending it). */
  aLatencies: number[];
  /** A's completion times, ms after the phase's first enqueue. */
  aFinishedAfterMs: number[];
  bJobs: BJob[];
  /** A's first timestamp (its first enqueue call) to A's last finishedOn: the backlog's drain. */
  aDrainS: number;
  /** Jobs finished during A's drain (all of A's, B's finished by then) per second of it: the phase's throughput. */
  jobsPerS: number;
  /** All jobs / (last finishedOn - first timestamp), B's trickle after A's drain included. */
  wholePhaseJobsPerS: number;
  /** B's jobs enqueued before A's last job finished (the ones that met A's backlog). */
  bDuringDrain: BJob[];
  aEnqueueS: number;
  /** Date.now() when A's last enqueue call returned. */
  aEnqueuedAt: number;
  bMaxLagMs: number;
  warehouseCalls: number;
  /** CPU seconds over the phase: this process (the worker), the producer process, the Redis, the local warehouse. */
  cpuS: { worker: number; producers?: number; redis?: number; warehouse?: number };
  machineBusy: number;
  completions: Completions;
}

const latency = (b: BJob) => b.finishedOn - b.timestamp;

/**
 * One phase on a fresh queue prefix: a worker running here, and in the producer process A's jobs enqueued at
 * once (chunks of 10,000 through `producer.embed`) while B's are enqueued one at a time on schedule (open loop,
 * a producer and connection of their own); then every job waited for. Latencies and counts come from the
 * worker's `completed` events (each job's own `timestamp` and `finishedOn`); afterwards Redis is checked for
 * anything left behind, and flushed.
 */
async function runPhase(env: Env, spec: PhaseSpec): Promise<PhaseFigures> {
  const { ctx } = env;
  const prefix = `bench-fairness-${spec.name}`;
  const total = spec.aJobs + spec.bJobs;
  const workerConn = env.redis();
  const processor = createEmbeddingProcessor({ warehouse: env.warehouse, logs: env.logs, batching: env.batching });

  const runs = new Map<string, number>();
  const pickedUp = new Map<string, number>();
  const completed = new Map<string, number>();
  const aLatencies: number[] = [];
  const bJobs = new Map<string, BJob>();
  let firstTs = Number.POSITIVE_INFINITY;
  let lastFinished = 0;
  let aLastFinished = 0;
  const aFinished: number[] = [];
  let failedAttempts = 0;
  let finalFailures = 0;
  let firstFailure: string | undefined;
  let lastProgress = Date.now();

  const worker = runWorker({
    queue: QUEUES.embeddings,
    connection: workerConn,
    prefix,
    concurrency: env.concurrency,
    ...env.worker,
    processor: (job: Job) => {
      runs.set(job.id!, (runs.get(job.id!) ?? 0) + 1);
      if (job.data.tenant === TENANT_B && !pickedUp.has(job.id!)) pickedUp.set(job.id!, Date.now());
      return processor.process(job);
    },
    // As the embeddings role runs it: lanes released on the worker's command connection.
    fairness: spec.fairness === false ? false : { settings: spec.fairness, redis: workerConn },
  });
  let allDone!: () => void;
  const finished = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const settled = () => completed.size + finalFailures >= total;
  worker.on('completed', (job: Job) => {
    lastProgress = Date.now();
    const id = job.id!;
    const n = (completed.get(id) ?? 0) + 1;
    completed.set(id, n);
    if (n > 1) return;
    const end = job.finishedOn ?? Date.now();
    firstTs = Math.min(firstTs, job.timestamp);
    lastFinished = Math.max(lastFinished, end);
    if (job.data.tenant === TENANT_B) {
      bJobs.set(id, { timestamp: job.timestamp, pickedUp: pickedUp.get(id) ?? end, finishedOn: end });
    } else {
      aLatencies.push(end - job.timestamp);
      aLastFinished = Math.max(aLastFinished, end);
      aFinished.push(end);
    }
    if (settled()) allDone();
  });
  worker.on('failed', (job, err) => {
    lastProgress = Date.now();
    failedAttempts++;
    firstFailure ??= `job ${job?.id} failed: ${err.message}`;
    if (job?.finishedOn) {
      finalFailures++;
      if (settled()) allDone();
    }
  });
  worker.on('error', (err) => ctx.log(`${spec.name}: worker error: ${err.message}`));

  const queueConn = env.redis();
  try {
    await worker.waitUntilReady();
    await env.server.resetStats();
    ctx.log(`${spec.name}: ${spec.aJobs} A jobs at once, ${spec.bJobs} B jobs over ${round(spec.periodMs / 1000, 1)} s, ${spec.fairness ? 'fair' : 'FIFO'}`);

    const machineBefore = os.cpus();
    const ownBefore = process.cpuUsage();
    const producersCpu = () =>
      env.producers.pids.reduce<number | undefined>((sum, pid) => {
        const s = cpuSeconds(pid);
        return sum === undefined || s === undefined ? undefined : sum + s;
      }, 0);
    const producersBefore = producersCpu();
    const redisBefore = cpuSeconds(env.pids.redis);
    const warehouseBefore = cpuSeconds(env.pids.warehouse);
    const enqueued = await env.producers.enqueue({
      redisUrl: env.redisUrl,
      prefix,
      seed: spec.name,
      aJobs: spec.aJobs,
      bJobs: spec.bJobs,
      periodMs: spec.periodMs,
      fairness: spec.fairness,
      jobOpts: env.jobOpts,
    });

    // Every job finished, or no progress for STALL_MS.
    while (!settled() && Date.now() - lastProgress < STALL_MS) await Promise.race([finished, sleep(1_000)]);
    if (!settled()) throw new Error(`${spec.name}: stalled with ${completed.size} of ${total} jobs completed${firstFailure ? `; ${firstFailure}` : ''}`);
    const own = process.cpuUsage(ownBefore);
    const since = (before: number | undefined, pid: number | undefined) => {
      const now = cpuSeconds(pid);
      return before === undefined || now === undefined ? undefined : now - before;
    };
    const cpuS = {
      worker: (own.user + own.system) / 1e6,
      producers: producersBefore === undefined ? undefined : (producersCpu() ?? producersBefore) - producersBefore,
      redis: since(redisBefore, env.pids.redis),
      warehouse: since(warehouseBefore, env.pids.warehouse),
    };
    const machineBusy = busyFraction(machineBefore, os.cpus());
    const stats = await env.server.stats();
    await worker.close();
    await processor.close();

    // Exactly once, per id, against the ids the producers returned.
    const ids = new Set([...enqueued.aIds, ...enqueued.bIds]);
    let once = 0;
    let duplicates = 0;
    let unexpected = 0;
    for (const [id, n] of completed) {
      if (!ids.has(id)) unexpected++;
      else if (n === 1) once++;
      if (n > 1) duplicates++;
    }
    let extraRuns = 0;
    for (const n of runs.values()) extraRuns += n - 1;
    const counts = await queueCounts(queueConn, prefix);
    let leftInLanes = 0;
    if (spec.fairness !== false) {
      // The worker's last releases are sent as it closes; give them a moment, then count what is left.
      const lanes = new TenantLanes(queueConn, prefix, QUEUES.embeddings, spec.fairness);
      const deadline = Date.now() + 5_000;
      for (;;) {
        leftInLanes = (await lanes.counts()).reduce((n, c) => n + c.slotted + c.parked, 0);
        if (leftInLanes === 0 || Date.now() > deadline) break;
        await sleep(100);
      }
    }
    const completions: Completions = {
      enqueued: ids.size,
      once,
      missing: ids.size - once - duplicates,
      duplicates,
      unexpected,
      failedAttempts,
      extraRuns,
      leftInQueue: counts.left,
      failedInRedis: counts.failed,
      leftInLanes,
    };

    for (const [id, at] of enqueued.calledAt) {
      const b = bJobs.get(id);
      if (b) b.calledAt = at;
    }
    const b = [...bJobs.values()];
    const drainEnd = spec.aJobs > 0 ? aLastFinished : lastFinished;
    const bDuringDrain = b.filter((x) => x.timestamp <= drainEnd);
    const drainS = (drainEnd - firstTs) / 1000;
    const figures: PhaseFigures = {
      name: spec.name,
      jobs: total,
      aLatencies,
      aFinishedAfterMs: aFinished.map((t) => t - firstTs),
      bJobs: b,
      aDrainS: spec.aJobs > 0 ? drainS : 0,
      jobsPerS: (aLatencies.length + b.filter((x) => x.finishedOn <= drainEnd).length) / drainS,
      wholePhaseJobsPerS: total / ((lastFinished - firstTs) / 1000),
      bDuringDrain,
      aEnqueueS: enqueued.aEnqueueS,
      aEnqueuedAt: enqueued.aEnqueuedAt,
      bMaxLagMs: enqueued.bMaxLagMs,
      warehouseCalls: stats.queries,
      cpuS,
      machineBusy,
      completions,
    };
    const lat = b.map(latency);
    ctx.log(
      `${spec.name}: ${spec.aJobs > 0 ? `A drained in ${round(drainS, 1)} s, ${round(figures.jobsPerS, 0)} jobs/s; ` : ''}` +
        `B p50 ${percentile(lat, 50)} ms, p99 ${percentile(lat, 99)} ms; ${stats.queries} warehouse calls; ${once} of ${ids.size} jobs completed once`,
    );
    return figures;
  } finally {
    await worker.close(true).catch(() => undefined);
    await processor.close().catch(() => undefined);
    // A fresh prefix per phase; the keys of this one go, so the next phase starts on an empty Redis.
    await queueConn.flushdb().catch(() => undefined);
    await Promise.allSettled([queueConn.quit(), workerConn.quit()]);
  }
}

/** Jobs left in the phase's queue (waiting, parked, running, delayed) and failed ones. */
async function queueCounts(connection: Redis, prefix: string): Promise<{ left: number; failed: number }> {
  const queue = new Queue(QUEUES.embeddings, { connection, prefix });
  try {
    const c = await queue.getJobCounts('wait', 'active', 'prioritized', 'delayed', 'waiting-children', 'failed');
    return { left: c.wait + c.active + c.prioritized + c.delayed + c['waiting-children'], failed: c.failed };
  } finally {
    await queue.close();
  }
}

/**
 * `fleet bench fairness` (issue #19): tenant A enqueues 50,000 embedding jobs at once, tenant B 500 spread over
 * the same period, through the production path (`createProducer` with `tenant`, `runWorker`, the embedding
 * processor with the configured batching, the pooled warehouse at 100 ms per round trip, no cache: every text
 * distinct). The worker runs in this process, each tenant's producer in a child process of its own (as the API
 * runs apart from the workers). Phases, each on a fresh queue prefix with texts of its own:
 *
 * - `calibrate`: a fifth of A's jobs alone, FIFO; it warms the pool and the JIT, and its drain gives an estimate
 *   of A's (estimatePeriodMs) for spreading B's jobs in the next phase;
 * - `fifo`: A and B, fairness off in the producers and the worker, B over that estimate; A's drain here is the
 *   period P of the next phases;
 * - `fair`: A and B, fairness on with the configured settings (`FAIR_SLOTS`, default 64), B over P;
 * - `alone`: B's jobs alone, over P.
 *
 * Each phase with A follows a drain (the calibration, the FIFO phase): on this machine a drain's position in the
 * run moves its rate (docs/benchmarks.md, coalesce).
 *
 * Targets: B's p99 under fairness within 2x of B alone; throughput within 10 % of FIFO. `--a-jobs` and
 * `--b-jobs` (ctx.aJobs, ctx.bJobs) set the sizes: 50,000 and 500 by default, 5,000 and 100 with --quick.
 */
export async function runFairnessBench(ctx: BenchContext): Promise<Record<string, unknown>> {
  const aJobs = ctx.aJobs ?? (ctx.quick ? 5_000 : 50_000);
  const bJobs = ctx.bJobs ?? (ctx.quick ? 100 : 500);
  const config = loadConfig(process.env);
  const { concurrency, maxBatchSize, maxWaitMs, targetMs } = config.embeddings;
  const poolSize = config.pool.max;
  const fair: FairnessSettings = { ...config.fairness, enabled: true };
  const j = config.jobs;
  const producers = await startProducers();
  const redisServer = await startPrivateRedis();
  const server = await loadLocalSnowflake().startLocalWarehouseProcess({
    loginLatencyMs: 300,
    queryLatencyMs: RTT_MS,
    deals: 1_000,
    resultChunkBytes: config.localWarehouse.resultChunkBytes,
  });
  const redis = () => new IORedis(redisServer.url, { maxRetriesPerRequest: null });
  const pool = new WarehousePool({
    connector: snowflakeConnector({ account: 'local', username: 'fleet', password: 'fleet', accessUrl: server.url }),
    min: poolSize,
    max: poolSize,
  });
  const warehouse = new PooledWarehouse({ pool, role: 'bench' });
  // Job logs ("served by batch …") per batch on their own connection, as the embeddings role writes them.
  const logConnection = redis();
  const logs = createJobLogWriter(logConnection);
  const env: Env = {
    ctx,
    redisUrl: redisServer.url,
    redis,
    producers,
    pids: { redis: redisServer.process.pid, warehouse: server.pid },
    server,
    warehouse,
    logs,
    jobOpts: jobOptionsFrom(j),
    concurrency,
    batching: { maxBatchSize, maxWaitMs, targetMs, maxConcurrentBatches: poolSize },
    worker: {
      lockDurationMs: j.lockDurationMs,
      stalledIntervalMs: j.stalledIntervalMs,
      maxStalledCount: j.maxStalledCount,
      keepCompleted: { age: j.keepCompletedS, count: j.keepCompletedCount },
      keepFailed: { age: j.keepFailedS },
    },
  };
  try {
    // Warm the pool so no phase pays logins.
    await Promise.all(Array.from({ length: poolSize }, () => warehouse.query('SELECT 1 AS X')));

    const calibrateJobs = calibrationSize(aJobs);
    const calibrate = await runPhase(env, { name: 'calibrate', aJobs: calibrateJobs, bJobs: 0, periodMs: 0, fairness: false });
    const estimatedMs = estimatePeriodMs(aJobs, calibrate.aFinishedAfterMs);
    ctx.log(`A's ${aJobs} jobs should drain in about ${round(estimatedMs / 1000, 1)} s (from the calibration's ${calibrateJobs})`);
    const fifo = await runPhase(env, { name: 'fifo', aJobs, bJobs, periodMs: estimatedMs, fairness: false });
    // P: A's drain in the FIFO phase. The fair phase follows a drain as the FIFO phase did; B alone comes last.
    const periodMs = Math.round(fifo.aDrainS * 1000);
    ctx.log(`period P = ${round(periodMs / 1000, 2)} s (A's drain in the FIFO phase)`);
    const fairRun = await runPhase(env, { name: 'fair', aJobs, bJobs, periodMs, fairness: fair });
    const alone = await runPhase(env, { name: 'alone', aJobs: 0, bJobs, periodMs, fairness: false });

    const p = (xs: number[], q: number) => round(percentile(xs, q), 1);
    const bP = (f: PhaseFigures, q: number) => p(f.bJobs.map(latency), q);
    const phases = { calibrate, alone, fifo, fair: fairRun };
    const completions = Object.fromEntries(Object.entries(phases).map(([k, f]) => [k, f.completions]));
    const everyJobOnce = Object.values(phases).every(
      (f) =>
        f.completions.enqueued === f.jobs &&
        f.completions.once === f.jobs &&
        f.completions.missing === 0 &&
        f.completions.duplicates === 0 &&
        f.completions.unexpected === 0 &&
        f.completions.leftInQueue === 0 &&
        f.completions.failedInRedis === 0 &&
        f.completions.leftInLanes === 0,
    );
    const summary = (jobs: BJob[]) => {
      const lat = jobs.map(latency);
      return { jobs: lat.length, p50_ms: p(lat, 50), p99_ms: p(lat, 99) };
    };
    // B's latency in two parts: waiting in Redis (timestamp -> the processor has it) and in the worker (its batch).
    const parts = (f: PhaseFigures) => {
      const queued = f.bJobs.map((b) => b.pickedUp - b.timestamp);
      const inWorker = f.bJobs.map((b) => b.finishedOn - b.pickedUp);
      return { queued_p50_ms: p(queued, 50), queued_p99_ms: p(queued, 99), in_worker_p50_ms: p(inWorker, 50), in_worker_p99_ms: p(inWorker, 99) };
    };
    // B's jobs enqueued while A's enqueue calls ran (10,000-job bulk adds: Redis runs each as one transaction) and after.
    const byEnqueue = (f: PhaseFigures) => ({
      while_a_enqueues: summary(f.bJobs.filter((b) => b.timestamp <= f.aEnqueuedAt)),
      after: summary(f.bJobs.filter((b) => b.timestamp > f.aEnqueuedAt)),
    });
    const bP99Fair = bP(fairRun, 99);
    const bP99Alone = bP(alone, 99);
    const result = {
      bench: 'fairness',
      a_jobs: aJobs,
      b_jobs: bJobs,
      // B's jobs are spread over P in the fair and alone phases, over the calibration's estimate of it in FIFO.
      period_ms: periodMs,
      period_fifo_ms: estimatedMs,
      calibrate_jobs: calibrateJobs,
      // B's latency: finishedOn - timestamp (the job's timestamp is taken as its producer builds it, after admission).
      b_p50_ms_alone: bP(alone, 50),
      b_p99_ms_alone: bP99Alone,
      b_p50_ms_fifo: bP(fifo, 50),
      b_p99_ms_fifo: bP(fifo, 99),
      b_p50_ms_fair: bP(fairRun, 50),
      b_p99_ms_fair: bP99Fair,
      // Only B's jobs enqueued while A's backlog was draining (all of them when P matches A's drain).
      b_during_a_drain: { fifo: summary(fifo.bDuringDrain), fair: summary(fairRun.bDuringDrain) },
      b_by_a_enqueue: { fifo: byEnqueue(fifo), fair: byEnqueue(fairRun) },
      b_parts: { alone: parts(alone), fifo: parts(fifo), fair: parts(fairRun) },
      // B from the start of its producer.embed call (adds the admission script in the fair phase).
      b_call_p99_ms: {
        alone: p(callLatencies(alone), 99),
        fifo: p(callLatencies(fifo), 99),
        fair: p(callLatencies(fairRun), 99),
      },
      a_p50_ms_fifo: p(fifo.aLatencies, 50),
      a_p50_ms_fair: p(fairRun.aLatencies, 50),
      a_p99_ms_fifo: p(fifo.aLatencies, 99),
      a_p99_ms_fair: p(fairRun.aLatencies, 99),
      // Throughput: jobs finished during A's drain per second of it (A's first enqueue to A's last completion).
      jobs_per_s_fifo: round(fifo.jobsPerS, 0),
      jobs_per_s_fair: round(fairRun.jobsPerS, 0),
      jobs_per_s_calibrate: round(calibrate.jobsPerS, 0),
      // All jobs over the whole phase: B's schedule (P) bounds it from below, whatever A's drain took.
      jobs_per_s_whole_phase: { fifo: round(fifo.wholePhaseJobsPerS, 0), fair: round(fairRun.wholePhaseJobsPerS, 0) },
      a_drain_s: { calibrate: round(calibrate.aDrainS, 2), fifo: round(fifo.aDrainS, 2), fair: round(fairRun.aDrainS, 2) },
      a_enqueue_s: { calibrate: round(calibrate.aEnqueueS, 2), fifo: round(fifo.aEnqueueS, 2), fair: round(fairRun.aEnqueueS, 2) },
      b_max_enqueue_lag_ms: { alone: round(alone.bMaxLagMs, 0), fifo: round(fifo.bMaxLagMs, 0), fair: round(fairRun.bMaxLagMs, 0) },
      warehouse_calls_per_job: {
        alone: round(alone.warehouseCalls / alone.jobs, 4),
        fifo: round(fifo.warehouseCalls / fifo.jobs, 4),
        fair: round(fairRun.warehouseCalls / fairRun.jobs, 4),
      },
      // CPU per job of each process over the phase: less sensitive to other work on the machine than the rates.
      cpu_us_per_job: { fifo: cpuPerJob(fifo), fair: cpuPerJob(fairRun) },
      machine_cpu_busy: { fifo: round(fifo.machineBusy, 2), fair: round(fairRun.machineBusy, 2) },
      load_avg_1m: round(os.loadavg()[0], 1),
      b_p99_fair_over_alone: round(bP99Fair / bP99Alone, 2),
      throughput_fair_over_fifo: round(fairRun.jobsPerS / fifo.jobsPerS, 3),
      // The issue's targets, as measured in this run.
      b_p99_target_met: bP99Fair <= 2 * bP99Alone,
      throughput_target_met: fairRun.jobsPerS >= 0.9 * fifo.jobsPerS,
      every_job_completed_once: everyJobOnce,
      completions,
      settings: {
        fair_slots: fair.slots,
        tenant_max_queued: fair.defaults.maxQueued,
        worker_concurrency: concurrency,
        max_batch_size: maxBatchSize,
        max_wait_ms: maxWaitMs,
        target_ms: targetMs ?? null,
        pool_size: poolSize,
        warehouse_rtt_ms: RTT_MS,
        enqueue_chunk: ENQUEUE_CHUNK,
        cache: 'off',
      },
    };
    ctx.log(table(result));
    return result;
  } finally {
    await logs.close().catch(() => undefined);
    await logConnection.quit().catch(() => undefined);
    await producers.close();
    await pool.close();
    await server.close();
    await redisServer.stop();
  }
}

const callLatencies = (f: PhaseFigures) => f.bJobs.filter((b) => b.calledAt !== undefined).map((b) => b.finishedOn - b.calledAt!);
const perJob = (cpuS: number | undefined, jobs: number) => (cpuS === undefined ? null : round((cpuS * 1e6) / jobs, 0));
const cpuPerJob = (f: PhaseFigures) => ({
  worker: perJob(f.cpuS.worker, f.jobs),
  producers: perJob(f.cpuS.producers, f.jobs),
  redis: perJob(f.cpuS.redis, f.jobs),
  warehouse: perJob(f.cpuS.warehouse, f.jobs),
});

/** The human summary (to stderr with the progress lines; stdout keeps the JSON). */
function table(r: {
  b_p50_ms_alone: number;
  b_p99_ms_alone: number;
  b_p50_ms_fifo: number;
  b_p99_ms_fifo: number;
  b_p50_ms_fair: number;
  b_p99_ms_fair: number;
  a_p50_ms_fifo: number;
  a_p50_ms_fair: number;
  jobs_per_s_fifo: number;
  jobs_per_s_fair: number;
  warehouse_calls_per_job: { alone: number; fifo: number; fair: number };
  b_p99_target_met: boolean;
  throughput_target_met: boolean;
  every_job_completed_once: boolean;
}): string {
  const rows = [
    ['phase', 'B p50 ms', 'B p99 ms', 'A p50 ms', 'jobs/s', 'statements/job'],
    ['alone', r.b_p50_ms_alone, r.b_p99_ms_alone, '-', '-', r.warehouse_calls_per_job.alone],
    ['fifo', r.b_p50_ms_fifo, r.b_p99_ms_fifo, r.a_p50_ms_fifo, r.jobs_per_s_fifo, r.warehouse_calls_per_job.fifo],
    ['fair', r.b_p50_ms_fair, r.b_p99_ms_fair, r.a_p50_ms_fair, r.jobs_per_s_fair, r.warehouse_calls_per_job.fair],
  ].map((row) => row.map(String));
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  return [
    ...rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')),
    `B p99 fair <= 2x alone: ${mark(r.b_p99_target_met)}; fair jobs/s >= 90% of FIFO: ${mark(r.throughput_target_met)}; every job completed once: ${r.every_job_completed_once ? 'yes' : 'NO'}`,
  ].join('\n');
}
