import { createHash, randomUUID } from 'node:crypto';
import { type ConnectionOptions, FlowProducer, type Job, type JobsOptions, Queue, QueueEvents } from 'bullmq';
import IORedis, { type Redis } from 'ioredis';
import { DealBatchJobData, type DealInsightsResult } from '../contracts/deals';
import { EmbeddingJobData, type EmbeddingJobInput, type EmbeddingResult, type IndexTarget } from '../contracts/embedding';
import { JobFailedError, ResultTimeoutError, ValidationError } from '../contracts/errors';
import { JOB_DEFAULTS } from '../contracts/job-defaults';
import { isQueueName, JOB_NAMES, QUEUES, type QueueName } from '../contracts/queues';
import { SearchRequest, type SearchResponse } from '../contracts/search';
import { validate } from '../contracts/validate';
import { WorkflowJobData, type WorkflowJobInput, type WorkflowReport } from '../contracts/workflows';
import { buildWorkflowFlow } from '../flows/build-flow';
import { withDeadlineOr } from '../resilience';
import { injectTraceContext } from '../telemetry/tracing';

/** Retries and retention the fleet applies unless the caller overrides them. */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: JOB_DEFAULTS.attempts,
  backoff: { type: 'exponential', delay: JOB_DEFAULTS.backoffMs },
  removeOnComplete: { age: JOB_DEFAULTS.keepCompletedS, count: JOB_DEFAULTS.keepCompletedCount },
  removeOnFail: { age: JOB_DEFAULTS.keepFailedS },
};

export interface ProducerOptions {
  /** Redis: an ioredis instance (not closed by the producer) or connection options / URL. Required. */
  connection: Redis | ConnectionOptions | string;
  /** BullMQ key prefix; must match the workers'. Default `{fleet}`. */
  prefix?: string;
  /** Defaults for every job (attempts, backoff, retention), merged over DEFAULT_JOB_OPTIONS. */
  defaultJobOptions?: JobsOptions;
  /**
   * Connection errors of the producer's queues (Redis restarting, a network cut). Commands wait for the
   * reconnect, so these are informational. Default: one line on stderr at most every 10 s (BullMQ would
   * otherwise print every reconnect attempt with its stack).
   */
  onError?: (err: Error) => void;
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
    process.stderr.write(
      `fleet producer: Redis connection error: ${err.message}${suppressed ? ` (${suppressed} more since the last line)` : ''}; commands wait for the reconnect\n`,
    );
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
  /** Trace context (W3C headers) carried in the job for the worker's spans. */
  trace?: Record<string, string>;
}

export interface EmbedOptions extends EnqueueOptions {
  model?: EmbeddingJobInput['model'];
  /** Upsert the vector into the search index under this namespace and id. For a batch, ids are per text. */
  index?: IndexTarget | IndexTarget[];
}

/** A job enqueued by the producer. */
export interface JobHandle<R> {
  readonly queue: QueueName;
  readonly id: string;
  /** Waits for the job to finish; rejects with JobFailedError or ResultTimeoutError. Default timeout 30 s. */
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
  /** The underlying queues (for callers that need BullMQ directly, e.g. Bull Board). */
  queue(name: QueueName): Queue;
  close(): Promise<void>;
}

/**
 * Maps an idempotency key to a job id BullMQ accepts (no `:`, not integer-like), stable across
 * processes and languages: `idem-` + base64url(sha256(queue + key)).
 */
export function idempotentJobId(queue: QueueName, key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512) {
    throw new ValidationError([{ path: 'idempotencyKey', message: 'must be a string of 1-512 characters' }]);
  }
  return `idem-${createHash('sha256').update(`${queue}\u0000${key}`).digest('base64url').slice(0, 32)}`;
}

/** The caller's trace context travels in the job, so the worker's spans join the caller's trace. */
function traceOf(opts: EnqueueOptions): Record<string, string> | undefined {
  if (opts.trace) return opts.trace;
  const injected = injectTraceContext();
  return Object.keys(injected).length ? injected : undefined;
}

/** Longest timer Node honours; a longer (or Infinity) delay fires after 1 ms, with a warning. */
export const MAX_RESULT_TIMEOUT_MS = 2_147_483_647;

