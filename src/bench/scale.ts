import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import IORedis, { Cluster } from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { loadLocalSnowflake } from '../app/local-snowflake';
import { type PrivateRedis, startPrivateRedis } from '../app/redis-server';
import { EMBEDDINGS_NODE_OPTIONS } from '../config/node-options';
import { QUEUES } from '../contracts/queues';
import { clusterSlot, shardPrefix } from '../contracts/shards';
import { createProducer } from '../producers';
import type { BenchContext } from './context';
import { busyFraction, cpuSeconds } from './cpu';
import { type PrivateCluster, startPrivateCluster } from './private-cluster';
import { round } from './stats';
import { benchTexts } from './texts';

/** The `fleet` launcher: replicas run exactly as the image runs them (dist/ must be built). */
const CLI = path.join(__dirname, '..', '..', 'bin', 'fleet.js');

interface Replica {
  child: ChildProcess;
  exited: Promise<void>;
  output: () => string;
}

function startReplica(env: Record<string, string>): Replica {
  const child = spawn(process.execPath, [CLI, 'worker', '--role', 'embeddings'], {
    // HEALTH_PORT 0: several replicas share this machine, so each health/metrics server takes a free port.
    // NODE_OPTIONS as the embeddings Deployment sets it (ops/k8s/base/embeddings.yaml), unless the caller set one.
    env: { ...process.env, LOG_LEVEL: 'warn', HEALTH_PORT: '0', NODE_OPTIONS: process.env.NODE_OPTIONS || EMBEDDINGS_NODE_OPTIONS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited, output: () => out };
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, replicas: Replica[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    const dead = replicas.find((r) => r.child.exitCode !== null);
    if (dead) throw new Error(`a worker replica exited (code ${dead.child.exitCode}) while waiting for ${what}:\n${dead.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

interface RoundFigures {
  workers: number;
  seconds: number;
  jobsPerS: number;
  warehouseCalls: number;
  meanBatch: number;
  machineBusy: number;
  workerCpuS: number;
  warehouseCpuS: number;
  redisCpuS: number;
  loadAvg: number;
}

/**
 * One round: the queue is paused and pre-filled, `workers` replicas start and warm their pools (every
 * session logged in), then the queue is resumed and timed until every job has completed. Startup is not
 * measured: a replica's start (loading modules, logging in) is paid once per pod, not per job.
 */
async function round1(ctx: BenchContext, redis: PrivateRedis, server: LocalWarehouse, workers: number, jobs: number, poolSize: number): Promise<RoundFigures> {
  const redisUrl = redis.url;
  const prefix = `bench-scale-${workers}`;
  const connection = new IORedis(redisUrl, { maxRetriesPerRequest: null });
  const producer = createProducer({ connection, prefix });
  const queue = producer.queue('embeddings');
  const replicas: Replica[] = [];
  try {
    await queue.pause();
    const items = benchTexts(jobs, `w${workers}`);
    for (let i = 0; i < items.length; i += 1000) await producer.embed(items.slice(i, i + 1000));
    ctx.log(`${workers} worker(s): ${jobs} jobs enqueued (queue paused); starting replicas`);
    const loginsBefore = server.stats().logins;
    for (let i = 0; i < workers; i++) {
      replicas.push(
        startReplica({
          REDIS_URL: redisUrl,
          FLEET_QUEUE_PREFIX: prefix,
          SNOWFLAKE_ACCESS_URL: server.url,
          POOL_MIN: String(poolSize),
          POOL_MAX: String(poolSize),
        }),
      );
    }
    await waitFor(`${workers * poolSize} warehouse sessions`, () => server.stats().logins - loginsBefore >= workers * poolSize, 120_000, replicas);
    await waitFor(`${workers} workers registered`, async () => (await queue.getWorkersCount()) >= workers, 60_000, replicas);

    server.resetStats();
    const cpuBefore = os.cpus();
    const workerCpuBefore = replicas.map((r) => cpuSeconds(r.child.pid) ?? 0);
    const ownCpuBefore = process.cpuUsage();
    const redisCpuBefore = cpuSeconds(redis.process.pid) ?? 0;
    const t = performance.now();
    await queue.resume();
    await waitFor(
      `${jobs} jobs completed`,
      async () => {
        const c = await queue.getJobCounts('completed', 'failed');
        if (c.failed > 0) throw new Error(`${c.failed} jobs failed`);
        return c.completed >= jobs;
      },
      15 * 60_000,
      replicas,
    );
    const seconds = (performance.now() - t) / 1000;
    const own = process.cpuUsage(ownCpuBefore);
    const workerCpuS = replicas.reduce((sum, r, i) => sum + ((cpuSeconds(r.child.pid) ?? 0) - workerCpuBefore[i]), 0);
    const machineBusy = busyFraction(cpuBefore, os.cpus());
    const redisCpuS = (cpuSeconds(redis.process.pid) ?? 0) - redisCpuBefore;
    const stats = server.stats();
    const figures: RoundFigures = {
      workers,
      seconds,
      jobsPerS: jobs / seconds,
      warehouseCalls: stats.queries,
      meanBatch: stats.queriesByKind.embed > 0 ? stats.embeddedTexts / stats.queriesByKind.embed : 0,
      machineBusy,
      workerCpuS,
      warehouseCpuS: (own.user + own.system) / 1e6,
      redisCpuS,
      loadAvg: os.loadavg()[0],
    };
    ctx.log(
      `${workers} worker(s): ${round(figures.jobsPerS, 0)} jobs/s, ${figures.warehouseCalls} warehouse calls (mean batch ${round(figures.meanBatch, 0)}), machine ${round(machineBusy * 100, 0)}% busy`,
    );
    return figures;
  } finally {
    for (const r of replicas) r.child.kill('SIGTERM');
    await Promise.all(replicas.map((r) => r.exited));
    await queue.obliterate({ force: true }).catch(() => undefined);
    await producer.close();
    await connection.quit();
  }
}

/** What one sharded round measured on each master of the private cluster. */
interface NodeFigures {
  port: number;
  /** The shards of the embeddings queue whose hash tag this master serves. */
  shards: number[];
  commands: number;
  cpuS: number;
}

/** Commands a Redis node has processed since it started (INFO stats). */
async function commandsProcessed(port: number): Promise<number> {
  const c = new IORedis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await c.connect();
    return Number(/total_commands_processed:(\d+)/.exec(await c.info('stats'))?.[1] ?? 0);
  } finally {
    c.disconnect();
  }
}

/**
 * One round on the private cluster: the embeddings queue in `shards` shards (FLEET_QUEUE_SHARDS), pre-filled
 * while paused, drained by `workers` replicas (`fleet worker --role embeddings` on REDIS_CLUSTER_NODES, each
 * consuming every shard); per master, the commands it processed and its CPU during the drain.
 */
async function clusterRound(
  ctx: BenchContext,
  cluster: PrivateCluster,
  server: LocalWarehouse,
  shards: number,
  workers: number,
  jobs: number,
  poolSize: number,
): Promise<{ jobsPerS: number; seconds: number; warehouseCalls: number; nodes: NodeFigures[]; loadAvg: number }> {
  const prefix = `{bench-shards-${shards}}`;
  const connection = new Cluster(
    cluster.masters.map((m) => ({ host: '127.0.0.1', port: m.redis.port })),
    { redisOptions: { maxRetriesPerRequest: null } },
  );
  const producer = createProducer({ connection, prefix, shards: { embeddings: shards }, fairness: false });
  const queues = producer.shardQueues(QUEUES.embeddings);
  const replicas: Replica[] = [];
  try {
    await Promise.all(queues.map((q) => q.pause()));
    const items = benchTexts(jobs, `s${shards}`);
    for (let i = 0; i < items.length; i += 1000) await producer.embed(items.slice(i, i + 1000));
    const spread = await Promise.all(queues.map((q) => q.getJobCountByTypes('waiting', 'prioritized')));
    ctx.log(`${shards} shard(s): ${jobs} jobs enqueued (${spread.join(' / ')} per shard, paused); starting ${workers} replica(s)`);
    const loginsBefore = server.stats().logins;
    for (let i = 0; i < workers; i++) {
      replicas.push(
        startReplica({
          REDIS_CLUSTER_NODES: cluster.seeds,
          FLEET_QUEUE_PREFIX: prefix,
          FLEET_QUEUE_SHARDS: `embeddings=${shards}`,
          FAIRNESS_ENABLED: 'false',
          SNOWFLAKE_ACCESS_URL: server.url,
          POOL_MIN: String(poolSize),
          POOL_MAX: String(poolSize),
        }),
      );
    }
    await waitFor(`${workers * poolSize} warehouse sessions`, () => server.stats().logins - loginsBefore >= workers * poolSize, 120_000, replicas);
    await waitFor(
      `${workers} workers on each of ${shards} shards`,
      async () => (await Promise.all(queues.map((q) => q.getWorkersCount()))).every((n) => n >= workers),
      60_000,
      replicas,
    );
    server.resetStats();
    const shardOwners = queues.map((_, k) => cluster.masterOf(clusterSlot(shardPrefix(prefix, QUEUES.embeddings, k))).redis.port);
    const before = await Promise.all(
      cluster.masters.map(async (m) => ({ commands: await commandsProcessed(m.redis.port), cpu: cpuSeconds(m.redis.process.pid) ?? 0 })),
    );
    const t = performance.now();
    await Promise.all(queues.map((q) => q.resume()));
    await waitFor(
      `${jobs} jobs completed`,
      async () => {
        const counts = await Promise.all(queues.map((q) => q.getJobCounts('completed', 'failed')));
        const failed = counts.reduce((n, c) => n + c.failed, 0);
        if (failed > 0) throw new Error(`${failed} jobs failed`);
        return counts.reduce((n, c) => n + c.completed, 0) >= jobs;
      },
      15 * 60_000,
      replicas,
    );
    const seconds = (performance.now() - t) / 1000;
    const nodes = await Promise.all(
      cluster.masters.map(async (m, i) => ({
        port: m.redis.port,
        shards: shardOwners.flatMap((port, k) => (port === m.redis.port ? [k] : [])),
        commands: (await commandsProcessed(m.redis.port)) - before[i].commands,
        cpuS: (cpuSeconds(m.redis.process.pid) ?? 0) - before[i].cpu,
      })),
    );
    const figures = { jobsPerS: jobs / seconds, seconds, warehouseCalls: server.stats().queries, nodes, loadAvg: os.loadavg()[0] };
    ctx.log(
      `${shards} shard(s): ${round(figures.jobsPerS, 0)} jobs/s; commands per master ${nodes.map((n) => `${n.port} [shards ${n.shards.join(',') || '-'}] ${n.commands}`).join(', ')}`,
    );
    return figures;
  } finally {
    for (const r of replicas) r.child.kill('SIGTERM');
    await Promise.all(replicas.map((r) => r.exited));
    await Promise.all(queues.map((q) => q.obliterate({ force: true }).catch(() => undefined)));
    await producer.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}

/**
 * `fleet bench scale --shards 1,3`: the same workload on a private Redis Cluster of 3 masters, the embeddings
 * queue in each shard count in turn, drained by 2 replicas. Reports per shard count the jobs/s and, per master,
 * the share of the commands and the Redis CPU per job it carried: with one shard one master carries the queue,
 * with N each carries about 1/N. On 2 cores the absolute jobs/s are bounded by the machine; the per-master split
 * is what lets a real cluster scale.
 */
async function runShardedScaleBench(ctx: BenchContext, shardCounts: number[]): Promise<Record<string, unknown>> {
  const jobs = ctx.quick ? 2_000 : 20_000;
  const workers = 2;
  const poolSize = 8;
  const rttMs = 100;
  const cluster = await startPrivateCluster(3);
  const server = await loadLocalSnowflake().startLocalWarehouse({ port: 0, loginLatencyMs: 300, queryLatencyMs: rttMs, deals: 1_000 });
  try {
    const rounds = [];
    for (const n of shardCounts) rounds.push({ shards: n, ...(await clusterRound(ctx, cluster, server, n, workers, jobs, poolSize)) });
    return {
      bench: 'scale',
      mode: 'sharded',
      jobs,
      workers,
      warehouse_rtt_ms: rttMs,
      pool_size_per_worker: poolSize,
      cluster_masters: cluster.masters.length,
      shards: shardCounts,
      jobs_per_s: rounds.map((r) => round(r.jobsPerS, 0)),
      seconds: rounds.map((r) => round(r.seconds, 2)),
      warehouse_calls_per_job: rounds.map((r) => round(r.warehouseCalls / jobs, 4)),
      // Per round, per master (in the same order each time): the shards it holds, its share of the cluster's
      // commands, commands per job and Redis CPU per job.
      per_master: rounds.map((r) => {
        const total = r.nodes.reduce((n, x) => n + x.commands, 0);
        return r.nodes.map((x) => ({
          port: x.port,
          shards: x.shards,
          command_share: round(total ? x.commands / total : 0, 3),
          commands_per_job: round(x.commands / jobs, 2),
          redis_cpu_us_per_job: round((x.cpuS / jobs) * 1e6, 1),
        }));
      }),
      busiest_master_command_share: rounds.map((r) => {
        const total = r.nodes.reduce((n, x) => n + x.commands, 0);
        return round(total ? Math.max(...r.nodes.map((x) => x.commands)) / total : 0, 3);
      }),
      redis_cpu_us_per_job_total: rounds.map((r) => round((r.nodes.reduce((n, x) => n + x.cpuS, 0) / jobs) * 1e6, 1)),
      load_average_1m: rounds.map((r) => round(r.loadAvg, 1)),
      cpus: os.cpus().length,
      note: 'One master carries the queue with 1 shard; with N shards on N masters each carries ~1/N of the queue commands (the {fleet} master keeps the index stream and the cache). On 2 shared cores the jobs/s are bounded by the machine, not by Redis.',
    };
  } finally {
    await server.close();
    await cluster.stop();
  }
}

/**
 * `fleet bench scale`: the coalesced embedding workload (20,000 jobs; quick: 2,000) drained by 1, 2 and 4
 * worker replicas - `fleet worker --role embeddings` child processes, as Kubernetes would run them - against
 * one private redis-server and one local warehouse in this process (round trip 100 ms). Reports jobs/s and
 * warehouse calls per job per replica count, and how busy the machine was: on a 2-core machine the replicas,
 * Redis and the local warehouse (which computes the stand-in embeddings on this process's CPU) share two
 * cores, so the figures show where one machine stops scaling, not what a cluster would do.
 */
export async function runScaleBench(ctx: BenchContext): Promise<Record<string, unknown>> {
  if (ctx.shards) return runShardedScaleBench(ctx, ctx.shards);
  const jobs = ctx.quick ? 2_000 : 20_000;
  const workerCounts = [1, 2, 4];
  const rttMs = 100;
  const poolSize = 8;
  const redis = await startPrivateRedis();
  const server = await loadLocalSnowflake().startLocalWarehouse({ port: 0, loginLatencyMs: 300, queryLatencyMs: rttMs, deals: 1_000 });
  try {
    const rounds: RoundFigures[] = [];
    for (const n of workerCounts) rounds.push(await round1(ctx, redis, server, n, jobs, poolSize));
    const base = rounds[0].jobsPerS;
    return {
      bench: 'scale',
      jobs,
      warehouse_rtt_ms: rttMs,
      pool_size_per_worker: poolSize,
      workers: workerCounts,
      jobs_per_s: rounds.map((r) => round(r.jobsPerS, 0)),
      speedup_vs_1_worker: rounds.map((r) => round(r.jobsPerS / base, 2)),
      warehouse_calls_per_job: rounds.map((r) => round(r.warehouseCalls / jobs, 4)),
      mean_batch_size: rounds.map((r) => round(r.meanBatch, 0)),
      seconds: rounds.map((r) => round(r.seconds, 2)),
      machine_cpu_busy: rounds.map((r) => round(r.machineBusy, 2)),
      worker_cpu_s_per_1000_jobs: rounds.map((r) => round((r.workerCpuS / jobs) * 1000, 2)),
      warehouse_process_cpu_s_per_1000_jobs: rounds.map((r) => round((r.warehouseCpuS / jobs) * 1000, 2)),
      redis_cpu_s_per_1000_jobs: rounds.map((r) => round((r.redisCpuS / jobs) * 1000, 2)),
      load_average_1m: rounds.map((r) => round(r.loadAvg, 1)),
      cpus: os.cpus().length,
      note: `${os.cpus().length} cores shared by the worker replicas, Redis and the local warehouse (which computes the stand-in embeddings in this process): once the machine is busy, more replicas cannot add throughput here; in a cluster each replica brings its own cores and the warehouse is Snowflake's.`,
    };
  } finally {
    await server.close();
    await redis.stop();
  }
}
