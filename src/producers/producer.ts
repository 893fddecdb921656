import { hash, randomUUID } from 'node:crypto';
import { type Meter, metrics } from '@opentelemetry/api';
import { type ConnectionOptions, FlowProducer, type Job, type JobsOptions, Queue, QueueEvents } from 'bullmq';
import IORedis, { Cluster, type Redis, type RedisOptions } from 'ioredis';
import { DealBatchJobData, type DealInsightsResult } from '../contracts/deals';
import { DEFAULT_EMBEDDING_MODEL, EmbeddingJobData, type EmbeddingJobInput, type EmbeddingResult, type IndexTarget } from '../contracts/embedding';
import { JobFailedError, ResultTimeoutError, ValidationError } from '../contracts/errors';
import { JOB_DEFAULTS } from '../contracts/job-defaults';
import { isQueueName, JOB_NAMES, QUEUES, type QueueName } from '../contracts/queues';
import { SearchRequest, type SearchResponse } from '../contracts/search';
import { pickShard, type ShardCounts, shardCount, shardOfJobId, shardPrefix, withShardMark } from '../contracts/shards';
import { Tenant } from '../contracts/tenants';
import { validate } from '../contracts/validate';
import { WorkflowJobData, type WorkflowJobInput, type WorkflowReport } from '../contracts/workflows';
import { type FairnessSettings, fairnessSettings, isFairQueue, shardShare, TenantLanes } from '../fairness';
import { buildWorkflowFlow } from '../flows/build-flow';
import { MAX_TIMER_MS, withDeadline, withDeadlineOr } from '../resilience';
import { injectTraceContext } from '../telemetry/tracing';
import { AddBatcher, type BulkJob } from './add-batcher';
import { type BufferLimits, type BufferStats, type CloseResult, DEFAULT_BUFFER_LIMITS, OutageGate, type Submission } from './outage-buffer';
import { observeBuffer } from './producer-metrics';

/** Retries and retention the fleet applies unless the caller overrides them. */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: JOB_DEFAULTS.attempts,
  backoff: { type: 'exponential', delay: JOB_DEFAULTS.backoffMs },
  removeOnComplete: { age: JOB_DEFAULTS.keepCompletedS, count: JOB_DEFAULTS.keepCompletedCount },
  removeOnFail: { age: JOB_DEFAULTS.keepFailedS },
};

export interface ProducerOptions {
  /** Redis: an ioredis instance or Cluster (not closed by the producer), or connection options / URL. Required. */
  connection: Redis | Cluster | ConnectionOptions | string;
  /** BullMQ key prefix; must match the workers'. Default `{fleet}`. */
  prefix?: string;
  /** Defaults for every job (attempts, backoff, retention), merged over DEFAULT_JOB_OPTIONS. */
  defaultJobOptions?: JobsOptions;
  /**
   * Connection errors of the producer's queues (Redis restarting, a network cut), enqueues put in the
   * outage buffer (a notice saying how many are held) and buffered enqueues dropped
   * (EnqueueDroppedError). Informational: the calls themselves say what happened to them. Default: one
   * line on stderr at most every 10 s (BullMQ would otherwise print every reconnect attempt with its stack).
   */
  onError?: (err: Error) => void;
  /**
   * While Redis is unreachable, enqueues wait in memory, up to these bounds, and are flushed in order (with
   * their job ids) when the connection is ready again; past a bound a call throws BufferFullError. `false`:
   * calls throw RedisUnavailableError at once. Searches are never buffered. Default
   * `{ maxJobs: 10_000, maxBytes: 32 MiB }`.
   */
  buffer?: BufferLimits | false;
  /**
   * How long an enqueue made while the connection is still making its first attempt waits for that
   * attempt's outcome; then it is buffered, or (buffering off) throws RedisUnavailableError. Default 5,000 ms.
   */
  connectWaitMs?: number;
  /** Meter for `fleet_producer_buffered_jobs` and `fleet_producer_dropped_jobs`. Default the global `fleet-producer` meter. */
  meter?: Meter;
  /**
   * Fair service between tenants on the batch queues (`embeddings`, `deals`; src/fairness) and the
   * per-tenant limits (TenantLimitError): slots, weights, most unfinished jobs and rate per tenant. Every
   * producer and worker of a fleet should use the same settings (the roles read them from the environment).
   * `false` (or `enabled: false`): plain FIFO, no limits. Default on, `DEFAULT_FAIRNESS`.
   */
  fairness?: Partial<FairnessSettings> | false;
  /**
   * Queues split into shards (FLEET_QUEUE_SHARDS; src/contracts/shards.ts): each job goes to one shard (by its
   * idempotency key, else in turn) and its id says which (`s2.…`). Every producer and worker of a fleet must use
   * the same counts. Default one shard per queue.
   */
  shards?: ShardCounts;
  /**
   * The layout before a change of `shards` (FLEET_QUEUE_SHARDS_PREVIOUS): an enqueue with an idempotency key first
   * looks for the job in the shard the old layout gave the key, and returns it when it is there.
   */
  previousShards?: ShardCounts;
}