/** BullMQ waits forever on a NaN or 0 timeout and gives up at once on a negative or too large one. */
function checkTimeout(timeoutMs: unknown): void {
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_RESULT_TIMEOUT_MS) {
    throw new ValidationError([{ path: 'timeoutMs', message: `must be a number of milliseconds from 1 to ${MAX_RESULT_TIMEOUT_MS}` }]);
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
  const prefix = options.prefix ?? '{fleet}';
  const owned: Redis[] = [];
  const connection: Redis | ConnectionOptions = (() => {
    if (typeof options.connection === 'string') {
      const r = new IORedis(options.connection, { maxRetriesPerRequest: null });
      owned.push(r);
      return r;
    }
    return options.connection;
  })();
  const queues = new Map<QueueName, Queue>();
  const events = new Map<QueueName, Promise<QueueEvents>>();
  const openEvents: QueueEvents[] = [];
  let flows: FlowProducer | undefined;
  let closed: Promise<void> | undefined;
  const onError = options.onError ?? throttledStderr();

  const queue = (name: QueueName) => {
    if (closed) throw new Error('producer is closed');
    // A JavaScript caller can pass any string; BullMQ would open a queue nobody works on.
    if (typeof name !== 'string' || !isQueueName(name)) {
      throw new ValidationError([{ path: 'queue', message: `unknown queue ${JSON.stringify(name)}; known queues: ${Object.values(QUEUES).join(', ')}` }]);
    }
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection, prefix, defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, ...options.defaultJobOptions } });
      q.on('error', onError);
      // each pending result() (job.waitUntilFinished) listens for the queue's 'closing'; hundreds at once are normal
      q.setMaxListeners(0);
      queues.set(name, q);
    }
    return q;
  };

  // QueueEvents blocks on XREAD, so it gets its own connection. It reads from the stream's last entry as
  // of its creation, not from '$': BullMQ's QueueEvents issues its first XREAD '$' some time after it is
  // "ready", and job.waitUntilFinished's own isFinished check runs once it is ready, so a job finishing in
  // between was never seen (found under load: a completed job's result() timing out).
  const queueEvents = (name: QueueName): Promise<QueueEvents> => {
    let ready = events.get(name);
    if (!ready) {
      ready = (async () => {
        const eventsKey = queue(name).keys.events;
        const reader = connection instanceof IORedis ? connection : new IORedis(connection as import('ioredis').RedisOptions);
        const last = await reader.xrevrange(eventsKey, '+', '-', 'COUNT', 1).finally(() => (reader === connection ? undefined : reader.quit()));
        const conn = connection instanceof IORedis ? connection.duplicate() : connection;
        if (conn instanceof IORedis) owned.push(conn);
        const qe = new QueueEvents(name, { connection: conn, prefix, lastEventId: last[0]?.[0] ?? '0-0' });
        qe.on('error', onError);
        openEvents.push(qe);
        await qe.waitUntilReady();
        return qe;
      })();
      // A failed start (Redis away) is not kept: the next result() tries again.
      ready.catch(() => events.delete(name));
      events.set(name, ready);
    }
    return ready;
  };

  const handle = <R>(name: QueueName, job: Job): JobHandle<R> => ({
    queue: name,
    id: job.id!,
    async result({ timeoutMs = 30_000 } = {}) {
      checkTimeout(timeoutMs);
      const qe = await queueEvents(name);
      try {
        return (await job.waitUntilFinished(qe, timeoutMs)) as R;
      } catch (err) {
        const msg = (err as Error).message ?? String(err);
        if (/timed out before finishing/i.test(msg)) throw new ResultTimeoutError(name, job.id!, timeoutMs);
        throw new JobFailedError(name, job.id!, msg);
      }
    },
  });

  const jobOptions = (name: QueueName, opts: EnqueueOptions, keySuffix?: string): JobsOptions => {
    checkPriority(opts.priority);
    return {
      // Always a job id chosen here, never Redis's counter: when ioredis re-sends an add after a reconnect
      // (the first one may have run before the connection dropped), BullMQ finds the id and adds nothing.
      jobId:
        opts.idempotencyKey !== undefined
          ? idempotentJobId(name, keySuffix === undefined ? opts.idempotencyKey : `${opts.idempotencyKey}#${keySuffix}`)
          : `j-${randomUUID()}`,
      ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
    };
  };

  async function embed(input: string | string[], opts: EmbedOptions = {}): Promise<JobHandle<EmbeddingResult> | JobHandle<EmbeddingResult>[]> {
    const many = Array.isArray(input);
    const texts = many ? input : [input];
    if (many && (texts.length === 0 || texts.length > 10_000)) {
      throw new ValidationError([{ path: 'texts', message: 'must contain 1 to 10,000 texts per call' }]);
    }
    const targets = opts.index === undefined ? undefined : Array.isArray(opts.index) ? opts.index : [opts.index];
    if (targets && targets.length !== texts.length) {
      throw new ValidationError([{ path: 'index', message: `must have one target per text (${texts.length}), got ${targets.length}` }]);
    }
    // Validate everything before anything is enqueued: a bad text in a batch enqueues none.
    const issues: { path: string; message: string }[] = [];
    const payloads = texts.map((text, i) => {
      try {
        return validate(EmbeddingJobData, { text, model: opts.model, index: targets?.[i], trace: traceOf(opts) });
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        for (const issue of err.issues)
          issues.push({ path: many ? `texts[${i}]${issue.path === 'text' ? '' : `.${issue.path}`}` : issue.path, message: issue.message });
        return undefined;
      }
    });
    if (issues.length) throw new ValidationError(issues);
    const q = queue(QUEUES.embeddings);
    // One text: a plain add (addBulk wraps even one job in MULTI, about 3x the CPU); several: one round trip.
    const jobs = many
      ? await q.addBulk(payloads.map((data, i) => ({ name: JOB_NAMES.embed, data: data!, opts: jobOptions(QUEUES.embeddings, opts, String(i)) })))
      : [await q.add(JOB_NAMES.embed, payloads[0]!, jobOptions(QUEUES.embeddings, opts))];
    const handles = jobs.map((j) => handle<EmbeddingResult>(QUEUES.embeddings, j));
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
      const jobs = await withDeadlineOr(Promise.all(open.map((h) => queue(h.queue).getJob(h.id))), lookupTimeoutMs, []).catch(() => []);
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
      const data = validate(DealBatchJobData, { dealIds, trace: traceOf(opts) });
      const job = await queue(QUEUES.deals).add(JOB_NAMES.dealInsights, data, jobOptions(QUEUES.deals, opts));
      return handle<DealInsightsResult>(QUEUES.deals, job);
    },
    async search(request, opts = {}) {
      const data = validate(SearchRequest, { ...request, trace: traceOf(opts) });
      const job = await queue(QUEUES.search).add(JOB_NAMES.search, data, {
        ...jobOptions(QUEUES.search, opts),
        // a search is answered in a request's time or not at all: no long retry ladder, short retention
        attempts: 2,
        backoff: { type: 'fixed', delay: 200 },
        removeOnComplete: { age: 600, count: 10_000 },
      });
      return handle<SearchResponse>(QUEUES.search, job);
    },
    async workflow(question, opts = {}) {
      const data = validate(WorkflowJobData, { question, type: opts.type, requiredSources: opts.requiredSources, asOf: opts.asOf, trace: traceOf(opts) });
      checkPriority(opts.priority);
      const workflowId = opts.idempotencyKey === undefined ? undefined : idempotentJobId(QUEUES.workflows, opts.idempotencyKey).replace(/^idem-/, 'wf-');
      if (workflowId) {
        // BullMQ would add a second tree of children under an existing root id: return the existing one.
        const existing = await queue(QUEUES.workflows).getJob(workflowId);
        if (existing) return handle<WorkflowReport>(QUEUES.workflows, existing);
      }
      if (closed) throw new Error('producer is closed');
      if (!flows) {
        flows = new FlowProducer({ connection, prefix });
        // every concurrent add() listens for 'closing' until it is done; hundreds at once are normal here
        flows.setMaxListeners(0);
        flows.on('error', onError);
      }
      const tree = buildWorkflowFlow(data, {
        workflowId,
        jobOptions: { ...DEFAULT_JOB_OPTIONS, ...options.defaultJobOptions, ...(opts.priority ? { priority: opts.priority } : {}) },
      });
      const node = await flows.add(tree);
      return handle<WorkflowReport>(QUEUES.workflows, node.job);
    },
    queue,
    close() {
      closed ??= (async () => {
        const results = await Promise.allSettled([
          ...(flows ? [flows.close()] : []),
          ...openEvents.map((e) => e.close()),
          ...[...queues.values()].map((q) => q.close()),
        ]);
        await Promise.allSettled(owned.map((r) => r.quit()));
        const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
        if (failed) throw failed.reason;
      })();
      return closed;
    },
  };
}
