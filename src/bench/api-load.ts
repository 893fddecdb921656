import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Queue } from 'bullmq';
import { startPrivateRedis } from '../app/redis-server';
import { QUEUES } from '../contracts/queues';
import { startApi } from '../http';
import { loadFastify } from '../http/fastify';
import { createProducer } from '../producers';
import { createMetricsRegistry } from '../telemetry/prometheus';
import { startTelemetry } from '../telemetry/telemetry';
import type { BenchContext } from './context';
import { cpuSeconds } from './cpu';
import { percentile, round } from './stats';

const TOKEN = 'bench-token-0123456789abcdef';

/**
 * The load generator runs in a worker thread (inline source, node:net only) so that the clients' own
 * CPU does not queue behind the server on one event loop: the figures are the API's, not the client's.
 * Like autocannon and wrk it writes each request as raw HTTP/1.1 bytes on `concurrency` keep-alive
 * sockets and reads only the status line and Content-Length of the reply; node:http's client costs
 * about as much CPU per request as the server, which on a 2-core machine took a third of the machine
 * from the API under test. It posts back the latency and status of each request.
 */
const CLIENT_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { port, token, count, concurrency, offset, rate } = workerData;
const ms = new Float64Array(count);
const status = new Int32Array(count);
let next = 0;
const CRLF2 = Buffer.from('\\r\\n\\r\\n');
function request(i) {
  const body = JSON.stringify({ text: 'bench note ' + (offset + i) + ': customer raised renewal and pricing concerns; next step a security review' });
  return 'POST /v1/embeddings HTTP/1.1\\r\\nhost: 127.0.0.1:' + port + '\\r\\ncontent-type: application/json\\r\\nauthorization: Bearer ' + token +
    '\\r\\ncontent-length: ' + Buffer.byteLength(body) + '\\r\\n\\r\\n' + body;
}
function connection() {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    let buf = Buffer.alloc(0);
    let current = -1;
    let started = 0;
    const send = () => {
      if (next >= count) { socket.end(); resolve(); return; }
      if (rate > 0) {
        // Open loop: request i is due at t0 + i / rate; a connection waits for the next one to fall due.
        const wait = t0 + (next * 1000) / rate - performance.now();
        if (wait > 0) { setTimeout(send, wait); return; }
      }
      current = next++;
      // Open loop counts from when the request was due, so time spent waiting for a free connection is
      // latency too (no coordinated omission); closed loop counts from the write.
      started = rate > 0 ? t0 + (current * 1000) / rate : performance.now();
      socket.write(request(current));
    };
    socket.on('connect', send);
    socket.on('error', (err) => { if (current >= 0 && status[current] === 0) { ms[current] = performance.now() - started; } reject(err); });
    socket.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        const headEnd = buf.indexOf(CRLF2);
        if (headEnd < 0) return;
        const head = buf.toString('latin1', 0, headEnd);
        const m = /\\r\\ncontent-length: *(\\d+)/i.exec(head);
        const total = headEnd + 4 + (m ? Number(m[1]) : 0);
        if (buf.length < total) return;
        ms[current] = performance.now() - started;
        status[current] = Number(head.slice(9, 12));
        buf = buf.subarray(total);
        send();
      }
    });
  });
}
const t0 = performance.now();
(async () => {
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, connection));
  const seconds = (performance.now() - started) / 1000;
  parentPort.postMessage({ seconds, ms, status });
})();
`;

interface ClientRun {
  seconds: number;
  ms: Float64Array;
  status: Int32Array;
}

/** `rate` 0: closed loop (each connection sends its next request when the last one is answered); else requests per second offered. */
function runClients(port: number, count: number, concurrency: number, offset: number, rate = 0): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(CLIENT_SOURCE, { eval: true, workerData: { port, token: TOKEN, count, concurrency, offset, rate } });
    worker.once('message', (m: ClientRun) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`bench client thread exited with code ${code}`));
    });
  });
}

/**
 * The baseline: bare fastify with one `queue.add` per request, the least an HTTP enqueue can cost (no
 * auth, validation, backlog bound, idempotency, tracing, metrics or error table). Same client, same Redis.
 */
async function startBareApi(queue: Queue): Promise<{ port: number; close(): Promise<void> }> {
  const { fastify } = loadFastify();
  const app = fastify({ logger: false });
  app.post('/v1/embeddings', async (req, reply) => {
    const job = await queue.add('embed', req.body as Record<string, unknown>, { jobId: `j-${randomUUID()}` });
    reply.code(202);
    return { id: job.id };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, close: () => app.close() };
}

/** CPU of this thread (the API's event loop; the clients run in a thread of their own) and of Redis during `fn`. */
async function withCpu<T>(redisPid: number | undefined, fn: () => Promise<T>): Promise<{ value: T; apiCpuUs: number; redisCpuUs?: number }> {
  const redisBefore = cpuSeconds(redisPid);
  const before = process.threadCpuUsage();
  const value = await fn();
  const used = process.threadCpuUsage(before);
  const redisAfter = cpuSeconds(redisPid);
  return {
    value,
    apiCpuUs: used.user + used.system,
    redisCpuUs: redisBefore !== undefined && redisAfter !== undefined ? (redisAfter - redisBefore) * 1e6 : undefined,
  };
}

/** Event-loop delay and GC pauses of this thread while `fn` runs. */
async function withLoopStats<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; loopP99Ms: number; loopMaxMs: number; gcPauses: number; gcMaxMs: number; gcTotalMs: number }> {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const gc: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gc.push(e.duration);
  });
  observer.observe({ entryTypes: ['gc'] });
  loop.enable();
  try {
    const value = await fn();
    return {
      value,
      loopP99Ms: round(loop.percentile(99) / 1e6),
      loopMaxMs: round(loop.max / 1e6),
      gcPauses: gc.length,
      gcMaxMs: round(gc.length ? Math.max(...gc) : 0),
      gcTotalMs: round(gc.reduce((a, b) => a + b, 0)),
    };
  } finally {
    loop.disable();
    observer.disconnect();
  }
}

/** Closed-loop slices of one side, concatenated: client figures, and the API thread's and Redis's CPU summed. */
interface ClosedLoop {
  seconds: number;
  ms: number[];
  status: number[];
  apiCpuUs: number;
  redisCpuUs?: number;
}

/**
 * Runs the closed loop of the fleet's API and of the baseline in alternating slices (fleet, baseline, fleet...)
 * so that both meet the same machine load: on a shared 2-core machine the load changes within seconds, and
 * one side measured after the other took a different share of it.
 */
async function interleavedClosedLoops(
  ports: { fleet: number; baseline: number },
  opts: { requests: number; slices: number; concurrency: number; offset: number; redisPid?: number; log: (line: string) => void },
): Promise<{ fleet: ClosedLoop; baseline: ClosedLoop }> {
  const empty = (): ClosedLoop => ({ seconds: 0, ms: [], status: [], apiCpuUs: 0, redisCpuUs: 0 });
  const sides = { fleet: empty(), baseline: empty() };
  const per = Math.ceil(opts.requests / opts.slices);
  let offset = opts.offset;
  for (let done = 0; done < opts.requests; done += per) {
    const count = Math.min(per, opts.requests - done);
    const perRequest: string[] = [];
    for (const side of ['fleet', 'baseline'] as const) {
      const run = await withCpu(opts.redisPid, () => runClients(ports[side], count, opts.concurrency, offset));
      offset += count;
      const into = sides[side];
      into.seconds += run.value.seconds;
      into.ms.push(...run.value.ms);
      into.status.push(...run.value.status);
      into.apiCpuUs += run.apiCpuUs;
      perRequest.push(`${side} ${round(run.apiCpuUs / count, 1)} µs`);
      into.redisCpuUs = into.redisCpuUs === undefined || run.redisCpuUs === undefined ? undefined : into.redisCpuUs + run.redisCpuUs;
    }
    opts.log(`api bench: slice of ${count}, CPU per request: ${perRequest.join(', ')}`);
  }
  return sides;
}

/**
 * `fleet bench api`: enqueue requests (POST /v1/embeddings, one text each) over HTTP from concurrent
 * keep-alive clients on loopback, against the real API, producer and a private redis-server. No workers:
 * this measures the enqueue path (auth, validation, backlog check, one Redis round trip), not processing.
 * The clients run in a worker thread, the API on the main thread, Redis in its own process; then one
 * client alone sends requests one after another, which shows the latency of a request without queueing
 * (at concurrency N, latency ≈ N / throughput).
 *
 * The baseline (bare fastify, same process, client and Redis) is warmed up as long as the fleet's API and
 * measured in slices alternating with it: CPU per request of code V8 has not optimised yet is several
 * times its steady cost, and fastify, ioredis and BullMQ are shared by both sides, so the side measured
 * second would otherwise run on code the first side warmed.
 */
export async function runApiBench(ctx: BenchContext): Promise<Record<string, unknown>> {
  const requests = ctx.quick ? 1_000 : 10_000;
  const slices = ctx.quick ? 2 : 5;
  const concurrency = ctx.quick ? 20 : 50;
  // Per side. Measured on this machine (Node 24, 2 loaded cores): CPU per request of either side falls for
  // several thousand requests after start (V8 optimises on background threads that share the cores); after
  // 5,000 each the first measured fleet slice still cost 1.2-1.4x the later ones, after 10,000 it did not.
  const warmup = ctx.quick ? 100 : 10_000;
  const sequentialCount = ctx.quick ? 200 : 1_000;
  // Then a fixed offered load (open loop) at rates below saturation, 5 s each: the latency a caller sees
  // when the API is busy but not overrun, which a closed loop of 50 clients never shows.
  const openRates = ctx.quick ? [500] : [1_000, 2_000];
  const openSeconds = ctx.quick ? 1 : 5;
  const openTotal = openRates.reduce((a, r) => a + r * openSeconds, 0);
  const redis = await startPrivateRedis();
  // Tracing as `fleet api` runs it (a tracer provider with real span ids and no exporter), so the fleet's
  // figure includes the server and publish spans production pays for; BullMQ in the baseline makes none.
  const telemetry = startTelemetry({ role: 'api' });
  const producer = createProducer({ connection: redis.url, prefix: '{bench}' });
  const registry = createMetricsRegistry();
  // Server-side time of each response (routing to reply sent), beside the client-observed latency: the gap
  // is time a request or response spent queued on the two busy event loops, not in the API's own work.
  const serverMs: number[] = [];
  let recordServer = false;
  const serverSide = {
    ...registry.metrics,
    httpRequest(method: string, route: string, status: number, durationMs: number) {
      if (recordServer) serverMs.push(durationMs);
      registry.metrics.httpRequest(method, route, status, durationMs);
    },
  };
  try {
    const api = await startApi({
      port: 0,
      host: '127.0.0.1',
      producer,
      queues: [producer.queue(QUEUES.embeddings), producer.queue(QUEUES.deals)],
      tokens: [TOKEN],
      board: false,
      docs: false,
      metrics: serverSide,
      // Every request is admitted (the bound is above what the run enqueues) but still checked.
      maxBacklog: warmup + requests + sequentialCount + openTotal,
    });
    try {
      const bare = await startBareApi(producer.queue(QUEUES.deals));
      try {
        ctx.log(`api bench: ${api.url}, baseline port ${bare.port}, redis ${redis.url}; warm-up ${warmup} requests each`);
        let offset = 0;
        // Warmed up alternating too: after the baseline's first requests, the fleet's next ones cost several
        // times their steady CPU once more (V8 re-optimising code both sides share), so a warm-up of one side
        // and then of the other leaves that cost in the first measured slice.
        await interleavedClosedLoops({ fleet: api.port, baseline: bare.port }, { requests: warmup, slices, concurrency, offset, log: ctx.log });
        offset += 2 * warmup;
        ctx.log(
          `api bench: ${requests} POST /v1/embeddings with ${concurrency} concurrent keep-alive clients (client thread), fleet and baseline alternating in ${slices} slices`,
        );
        recordServer = true;
        const closedLoops = await interleavedClosedLoops(
          { fleet: api.port, baseline: bare.port },
          { requests, slices, concurrency, offset, redisPid: redis.process.pid, log: ctx.log },
        );
        offset += 2 * requests;
        recordServer = false;
        const closed = closedLoops.fleet;
        const { seconds, ms: latencies, status } = closed;
        const statuses: Record<string, number> = {};
        for (const s of status) statuses[s] = (statuses[s] ?? 0) + 1;
        const errors = status.filter((s) => s !== 202).length;
        ctx.log(`api bench: ${sequentialCount} requests from one client, one at a time`);
        const sequential = await runClients(api.port, sequentialCount, 1, offset);
        offset += sequentialCount;
        const sequentialMs = Array.from(sequential.ms);
        const openLoop: Record<string, unknown>[] = [];
        for (const rate of openRates) {
          ctx.log(`api bench: open loop, ${rate} requests/s offered for ${openSeconds} s over ${concurrency} connections`);
          // How long the API's event loop was late meanwhile (a stall there delays every request that arrives
          // during it), and the GC pauses behind such stalls.
          const stats = await withLoopStats(() => runClients(api.port, rate * openSeconds, concurrency, offset, rate));
          const run = stats.value;
          offset += rate * openSeconds;
          const lat = Array.from(run.ms);
          openLoop.push({
            offered_rps: rate,
            achieved_rps: Math.round((rate * openSeconds) / run.seconds),
            p50_ms: round(percentile(lat, 50)),
            p99_ms: round(percentile(lat, 99)),
            errors: Array.from(run.status).filter((x) => x !== 202).length,
            api_loop_delay_p99_ms: stats.loopP99Ms,
            api_loop_delay_max_ms: stats.loopMaxMs,
            gc_pauses: stats.gcPauses,
            gc_max_ms: stats.gcMaxMs,
            gc_total_ms: stats.gcTotalMs,
          });
        }
        ctx.log(`api bench: baseline (bare fastify + queue.add per request) at ${openRates[0]} req/s offered`);
        const bStats = await withLoopStats(() => runClients(bare.port, openRates[0] * openSeconds, concurrency, offset, openRates[0]));
        offset += openRates[0] * openSeconds;
        const bOpen = Array.from(bStats.value.ms);
        const b = closedLoops.baseline;
        const baseline = {
          rps: Math.round(requests / b.seconds),
          p99Ms: round(percentile(b.ms, 99)),
          apiCpuUs: b.apiCpuUs,
          redisCpuUs: b.redisCpuUs,
          errors: b.status.filter((x) => x !== 202).length,
          open: {
            offered_rps: openRates[0],
            p50_ms: round(percentile(bOpen, 50)),
            p99_ms: round(percentile(bOpen, 99)),
            errors: Array.from(bStats.value.status).filter((x) => x !== 202).length,
            api_loop_delay_max_ms: bStats.loopMaxMs,
            gc_pauses: bStats.gcPauses,
            gc_max_ms: bStats.gcMaxMs,
          },
        };
        const cpuPerRequest = closed.apiCpuUs / requests;
        const baselineCpuPerRequest = baseline.apiCpuUs / requests;
        const p99 = percentile(latencies, 99);
        const enqueued = await producer.queue(QUEUES.embeddings).count();
        const result = {
          requests,
          concurrency,
          warmup_requests_each: warmup,
          closed_loop_slices: slices,
          seconds: round(seconds, 2),
          rps: Math.round(requests / seconds),
          p50_ms: round(percentile(latencies, 50)),
          p90_ms: round(percentile(latencies, 90)),
          p99_ms: round(p99),
          max_ms: round(Math.max(...latencies)),
          errors,
          statuses,
          server_p50_ms: round(percentile(serverMs, 50)),
          server_p99_ms: round(percentile(serverMs, 99)),
          sequential: {
            requests: sequentialCount,
            p50_ms: round(percentile(sequentialMs, 50)),
            p99_ms: round(percentile(sequentialMs, 99)),
            errors: Array.from(sequential.status).filter((x) => x !== 202).length,
          },
          open_loop: openLoop,
          open_loop_note: 'latency counted from when each request was due (waiting for a free connection included); timer granularity adds up to ~1 ms',
          jobs_enqueued: enqueued,
          cpu_us_per_request: round(cpuPerRequest, 1),
          baseline_cpu_us_per_request: round(baselineCpuPerRequest, 1),
          cpu_vs_baseline: round(cpuPerRequest / baselineCpuPerRequest, 2),
          redis_cpu_us_per_request: closed.redisCpuUs === undefined ? null : round(closed.redisCpuUs / requests, 1),
          baseline_redis_cpu_us_per_request: baseline.redisCpuUs === undefined ? null : round(baseline.redisCpuUs / requests, 1),
          baseline_rps: baseline.rps,
          baseline_p99_ms: baseline.p99Ms,
          baseline_errors: baseline.errors,
          baseline_open_loop: baseline.open,
          [`open_${openRates[0]}_p99_ms`]: (openLoop[0] as { p99_ms: number }).p99_ms,
          targets: { cpu_vs_baseline_max: 1.5, open_1000_p99_ms_max: 10 },
          met_cpu_target: cpuPerRequest <= 1.5 * baselineCpuPerRequest,
          met_open_loop_target: openRates[0] === 1_000 ? (openLoop[0] as { p99_ms: number }).p99_ms < 10 : null,
          target_p99_ms: 10,
          met_target: p99 < 10 && errors === 0,
        };
        ctx.log(`api bench: ${result.rps} req/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, ${errors} errors`);
        ctx.log(`api bench: CPU per request ${result.cpu_us_per_request} µs vs baseline ${result.baseline_cpu_us_per_request} µs (${result.cpu_vs_baseline}x)`);
        return result;
      } finally {
        await bare.close();
      }
    } finally {
      await api.close();
    }
  } finally {
    await producer.close().catch(() => undefined);
    await registry.shutdown().catch(() => undefined);
    await telemetry.shutdown().catch(() => undefined);
    await redis.stop();
  }
}