/** What the producer holds right now, and what it flushed and dropped. */
export type ProducerStats = BufferStats;

function checkProducerOptions(options: ProducerOptions): { limits: Required<BufferLimits> | false; connectWaitMs: number } {
  const positive = (name: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new RangeError(`createProducer: option \`${name}\` must be an integer >= 1, got ${String(v)}`);
    return v;
  };
  const connectWaitMs = positive('connectWaitMs', options.connectWaitMs ?? 5_000);
  if (options.buffer === false) return { limits: false, connectWaitMs };
  if (options.buffer !== undefined && (options.buffer === null || typeof options.buffer !== 'object')) {
    throw new TypeError(`createProducer: option \`buffer\` must be { maxJobs?, maxBytes? } or false, got ${String(options.buffer)}`);
  }
  return {
    limits: {
      maxJobs: positive('buffer.maxJobs', options.buffer?.maxJobs ?? DEFAULT_BUFFER_LIMITS.maxJobs),
      maxBytes: positive('buffer.maxBytes', options.buffer?.maxBytes ?? DEFAULT_BUFFER_LIMITS.maxBytes),
    },
    connectWaitMs,
  };
}

function throttledStderr(everyMs = 10_000): (err: Error) => void {
  let last = 0;
  let suppressed = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < everyMs) {
      suppressed += 1;
      return;
    }
    process.stderr.write(`fleet producer: ${err.message}${suppressed ? ` (${suppressed} more since the last line)` : ''}\n`);
    last = now;
    suppressed = 0;
  };
}

export interface EnqueueOptions {
  /**
   * A retried enqueue with the same key returns the same job instead of creating a second one (for as
   * long as the job is retained). Any string: it is hashed into a BullMQ-safe job id.
   */
  idempotencyKey?: string;
  /** BullMQ priority (1 = highest). */
  priority?: number;
  /**
   * Who the job is for (1-128 letters, digits or `_ . : / -`). Jobs of different tenants are served fairly
   * and counted per tenant, with per-tenant limits (TenantLimitError). Default the shared tenant `default`.
   */
  tenant?: string;
  /** Trace context (W3C headers) carried in the job for the worker's spans. */
  trace?: Record<string, string>;
  /**
   * Aborting removes the enqueue while it has not been sent (waiting in the outage buffer, or for a first
   * connection): the call or its handle's `persisted` rejects with EnqueueDroppedError and the job never
   * appears. An add already sent cannot be taken back.
   */
  signal?: AbortSignal;
}

export interface EmbedOptions extends EnqueueOptions {
  model?: EmbeddingJobInput['model'];
  /** Upsert the vector into the search index under this namespace and id. For a batch, ids are per text. */
  index?: IndexTarget | IndexTarget[];
}

/**
 * Internal (not exported from the package): set by the HTTP API's route, whose request schema has already
 * checked every text, the model and the index targets with the same contracts (WarehouseText, IndexTarget,
 * the model enum) and whose trace headers come from the propagator. `embed` then builds the job payloads
 * as `EmbeddingJobData` would output them instead of parsing them a second time; the per-call checks
 * (counts, targets per text, priority) still run.
 */
export const PREVALIDATED = Symbol('fleet.producer.prevalidated');
type InternalEmbedOptions = EmbedOptions & { [PREVALIDATED]?: true };

/** A job enqueued by the producer. */
export interface JobHandle<R> {
  readonly queue: QueueName;
  readonly id: string;
  /**
   * True when Redis was unreachable at the call and the job waits in the producer's memory: it reaches Redis
   * when the connection is back, unless the producer closes first (see `persisted`).
   */
  readonly buffered: boolean;
  /** Settles once the job is in Redis (at once unless buffered); rejects with EnqueueDroppedError if it never will be. */
  readonly persisted: Promise<void>;
  /**
   * Waits for the job to finish (time in the buffer counts); rejects with JobFailedError, ResultTimeoutError,
   * or EnqueueDroppedError for a buffered job that never reached Redis. Default timeout 30 s.
   */
  result(opts?: { timeoutMs?: number }): Promise<R>;
}

