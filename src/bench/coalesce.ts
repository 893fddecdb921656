import os from 'node:os';
import { type Job, type JobsOptions, Queue, type Worker } from 'bullmq';
import IORedis, { type Redis } from 'ioredis';
import type { LocalWarehouseProcess } from 'local-snowflake';
import { loadLocalSnowflake } from '../app/local-snowflake';
import { startPrivateRedis } from '../app/redis-server';
import { jobOptionsFrom, loadConfig } from '../config';
import { JOB_NAMES, QUEUES } from '../contracts/queues';
import { CostMeter, creditsOf, PooledWarehouse, snowflakeConnector, WarehousePool } from '../pool';
import { embedTexts } from '../warehouse/queries/embed-texts';
import { createEmbeddingProcessor } from '../workers/embedding-processor';
import { createJobLogWriter } from '../workers/job-logs';
import { runWorker } from '../workers/run-worker';
import type { BenchContext } from './context';
import { busyFraction, cpuSeconds } from './cpu';
import { percentile, round } from './stats';

interface RunFigures {
  jobs: number;
  /** Commands the Redis served while the worker drained the queue (INFO commandstats), all kinds. */
  redisCommands: number;
  seconds: number;
  jobsPerS: number;
  latencies: number[];
  warehouseCalls: number;
  /** Results the local warehouse returned in chunk files (as Snowflake does above ~100 KB). */
  chunkedResults: number;
  /** CPU seconds each process used while the queue drained (undefined where /proc is missing). */
  cpuS: { worker: number; redis?: number; warehouse?: number };
  machineBusy: number;
}

/** The processes whose CPU a run reports: this one (the worker), the private Redis and the local warehouse. */
interface Pids {
  redis?: number;
  warehouse?: number;
}

const WORDS =
  'renewal pricing churn risk champion budget procurement legal security review expansion pilot onboarding integration roadmap discount competitor timeline executive sponsor quarter forecast pipeline'.split(
    ' ',
  );

/** Distinct, realistic-looking texts (each job its own text, so nothing is de-duplicated away). */
function texts(n: number, seed: string): string[] {
  return Array.from({ length: n }, (_, i) => {
    const w = (k: number) => WORDS[(i * 7 + k * 13 + k * k) % WORDS.length];
    return `${seed} note ${i}: customer raised ${w(1)} and ${w(2)} concerns; next step ${w(3)} ${w(4)} with the ${w(5)} team`;
  });
}

async function enqueue(queue: Queue, items: string[], opts: JobsOptions): Promise<void> {
  for (let i = 0; i < items.length; i += 1000) {
    await queue.addBulk(items.slice(i, i + 1000).map((text) => ({ name: JOB_NAMES.embed, data: { text, model: 'e5-base-v2' }, opts })));
  }
}