/** How a job ended, as far as a bounded wait knows. */
export type JobOutcome = { state: 'completed'; result: unknown } | { state: 'failed'; failedReason: string } | { state: 'pending' };

export interface WaitForResultsOptions {
  /** How long to wait for the jobs to finish (0 = only look them up once). */
  timeoutMs: number;
  /** Deadline of each lookup of the jobs' state in Redis. Default 5,000 ms. */
  lookupTimeoutMs?: number;
}

/** A search request as a caller writes it (`k` defaults to 10). */
export type SearchRequestInput = Omit<import('zod').input<typeof SearchRequest>, 'trace'>;

export interface Producer {
  embed(text: string, opts?: EmbedOptions): Promise<JobHandle<EmbeddingResult>>;
  embed(texts: string[], opts?: EmbedOptions): Promise<JobHandle<EmbeddingResult>[]>;
  dealInsights(dealIds: string[], opts?: EnqueueOptions): Promise<JobHandle<DealInsightsResult>>;
  /** Enqueues a semantic search (text or vector) for the search replicas; the handle's result has the hits. */
  search(request: SearchRequestInput, opts?: EnqueueOptions): Promise<JobHandle<SearchResponse>>;
  /**
   * Starts a workflow (a BullMQ flow: collectors in parallel → analysers → synthesis); the handle's
   * result is the report. With an idempotency key, a retried call returns the same workflow.
   */
  workflow(question: string, opts?: EnqueueOptions & Omit<WorkflowJobInput, 'question' | 'trace'>): Promise<JobHandle<WorkflowReport>>;
  /**
   * Waits up to `timeoutMs` for the jobs and says how each ended, in the handles' order; a job still
   * running then is `pending` (never an exception). What the HTTP API's `?waitMs=` answers with.
   */
  waitForResults(handles: readonly JobHandle<unknown>[], opts: WaitForResultsOptions): Promise<JobOutcome[]>;
  /** The underlying queue (for callers that need BullMQ directly); of a sharded queue, shard 0 (see `shardQueues`). */
  queue(name: QueueName): Queue;
  /** Every shard of a queue, shard 0 first: those of `shards` and of `previousShards` (one for an unsharded queue). */
  shardQueues(name: QueueName): Queue[];
  /** The shard of `name` that holds the job `id` (its id names it). */
  queueOfJob(name: QueueName, id: string): Queue;
  /** Whether the connection is ready, and the outage buffer's counts. */
  stats(): ProducerStats;
  /** True while the job waits in this producer's outage buffer (Redis does not know it yet). */
  isBuffered(queue: QueueName, id: string): boolean;
  /**
   * Flushes the outage buffer within `timeoutMs` (default 5,000 ms), then closes the queues. Resolves with
   * how many buffered jobs were flushed, dropped (never sent: they will not appear) and of unknown outcome.
   * Idempotent.
   */
  close(opts?: { timeoutMs?: number }): Promise<CloseResult>;
}

/**
 * Maps an idempotency key to a job id BullMQ accepts (no `:`, not integer-like), stable across
 * processes and languages: `idem-` + base64url(sha256(queue + key)).
 */
export function idempotentJobId(queue: QueueName, key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512) {
    throw new ValidationError([{ path: 'idempotencyKey', message: 'must be a string of 1-512 characters' }]);
  }
  // One-shot hash: the same digest as createHash(...).update().digest(), at a fraction of the cost per call.
  return `idem-${hash('sha256', `${queue}\u0000${key}`, 'base64url').slice(0, 32)}`;
}

/** The caller's trace context travels in the job, so the worker's spans join the caller's trace. */
function traceOf(opts: EnqueueOptions): Record<string, string> | undefined {
  if (opts.trace) return opts.trace;
  const injected = injectTraceContext();
  return Object.keys(injected).length ? injected : undefined;
}

/** `persisted` of every job that was in Redis when its call returned: one settled promise serves them all. */
const PERSISTED: Promise<void> = Promise.resolve();

/** Longest timer Node honours; a longer (or Infinity) delay fires after 1 ms, with a warning. */
export const MAX_RESULT_TIMEOUT_MS = MAX_TIMER_MS;