/** Commands served so far by the Redis behind `redis` (every kind, from INFO commandstats). */
async function redisCommands(redis: Redis): Promise<number> {
  let calls = 0;
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

const perJob = (cpuS: number | undefined, jobs: number) => (cpuS === undefined ? null : round((cpuS * 1e6) / jobs, 0));

/** Pre-fills the queue, then starts a worker and measures how fast it drains. */
async function drain(
  ctx: BenchContext,
  label: string,
  redis: () => Redis,
  prefix: string,
  items: string[],
  jobOpts: JobsOptions,
  server: LocalWarehouseProcess,
  pids: Pids,
  start: (connection: Redis, prefix: string) => Worker,
): Promise<RunFigures> {
  const conn = redis();
  const queue = new Queue(QUEUES.embeddings, { connection: conn, prefix });
  await enqueue(queue, items, jobOpts);
  ctx.log(`${label}: ${items.length} jobs enqueued; draining`);
  await server.resetStats();
  const commandsBefore = await redisCommands(conn);
  const latencies: number[] = [];
  let done = 0;
  const workerConn = redis();
  const machineBefore = os.cpus();
  const ownBefore = process.cpuUsage();
  const redisBefore = cpuSeconds(pids.redis);
  const warehouseBefore = cpuSeconds(pids.warehouse);
  const t = performance.now();
  const worker = start(workerConn, prefix);
  await new Promise<void>((resolve, reject) => {
    worker.on('completed', (job: Job) => {
      latencies.push((job.finishedOn ?? Date.now()) - (job.processedOn ?? job.timestamp));
      if (++done === items.length) resolve();
    });
    worker.on('failed', (job, err) => reject(new Error(`${label}: job ${job?.id} failed: ${err.message}`)));
  });
  const seconds = (performance.now() - t) / 1000;
  const own = process.cpuUsage(ownBefore);
  const since = (before: number | undefined, pid: number | undefined) => {
    const now = cpuSeconds(pid);
    return before === undefined || now === undefined ? undefined : now - before;
  };
  const cpuS = { worker: (own.user + own.system) / 1e6, redis: since(redisBefore, pids.redis), warehouse: since(warehouseBefore, pids.warehouse) };
  const machineBusy = busyFraction(machineBefore, os.cpus());
  const stats = await server.stats();
  const commands = (await redisCommands(conn)) - commandsBefore;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await Promise.all([conn.quit(), workerConn.quit()]);
  const figures = {
    jobs: items.length,
    redisCommands: commands,
    seconds,
    jobsPerS: items.length / seconds,
    latencies,
    warehouseCalls: stats.queries,
    chunkedResults: stats.chunkedResults,
    cpuS,
    machineBusy,
  };
  ctx.log(`${label}: ${round(figures.jobsPerS, 0)} jobs/s, ${figures.warehouseCalls} warehouse calls`);
  return figures;
}

/**
 * `fleet bench coalesce`: 20,000 embedding jobs, warehouse round trip 100 ms, pool of 8, in one run:
 * (a) a BullMQ no-op worker, the ceiling of this machine; (b) the naive worker, one warehouse call per
 * job through the same pool (cut to fewer jobs and extrapolated: at 100 ms per call it would take
 * minutes); (c) the coalescing worker. The local warehouse runs in its own process, as a warehouse does.
 *
 * Jobs carry the attempts, backoff and retention the fleet's API and CLI give them (`JOB_*`), and the
 * worker runs with the configured `EMBED_WORKER_CONCURRENCY`, `EMBED_BATCH_MAX_SIZE` and
 * `EMBED_BATCH_MAX_WAIT_MS` (defaults otherwise), so an operator can measure a setting before rolling it out.
 */
export async function runCoalesceBench(ctx: BenchContext): Promise<Record<string, unknown>> {
  const jobs = ctx.quick ? 2_000 : 20_000;
  const naiveJobs = ctx.quick ? 200 : 800;
  const rttMs = 100;
  const poolSize = 8;
  const config = loadConfig(process.env);
  const { concurrency, maxBatchSize, maxWaitMs } = config.embeddings;
  const jobOpts = jobOptionsFrom(config.jobs);
  const redisServer = await startPrivateRedis();
  const server = await loadLocalSnowflake().startLocalWarehouseProcess({
    loginLatencyMs: 300,
    queryLatencyMs: rttMs,
    deals: 1_000,
    resultChunkBytes: config.localWarehouse.resultChunkBytes,
  });
  const pids: Pids = { redis: redisServer.process.pid, warehouse: server.pid };
  const redis = () => new IORedis(redisServer.url, { maxRetriesPerRequest: null });
  const pool = new WarehousePool({
    connector: snowflakeConnector({ account: 'local', username: 'fleet', password: 'fleet', accessUrl: server.url }),
    min: poolSize,
    max: poolSize,
  });
  // Credits as the fleet counts them in production (src/pool/cost.ts), at the configured prices.
  const cost = new CostMeter({ warehouseCreditsPerHour: config.cost.warehouseCreditsPerHour, cortexCreditsPerMTokens: config.cost.cortexCreditsPerMTokens });
  const warehouse = new PooledWarehouse({ pool, cost, role: 'bench' });
  const creditsSoFar = () => [...cost.totals().values()].reduce((sum, t) => sum + creditsOf(t), 0);
  const cortexSoFar = () => [...cost.totals().values()].reduce((sum, t) => sum + t.cortexCredits, 0);
  const creditsPer1k = async (jobs: number, run: () => Promise<RunFigures>) => {
    const [c0, x0] = [creditsSoFar(), cortexSoFar()];
    const figures = await run();
    return { figures, per1k: (1000 * (creditsSoFar() - c0)) / jobs, cortexPer1k: (1000 * (cortexSoFar() - x0)) / jobs };
  };
  try {
    // Warm the pool so no run pays logins.
    await Promise.all(Array.from({ length: poolSize }, () => warehouse.query('SELECT 1 AS X')));

    const noop = await drain(ctx, 'no-op', redis, 'bench-noop', texts(jobs, 'noop'), jobOpts, server, pids, (connection, prefix) =>
      runWorker({ queue: QUEUES.embeddings, connection, prefix, concurrency, processor: async () => ({}) }),
    );

    const naiveRun = await creditsPer1k(naiveJobs, () =>
      drain(ctx, 'naive', redis, 'bench-naive', texts(naiveJobs, 'naive'), jobOpts, server, pids, (connection, prefix) =>
        runWorker({
          queue: QUEUES.embeddings,
          connection,
          prefix,
          concurrency: poolSize,
          processor: async (job) => {
            const [v] = await embedTexts(warehouse, [job.data.text], job.data.model, { tag: { queue: QUEUES.embeddings, jobs: 1 } });
            return { dims: v.length };
          },
        }),
      ),
    );
    const naive = naiveRun.figures;

    // As the embeddings role runs it: job logs ("served by batch …") written per batch on their own connection.
    const logConnection = redis();
    const logs = createJobLogWriter(logConnection);
    const processor = createEmbeddingProcessor({ warehouse, logs, batching: { maxBatchSize, maxWaitMs, maxConcurrentBatches: poolSize } });
    const coalescedRun = await creditsPer1k(jobs, () =>
      drain(ctx, 'coalesced', redis, 'bench-coalesced', texts(jobs, 'coalesced'), jobOpts, server, pids, (connection, prefix) =>
        runWorker({ queue: QUEUES.embeddings, connection, prefix, concurrency, processor: processor.process }),
      ),
    );
    const coalesced = coalescedRun.figures;
    await processor.close();
    await logs.close();
    await logConnection.quit();

    return {
      bench: 'coalesce',
      jobs,
      warehouse_rtt_ms: rttMs,
      pool_size: poolSize,
      worker_concurrency: concurrency,
      max_batch_size: maxBatchSize,
      max_wait_ms: maxWaitMs,
      noop_jobs_per_s: round(noop.jobsPerS, 0),
      naive_jobs_per_s: round(naive.jobsPerS, 1),
      naive_jobs_measured: naive.jobs,
      naive_extrapolated_s_for_all_jobs: round(jobs / naive.jobsPerS, 0),
      coalesced_jobs_per_s: round(coalesced.jobsPerS, 0),
      speedup_vs_naive: round(coalesced.jobsPerS / naive.jobsPerS, 1),
      fraction_of_noop: round(coalesced.jobsPerS / noop.jobsPerS, 2),
      warehouse_calls: coalesced.warehouseCalls,
      warehouse_calls_per_job: round(coalesced.warehouseCalls / jobs, 4),
      // Counted at the server, so including the commands inside BullMQ's Lua scripts (about 28 per job for a no-op worker).
      redis_commands_per_job: round(coalesced.redisCommands / jobs, 2),
      noop_redis_commands_per_job: round(noop.redisCommands / jobs, 2),
      naive_warehouse_calls_per_job: round(naive.warehouseCalls / naive.jobs, 2),
      p50_job_latency_ms: round(percentile(coalesced.latencies, 50), 1),
      p99_job_latency_ms: round(percentile(coalesced.latencies, 99), 1),
      naive_p50_job_latency_ms: round(percentile(naive.latencies, 50), 1),
      // CPU per job of each process during the coalesced phase: the worker's is the fleet's own cost; the local
      // warehouse's is a simulator's, which a remote Snowflake would not take from this machine.
      worker_cpu_us_per_job: perJob(coalesced.cpuS.worker, jobs),
      redis_cpu_us_per_job: perJob(coalesced.cpuS.redis, jobs),
      local_warehouse_cpu_us_per_job: perJob(coalesced.cpuS.warehouse, jobs),
      machine_cpu_busy: round(coalesced.machineBusy, 2),
      noop_worker_cpu_us_per_job: perJob(noop.cpuS.worker, jobs),
      // Snowflake credits per 1,000 jobs at the configured prices (warehouse: the share of busy time; Cortex: input tokens).
      credits_per_1k_jobs: { naive: round(naiveRun.per1k, 7), coalesced: round(coalescedRun.per1k, 7) },
      cortex_credits_per_1k_jobs: { naive: round(naiveRun.cortexPer1k, 7), coalesced: round(coalescedRun.cortexPer1k, 7) },
      result_chunk_bytes: Number.isFinite(config.localWarehouse.resultChunkBytes) ? config.localWarehouse.resultChunkBytes : 'off',
      chunked_results: coalescedRun.figures.chunkedResults,
      warehouse_size: config.cost.warehouseSize,
      warehouse_credits_per_hour: config.cost.warehouseCreditsPerHour,
      latency_note: 'processedOn -> finishedOn per job, with the queue pre-filled (time in the worker, not time waiting in the backlog)',
    };
  } finally {
    await pool.close();
    await server.close();
    await redisServer.stop();
  }
}