/** BullMQ waits forever on a NaN or 0 timeout and gives up at once on a negative or too large one. */
function checkTimeout(timeoutMs: unknown): void {
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_RESULT_TIMEOUT_MS) {
    throw new ValidationError([{ path: 'timeoutMs', message: `must be a number of milliseconds from 1 to ${MAX_RESULT_TIMEOUT_MS}` }]);
  }
}

function checkTenant(tenant: unknown): void {
  if (tenant !== undefined && !Tenant.safeParse(tenant).success) {
    throw new ValidationError([{ path: 'tenant', message: 'must be 1-128 letters, digits or _ . : / -, starting with a letter or digit' }]);
  }
}

function checkPriority(priority: number | undefined): void {
  if (priority === undefined) return;
  if (!Number.isInteger(priority) || priority < 1 || priority > 2_097_152) {
    throw new ValidationError([{ path: 'priority', message: 'must be an integer from 1 (highest) to 2097152' }]);
  }
}

/**
 * The fleet's client library: typed, validated enqueue functions. Payloads are checked before they
 * reach Redis, so a bad call throws a ValidationError and enqueues nothing.
 *
 * @example
 *   const producer = createProducer({ connection: 'redis://127.0.0.1:6379' });
 *   const job = await producer.embed('renewal is at risk', { idempotencyKey: 'note-42' });
 *   const { vector } = await job.result({ timeoutMs: 10_000 });
 *   await producer.close();
 */
export function createProducer(options: ProducerOptions): Producer {
  if (!options?.connection) throw new TypeError('createProducer: option `connection` is required');
  const { limits, connectWaitMs } = checkProducerOptions(options);
  const fairness = options.fairness === false ? undefined : fairnessSettings(options.fairness);
  const prefix = options.prefix ?? '{fleet}';
  const shards = options.shards ?? {};
  const previousShards = options.previousShards;
  /** Shards of `name` that may hold jobs: the current layout's and, during a change, the previous one's. */
  const shardsHeld = (name: QueueName) => Math.max(shardCount(shards, name), shardCount(previousShards, name));
  for (const name of new Set([...Object.keys(shards), ...Object.keys(previousShards ?? {})]) as Set<QueueName>) {
    // Checked at creation: a prefix without a hash tag cannot shard.
    for (let k = 1; k < shardsHeld(name); k++) shardPrefix(prefix, name, k);
  }
  const owned: (Redis | Cluster)[] = [];
  // Always one ioredis instance the producer can watch: the outage gate decides from its status.
  const connection: Redis | Cluster = (() => {
    if (options.connection instanceof IORedis || options.connection instanceof Cluster) return options.connection;
    const r =
      typeof options.connection === 'string'
        ? new IORedis(options.connection, { maxRetriesPerRequest: null })
        : new IORedis({ ...(options.connection as RedisOptions), maxRetriesPerRequest: null });
    owned.push(r);
    return r;
  })();
  /** Each queue's shards, by shard index. */
  const queues = new Map<QueueName, Map<number, Queue>>();
  const lanes = new Map<Queue, TenantLanes>();
  /** The tenant lanes of a fair queue's shard, when fairness is on: each shard enforces its share of the limits. */
  const lanesOf = (q: Queue): TenantLanes | undefined => {
    const name = q.name as QueueName;
    if (!fairness?.enabled || !isFairQueue(name)) return undefined;
    let l = lanes.get(q);
    if (!l) {
      l = new TenantLanes(connection, q.opts.prefix ?? prefix, name, shardShare(fairness, shardCount(shards, name)));
      lanes.set(q, l);
    }
    return l;
  };
  /**
   * Adds `jobs` (all of one tenant) to a queue, gathered with the other adds of this event-loop turn: on a
   * fair queue each job first takes a slot in its tenant's lane or is parked behind it (TenantLimitError
   * past a limit), then one add or addBulk. Run again after a lost connection, both steps are no-ops for
   * what already happened.
   */
  const batcher = new AddBatcher(lanesOf);
  /** Ids the previous shard layout gave the jobs of idempotent enqueues, where it differs (see `previousShards`). */
  const previousIds = new WeakMap<JobsOptions, string>();
  /**
   * Adds `jobs` to their shards (each job's id names it), in the caller's order. During a layout change a job
   * whose key the previous layout put elsewhere, and which is there, is returned instead of added again.
   */
  const addJobs = async (name: QueueName, jobs: BulkJob[]): Promise<Job[]> => {
    // One shard and no layout change (the default, and every HTTP enqueue's path): straight to the batcher.
    if (!previousShards && shardsHeld(name) === 1) return batcher.add(openQueue(name), jobs);
    const out: (Job | undefined)[] = new Array(jobs.length);
    const earlier = jobs.map((j) => previousIds.get(j.opts));
    if (earlier.some(Boolean)) {
      const found = await Promise.all(earlier.map((id) => (id ? openQueue(name, shardOfJobId(id)).getJob(id) : undefined)));
      found.forEach((job, i) => {
        if (job) out[i] = job;
      });
    }
    const byShard = new Map<number, number[]>();
    jobs.forEach((j, i) => {
      if (out[i]) return;
      const k = shardOfJobId(j.opts.jobId!);
      const list = byShard.get(k);
      if (list) list.push(i);
      else byShard.set(k, [i]);
    });
    await Promise.all(
      [...byShard].map(async ([k, idx]) => {
        const added = await batcher.add(
          openQueue(name, k),
          idx.map((i) => jobs[i]),
        );
        idx.forEach((i, n) => {
          out[i] = added[n];
        });
      }),
    );
    return out as Job[];
  };
  const events = new Map<Queue, Promise<QueueEvents>>();
  const openEvents: QueueEvents[] = [];
  let flows: FlowProducer | undefined;
  let closed: Promise<CloseResult> | undefined;
  const onError = options.onError ?? throttledStderr();
  let gate: OutageGate;
  const observed = observeBuffer(options.meter ?? metrics.getMeter('fleet-producer'), prefix, () => gate.stats());
  gate = new OutageGate(connection, { limits, connectWaitMs, onError, onDrop: observed.dropped });

  // Before anything is buffered or a queue opened (a queue on a dead connection only adds error noise).
  const checkOpen = () => {
    if (closed) throw new Error('producer is closed');
  };
  const queue = (name: QueueName) => {
    checkOpen();
    return openQueue(name);
  };
  // Without the closed check: close() flushes the buffer through the queues before it closes them.
  const openQueue = (name: QueueName, shard = 0) => {
    // A JavaScript caller can pass any string; BullMQ would open a queue nobody works on.
    if (typeof name !== 'string' || !isQueueName(name)) {
      throw new ValidationError([{ path: 'queue', message: `unknown queue ${JSON.stringify(name)}; known queues: ${Object.values(QUEUES).join(', ')}` }]);
    }
    let byShard = queues.get(name);
    if (!byShard) {
      byShard = new Map();
      queues.set(name, byShard);
    }
    let q = byShard.get(shard);
    if (!q) {
      q = new Queue(name, {
        connection,
        prefix: shardPrefix(prefix, name, shard),
        defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, ...options.defaultJobOptions },
      });
      q.on('error', onError);
      // each pending result() (job.waitUntilFinished) listens for the queue's 'closing'; hundreds at once are normal
      q.setMaxListeners(0);
      byShard.set(shard, q);
    }
    return q;
  };
  const queueOfJob = (name: QueueName, id: string) => {
    checkOpen();
    const k = shardOfJobId(id);
    // An id marked for a shard the queue does not have is nobody's job: shard 0 answers "not found".
    return openQueue(name, k < shardsHeld(name) ? k : 0);
  };

  // QueueEvents blocks on XREAD, so it gets its own connection. It reads from the stream's last entry as
  // of its creation, not from '$': BullMQ's QueueEvents issues its first XREAD '$' some time after it is
  // "ready", and job.waitUntilFinished's own isFinished check runs once it is ready, so a job finishing in
  // between was never seen (found under load: a completed job's result() timing out).
  const queueEvents = (q: Queue): Promise<QueueEvents> => {
    let ready = events.get(q);
    if (!ready) {
      ready = (async () => {
        const eventsKey = q.keys.events;
        const last = await connection.xrevrange(eventsKey, '+', '-', 'COUNT', 1);
        const conn = connection.duplicate();
        owned.push(conn);
        const qe = new QueueEvents(q.name, { connection: conn, prefix: q.opts.prefix, lastEventId: last[0]?.[0] ?? '0-0' });
        qe.on('error', onError);
        openEvents.push(qe);
        await qe.waitUntilReady();
        return qe;
      })();
      // A failed start (Redis away) is not kept: the next result() tries again.
      ready.catch(() => events.delete(q));
      events.set(q, ready);
    }
    return ready;
  };

  /** A handle on a job that is in Redis (`job` a Job) or waiting in the outage buffer (`job` a promise of it). */
  const handle = <R>(name: QueueName, id: string, job: Job | Promise<Job>): JobHandle<R> => {
    const buffered = job instanceof Promise;
    const persisted = buffered ? job.then(() => undefined) : PERSISTED;
    // Unobserved drops are reported through onError and the stats, never as an unhandled rejection.
    if (buffered) persisted.catch(() => undefined);
    return {
      queue: name,
      id,
      buffered,
      persisted,
      async result({ timeoutMs = 30_000 } = {}) {
        checkTimeout(timeoutMs);
        const started = performance.now();
        // Time in the buffer counts against the caller's timeout; a dropped job rejects with EnqueueDroppedError.
        const inRedis = buffered ? await withDeadline(job, timeoutMs, () => new ResultTimeoutError(name, id, timeoutMs)) : (job as Job);
        // The shard of the job in Redis: a buffered enqueue sent during a layout change may have found its key's
        // job in the previous layout's shard, under another id than the handle's.
        const qe = await queueEvents(queueOfJob(name, inRedis.id ?? id));
        try {
          return (await inRedis.waitUntilFinished(qe, Math.max(1, Math.round(timeoutMs - (performance.now() - started))))) as R;
        } catch (err) {
          const msg = (err as Error).message ?? String(err);
          if (/timed out before finishing/i.test(msg)) throw new ResultTimeoutError(name, id, timeoutMs);
          throw new JobFailedError(name, id, msg);
        }
      },
    };
  };

  /** Sends the add now, or buffers it, or throws (see OutageGate); one handle per job id either way. */
  const submit = async <R>(sub: Omit<Submission<Job[]>, 'signal'>, opts: EnqueueOptions): Promise<JobHandle<R>[]> => {
    const admitted = await gate.submit({ ...sub, signal: opts.signal });
    if (!admitted.buffered) return admitted.value.map((j) => handle<R>(sub.queue, j.id!, j));
    return sub.jobIds.map((id, i) =>
      handle<R>(
        sub.queue,
        id,
        admitted.persisted.then((jobs) => jobs[i]),
      ),
    );
  };
  // Asked by the outage gate only when it buffers a call.
  const sizeOf = (payloads: readonly unknown[]) => () => payloads.reduce<number>((n, p) => n + Buffer.byteLength(JSON.stringify(p)), 0);

  const jobOptions = (name: QueueName, opts: EnqueueOptions, keySuffix?: string): JobsOptions => {
    checkPriority(opts.priority);
    checkTenant(opts.tenant);
    const key = opts.idempotencyKey === undefined ? undefined : keySuffix === undefined ? opts.idempotencyKey : `${opts.idempotencyKey}#${keySuffix}`;
    // Always a job id chosen here, never Redis's counter: when ioredis re-sends an add after a reconnect
    // (the first one may have run before the connection dropped), BullMQ finds the id and adds nothing.
    // On a sharded queue the id names its shard (a key always picks the same one).
    const base = key !== undefined ? idempotentJobId(name, key) : `j-${randomUUID()}`;
    const result: JobsOptions = {
      jobId: withShardMark(base, pickShard(shardCount(shards, name), key)),
      ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
    };
    if (key !== undefined && previousShards) {
      const before = withShardMark(base, pickShard(shardCount(previousShards, name), key));
      if (before !== result.jobId) previousIds.set(result, before);
    }
    return result;
  };

  async function embed(input: string | string[], opts: InternalEmbedOptions = {}): Promise<JobHandle<EmbeddingResult> | JobHandle<EmbeddingResult>[]> {
    const many = Array.isArray(input);
    const texts = many ? input : [input];
    if (many && (texts.length === 0 || texts.length > 10_000)) {
      throw new ValidationError([{ path: 'texts', message: 'must contain 1 to 10,000 texts per call' }]);
    }
    const targets = opts.index === undefined ? undefined : Array.isArray(opts.index) ? opts.index : [opts.index];
    if (targets && targets.length !== texts.length) {
      throw new ValidationError([{ path: 'index', message: `must have one target per text (${texts.length}), got ${targets.length}` }]);
    }
    checkTenant(opts.tenant);
    // Validate everything before anything is enqueued: a bad text in a batch enqueues none.
    const issues: { path: string; message: string }[] = [];
    const trace = traceOf(opts);
    const payloads = texts.map((text, i) => {
      // The keys in EmbeddingJobData's order, as its parse outputs them.
      if (opts[PREVALIDATED]) return { text, model: opts.model ?? DEFAULT_EMBEDDING_MODEL, index: targets?.[i], tenant: opts.tenant, trace };
      try {
        return validate(EmbeddingJobData, { text, model: opts.model, index: targets?.[i], tenant: opts.tenant, trace });
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        for (const issue of err.issues)
          issues.push({ path: many ? `texts[${i}]${issue.path === 'text' ? '' : `.${issue.path}`}` : issue.path, message: issue.message });
        return undefined;
      }
    });
    if (issues.length) throw new ValidationError(issues);
    checkOpen();
    const bulk = payloads.map((data, i) => ({ name: JOB_NAMES.embed, data: data!, opts: jobOptions(QUEUES.embeddings, opts, many ? String(i) : undefined) }));
    const handles = await submit<EmbeddingResult>(
      {
        queue: QUEUES.embeddings,
        jobIds: bulk.map((b) => b.opts.jobId!),
        bytes: sizeOf(payloads),
        bufferable: true,
        send: () => addJobs(QUEUES.embeddings, bulk),
      },
      opts,
    );
    return many ? handles : handles[0];
  }

  /**
   * Each job's result() (QueueEvents) settles it. A QueueEvents created for this wait can miss a job that
   * finishes before its first read of the event stream, so the unsettled jobs are also looked up once
   * early in the wait and once at its end (two pipelined reads per job at most, never a poll loop).
   */
  async function waitForResults(handles: readonly JobHandle<unknown>[], opts: WaitForResultsOptions): Promise<JobOutcome[]> {
    const { timeoutMs } = opts;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_RESULT_TIMEOUT_MS) {
      throw new ValidationError([{ path: 'timeoutMs', message: `must be an integer number of milliseconds from 0 to ${MAX_RESULT_TIMEOUT_MS}` }]);
    }
    const lookupTimeoutMs = opts.lookupTimeoutMs ?? 5_000;
    const settled = new Map<JobHandle<unknown>, JobOutcome>();
    let allDone!: () => void;
    const done = new Promise<void>((resolve) => {
      allDone = resolve;
    });
    const settle = (h: JobHandle<unknown>, outcome: JobOutcome) => {
      if (settled.has(h)) return;
      settled.set(h, outcome);
      if (settled.size === handles.length) allDone();
    };
    if (handles.length === 0) allDone();
    if (timeoutMs > 0) {
      for (const h of handles) {
        h.result({ timeoutMs }).then(
          (result) => settle(h, { state: 'completed', result }),
          // A timeout or a lost connection leaves the job pending; only a failure the job reported settles it.
          (err) => (err instanceof JobFailedError ? settle(h, { state: 'failed', failedReason: err.reason }) : undefined),
        );
      }
    }
    const lookUp = async () => {
      const open = handles.filter((h) => !settled.has(h));
      if (open.length === 0) return;
      const jobs = await withDeadlineOr(Promise.all(open.map((h) => queueOfJob(h.queue, h.id).getJob(h.id))), lookupTimeoutMs, []).catch(() => []);
      const states = await withDeadlineOr(Promise.all(jobs.map((j) => j?.getState())), lookupTimeoutMs, []).catch(() => []);
      jobs.forEach((job, i) => {
        if (!job) return;
        if (states[i] === 'completed') settle(open[i], { state: 'completed', result: job.returnvalue });
        else if (states[i] === 'failed') settle(open[i], { state: 'failed', failedReason: job.failedReason });
      });
    };
    let early: Promise<void> | undefined;
    const earlyTimer = setTimeout(
      () => {
        early = lookUp();
      },
      Math.min(500, Math.floor(timeoutMs / 2)),
    );
    await withDeadlineOr(done, timeoutMs, undefined);
    clearTimeout(earlyTimer);
    await early;
    if (settled.size < handles.length) await lookUp();
    return handles.map((h) => settled.get(h) ?? { state: 'pending' });
  }

  return {
    embed: embed as Producer['embed'],
    waitForResults,
    async dealInsights(dealIds, opts = {}) {
      const data = validate(DealBatchJobData, { dealIds, tenant: opts.tenant, trace: traceOf(opts) });
      const jobOpts = jobOptions(QUEUES.deals, opts);
      checkOpen();
      const [h] = await submit<DealInsightsResult>(
        {
          queue: QUEUES.deals,
          jobIds: [jobOpts.jobId!],
          bytes: sizeOf([data]),
          bufferable: true,
          send: () => addJobs(QUEUES.deals, [{ name: JOB_NAMES.dealInsights, data, opts: jobOpts }]),
        },
        opts,
      );
      return h;
    },
    async search(request, opts = {}) {
      const data = validate(SearchRequest, { ...request, trace: traceOf(opts) });
      const jobOpts: JobsOptions = {
        ...jobOptions(QUEUES.search, opts),
        // a search is answered in a request's time or not at all: no long retry ladder, short retention
        attempts: 2,
        backoff: { type: 'fixed', delay: 200 },
        removeOnComplete: { age: 600, count: 10_000 },
      };
      checkOpen();
      const [h] = await submit<SearchResponse>(
        {
          queue: QUEUES.search,
          jobIds: [jobOpts.jobId!],
          bytes: sizeOf([data]),
          // answered within a request or not at all: a search waiting out an outage helps nobody
          bufferable: false,
          send: async () => [await openQueue(QUEUES.search, shardOfJobId(jobOpts.jobId!)).add(JOB_NAMES.search, data, jobOpts)],
        },
        opts,
      );
      return h;
    },
    async workflow(question, opts = {}) {
      const data = validate(WorkflowJobData, {
        question,
        type: opts.type,
        requiredSources: opts.requiredSources,
        asOf: opts.asOf,
        tenant: opts.tenant,
        trace: traceOf(opts),
      });
      checkPriority(opts.priority);
      // Chosen here even without a key, so a buffered workflow has its id before it is sent, and a re-sent
      // flow is recognised by its root.
      const workflowId =
        opts.idempotencyKey === undefined ? `wf-${randomUUID()}` : idempotentJobId(QUEUES.workflows, opts.idempotencyKey).replace(/^idem-/, 'wf-');
      checkOpen();
      const tree = buildWorkflowFlow(data, {
        workflowId,
        jobOptions: { ...DEFAULT_JOB_OPTIONS, ...options.defaultJobOptions, ...(opts.priority ? { priority: opts.priority } : {}) },
      });
      const [h] = await submit<WorkflowReport>(
        {
          queue: QUEUES.workflows,
          jobIds: [workflowId],
          bytes: sizeOf([tree]),
          bufferable: true,
          async send() {
            // BullMQ would add a second tree of children under an existing root id: return the existing one.
            const existing = await openQueue(QUEUES.workflows).getJob(workflowId);
            if (existing) return [existing];
            if (!flows) {
              flows = new FlowProducer({ connection, prefix });
              // every concurrent add() listens for 'closing' until it is done; hundreds at once are normal here
              flows.setMaxListeners(0);
              flows.on('error', onError);
            }
            return [(await flows.add(tree)).job];
          },
        },
        opts,
      );
      return h;
    },
    queue,
    shardQueues: (name) => {
      checkOpen();
      return Array.from({ length: shardsHeld(name) }, (_, k) => openQueue(name, k));
    },
    queueOfJob,
    stats: () => gate.stats(),
    isBuffered: (name, id) => gate.holds(name, id),
    close({ timeoutMs = 5_000 } = {}) {
      if (!closed) checkTimeout(timeoutMs);
      closed ??= (async () => {
        const outcome = await gate.close(timeoutMs);
        // Adds gathered for this turn's batch (or still in flight) settle before the queues close.
        await withDeadlineOr(batcher.drain(), 2_000, undefined);
        observed.stop();
        // With Redis away, BullMQ's close can wait on its connection: it gets what is left of a short grace.
        const results = await withDeadlineOr(
          Promise.allSettled([
            ...(flows ? [flows.close()] : []),
            ...openEvents.map((e) => e.close()),
            ...[...queues.values()].flatMap((byShard) => [...byShard.values()].map((q) => q.close())),
          ]),
          2_000,
          [],
        );
        // quit() would wait for a reconnect that may never come; a connection that is not ready is cut.
        await Promise.allSettled(owned.map((r) => (r.status === 'ready' ? withDeadline(r.quit(), 2_000, 'quit') : r.disconnect())));
        for (const r of owned) if (r.status !== 'end') r.disconnect();
        const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
        if (failed) throw failed.reason;
        return outcome;
      })();
      return closed;
    },
  };
}
