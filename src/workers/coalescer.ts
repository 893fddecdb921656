import { randomBytes } from 'node:crypto';
import type { SpanContext } from '@opentelemetry/api';
import PQueue from 'p-queue';
import { currentSpanContext, withBatchSpan } from '../telemetry/tracing';

/** Identifies one batch call; jobs record it so an operator can see which call served them. */
export interface BatchInfo {
  batchId: string;
  /** Distinct keys in the call. */
  size: number;
  /** Loads (jobs) the call answers: `size` plus the identical keys that joined them. */
  jobs: number;
}

/** The QUERY_TAG fields of a batch's statement: which queue, which batch, how many jobs. */
export function batchTag(queue: string, batch: BatchInfo): { queue: string; batchId: string; jobs: number } {
  return { queue, batchId: batch.batchId, jobs: batch.jobs };
}

/** A value and the batch that produced it. */
export interface Loaded<V> {
  value: V;
  batch: BatchInfo;
}

/** Reported after every batch call (including the halves of a split). A throwing listener is ignored. */
export interface BatchEvent {
  name: string;
  batch: BatchInfo;
  durationMs: number;
  ok: boolean;
  error?: unknown;
  /** True when this call is a half of a failed batch being bisected to isolate a bad item. */
  split: boolean;
  /**
   * Jobs the statement's tag counted when it was sent (`batchTag`). `batch.jobs` of a successful call counts every
   * load it answered, including identical keys that joined it while it was in flight.
   */
  taggedJobs?: number;
  /**
   * Snowflake's query id of the statement that answered the batch, when `loadBatch` reported it
   * (`BatchCall.onQueryId`). A failed statement's is on its error (`WarehouseError.queryId`).
   */
  queryId?: string;
}

/** What a `loadBatch` call may report about itself, carried to its BatchEvent. */
interface BatchCall {
  /**
   * Records the query id of the statement that answers the batch (the last one reported wins). Fits a
   * warehouse query's `onQueryId` option as it is.
   */
  readonly onQueryId: (queryId: string) => void;
}

/** The batch whose call failed each error a coalescer rejected a load with (see `batchThatFailed`). */
const failedIn = new WeakMap<object, BatchInfo>();

/**
 * The batch that failed a load with `err`: the batch whose call threw it (after a bisection, the smallest
 * batch that failed), or the batch that answered the key with its own Error. Undefined for any other error.
 * A processor names it in the failed job's log, so the failed batch is found like a served one.
 *
 * @example
 *   try { await coalescer.load(text) } catch (err) { const failed = batchThatFailed(err) }
 */
export function batchThatFailed(err: unknown): BatchInfo | undefined {
  return typeof err === 'object' && err !== null ? failedIn.get(err) : undefined;
}

export interface CoalescerOptions<K, V> {
  /** Prefix of batch ids and label in events, e.g. `emb`. Required. */
  name: string;
  /**
   * Loads many keys in one call. Must return one entry per key, in the same order: the value, or an
   * Error for a key that failed on its own (only that key's caller sees it). Throwing fails the batch.
   * `call` takes what the call reports about itself (its statement's query id) for the BatchEvent.
   * Required.
   */
  loadBatch: (keys: K[], batch: BatchInfo, call: BatchCall) => Promise<Array<V | Error>>;
  /** Most distinct keys in one call. Default 500. */
  maxBatchSize?: number;
  /** Longest the first key of a batch waits for the batch to fill. Default 25 ms; 0 = the loads of one event-loop turn. */
  maxWaitMs?: number;
  /**
   * Adaptive batching when set (ms; `maxWaitMs` is then unused): the longest a key waits for company. A batch
   * is sent sooner, once a statement slot is free and waiting would not pay: when it holds at least the keys
   * that arrive per slot during one statement (estimated from the arrival rate and the duration of recent
   * statements), so a lone key under light load goes at once and batches grow with load, up to `maxBatchSize`.
   * Default: unset (fixed window).
   */
  targetMs?: number;
  /** Batch calls in flight at once; set it to the warehouse pool size. Default 8. */
  maxConcurrentBatches?: number;
  /** Identity of a key for de-duplication. Default `String(key)`. */
  keyOf?: (key: K) => string;
  /**
   * Whether a failed batch should be bisected to find the item that breaks it. Default: unless the
   * error says it is transient (`err.transient === true`: timeout, warehouse down), where splitting
   * would only multiply calls that fail the same way.
   */
  shouldSplit?: (err: unknown) => boolean;
  onBatch?: (event: BatchEvent) => void;
}

export interface CoalescerStats {
  /** Batch calls made, including split halves. */
  batches: number;
  /** Keys requested through `load`. */
  requested: number;
  /** Requests answered by joining an identical pending or in-flight key. */
  deduplicated: number;
  /** Batches bisected after a failure. */
  splits: number;
  pending: number;
  inFlightBatches: number;
}

interface Waiter<V> {
  resolve: (loaded: Loaded<V>) => void;
  reject: (err: unknown) => void;
  /** The caller's span (its job), linked from the batch span that serves it. */
  span?: SpanContext;
}

interface Entry<K, V> {
  id: string;
  key: K;
  waiters: Waiter<V>[];
  /** When the key arrived (performance.now()), for the adaptive mode's deadline. */
  at: number;
}

/** Weight of a new sample in the adaptive mode's moving averages. */
const EWMA_ALPHA = 0.2;

/**
 * DataLoader-style coalescing across concurrently running jobs: `load(key)` calls made while other jobs
 * are being processed are gathered into one `loadBatch` call, flushed when `maxBatchSize` distinct keys
 * are waiting or `maxWaitMs` after the first one, whichever comes first. Identical keys (pending or in
 * flight) are loaded once. At most `maxConcurrentBatches` calls run at once (p-queue); a batch is cut
 * when its call can start, not when it is scheduled, so batches grow while the warehouse is busy.
 *
 * With `targetMs` the window adapts instead (decision 0029): a batch goes once a slot is free and waiting
 * would not pay, and at the latest `targetMs` after its first key.
 *
 * Unlike DataLoader there is no memo cache (a long-lived one leaks): caching is the two-tier cache's job.
 *
 * @example
 *   const embed = new Coalescer({ name: 'emb', loadBatch: (texts) => embedTexts(warehouse, texts, model) });
 *   const { value, batch } = await embed.load('renewal is at risk');
 */
export class Coalescer<K, V> {
  private readonly name: string;
  private readonly loadBatch: CoalescerOptions<K, V>['loadBatch'];
  private readonly maxBatchSize: number;
  private readonly maxWaitMs: number;
  private readonly targetMs?: number;
  private readonly concurrency: number;
  /** Adaptive mode's estimates: EWMA of the gap between new keys and of a statement's duration (ms). */
  private gapMs?: number;
  /** Until a statement has been timed, assumed to take `targetMs`: dense arrivals then wait to fill a batch. */
  private statementMs: number;
  private statementSamples = 0;
  private lastArrival = 0;
  /** Batch tasks running (a slot is free when fewer than `concurrency`). */
  private running = 0;
  private decideQueued = false;
  private readonly keyOf: (key: K) => string;
  private readonly shouldSplit: (err: unknown) => boolean;
  private readonly onBatch?: (event: BatchEvent) => void;
  private readonly queue: PQueue;
  private readonly pending = new Map<string, Entry<K, V>>();
  private readonly inFlight = new Map<string, Entry<K, V>>();
  private readonly idPrefix = randomBytes(3).toString('hex');
  private seq = 0;
  private scheduled = 0;
  private timer?: { cancel(): void };
  private closed = false;
  private readonly counters = { batches: 0, requested: 0, deduplicated: 0, splits: 0 };

  constructor(opts: CoalescerOptions<K, V>) {
    if (!opts?.name) throw new TypeError('Coalescer: option `name` is required');
    if (typeof opts.loadBatch !== 'function') throw new TypeError('Coalescer: option `loadBatch` must be a function');
    this.name = opts.name;
    this.loadBatch = opts.loadBatch;
    this.maxBatchSize = opts.maxBatchSize ?? 500;
    this.maxWaitMs = opts.maxWaitMs ?? 25;
    const concurrency = opts.maxConcurrentBatches ?? 8;
    this.targetMs = opts.targetMs;
    this.statementMs = opts.targetMs ?? 0;
    this.concurrency = concurrency;
    if (!Number.isInteger(this.maxBatchSize) || this.maxBatchSize < 1)
      throw new RangeError(`Coalescer: option \`maxBatchSize\` must be an integer >= 1, got ${opts.maxBatchSize}`);
    if (!(this.maxWaitMs >= 0)) throw new RangeError(`Coalescer: option \`maxWaitMs\` must be >= 0, got ${opts.maxWaitMs}`);
    if (this.targetMs !== undefined && !(this.targetMs >= 0 && Number.isFinite(this.targetMs)))
      throw new RangeError(`Coalescer: option \`targetMs\` must be a finite number >= 0, got ${opts.targetMs}`);
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new RangeError(`Coalescer: option \`maxConcurrentBatches\` must be an integer >= 1, got ${opts.maxConcurrentBatches}`);
    this.keyOf = opts.keyOf ?? ((k) => String(k));
    this.shouldSplit = opts.shouldSplit ?? ((err) => (err as { transient?: unknown })?.transient !== true);
    this.onBatch = opts.onBatch;
    this.queue = new PQueue({ concurrency });
  }

  /** Loads one key through the next batch. Rejects with that key's own error or the batch's error. */
  load(key: K): Promise<Loaded<V>> {
    if (this.closed) return Promise.reject(new Error(`Coalescer ${this.name} is closed`));
    this.counters.requested++;
    const id = this.keyOf(key);
    const span = currentSpanContext();
    return new Promise<Loaded<V>>((resolve, reject) => {
      const existing = this.pending.get(id) ?? this.inFlight.get(id);
      if (existing) {
        this.counters.deduplicated++;
        existing.waiters.push({ resolve, reject, span });
        return;
      }
      const at = performance.now();
      if (this.targetMs !== undefined) this.noteArrival(at);
      this.pending.set(id, { id, key, waiters: [{ resolve, reject, span }], at });
      this.schedule(false);
    });
  }

  stats(): CoalescerStats {
    return { ...this.counters, pending: this.pending.size, inFlightBatches: this.queue.pending };
  }

  /** Flushes what is pending and waits for every batch call to finish. Further loads reject. */
  async close(): Promise<void> {
    this.closed = true;
    this.schedule(true);
    await this.queue.onIdle();
  }

  /**
   * Makes sure enough batch tasks are queued for the pending keys: one per full batch, plus one for the
   * remainder when `force` (the wait window expired). Starts the wait window for a remainder.
   */
  private schedule(force: boolean): void {
    const unclaimed = this.pending.size - this.scheduled * this.maxBatchSize;
    const needed = force ? Math.ceil(unclaimed / this.maxBatchSize) : Math.floor(unclaimed / this.maxBatchSize);
    for (let i = 0; i < needed; i++) {
      this.scheduled++;
      void this.queue.add(async () => {
        this.scheduled--;
        this.running++;
        try {
          await this.runNext();
        } finally {
          this.running--;
          // A slot is free again: the keys that gathered meanwhile may now be worth a statement.
          if (this.targetMs !== undefined && !this.closed) this.decide();
        }
      });
    }
    if (force) {
      this.timer?.cancel();
      this.timer = undefined;
    } else if (this.targetMs !== undefined) {
      // Decided once per event-loop turn, so the keys one turn brings are weighed together.
      if (this.pending.size > this.scheduled * this.maxBatchSize && !this.decideQueued) {
        this.decideQueued = true;
        setImmediate(() => {
          this.decideQueued = false;
          this.decide();
        });
      }
    } else if (this.pending.size > this.scheduled * this.maxBatchSize && !this.timer) {
      const fire = () => {
        this.timer = undefined;
        this.schedule(true);
      };
      // A zero window still gathers every load made in the same turn of the event loop (setImmediate
      // runs after them); setTimeout(0) would add Node's 1 ms clamp.
      if (this.maxWaitMs === 0) {
        const h = setImmediate(fire);
        this.timer = { cancel: () => clearImmediate(h) };
      } else {
        const h = setTimeout(fire, this.maxWaitMs);
        this.timer = { cancel: () => clearTimeout(h) };
      }
    }
  }

  /** Adaptive mode: a new key arrived at `now`; updates the inter-arrival estimate. */
  private noteArrival(now: number): void {
    if (this.lastArrival > 0) {
      // A gap longer than the target says no more than "quiet"; capping it lets the estimate recover within a few keys.
      const gap = Math.min(now - this.lastArrival, Math.max(this.targetMs ?? 0, this.statementMs, 1));
      this.gapMs = this.gapMs === undefined ? gap : this.gapMs + EWMA_ALPHA * (gap - this.gapMs);
    }
    this.lastArrival = now;
  }

  /**
   * Adaptive mode: sends the keys not yet claimed by a batch task now, or sets the timer for when to look
   * again. With a statement slot free, a batch goes once it holds its share of the keys expected during one
   * statement: statement time / gap between keys, divided over the free slots. Under light load that is
   * less than one key, so a lone key goes at once; as slots fill, the share grows towards all the keys of a
   * statement time (Nagle's "one in flight, accumulate"), up to `maxBatchSize`. A lull counts as a growing
   * gap, so the tail of a burst goes too. Without a free slot the batch keeps
   * growing (it is cut when its call starts). The target bounds every key's wait either way.
   */
  private decide(): void {
    const unclaimed = this.pending.size - this.scheduled * this.maxBatchSize;
    if (unclaimed <= 0 || this.closed) return;
    const now = performance.now();
    const oldest = this.pending.values().next().value as Entry<K, V>;
    const deadline = oldest.at + (this.targetMs ?? 0);
    if (now >= deadline) {
      this.schedule(true);
      return;
    }
    let wake = deadline;
    const free = this.concurrency - this.running - this.scheduled;
    if (free > 0) {
      const usual = this.gapMs ?? Number.POSITIVE_INFINITY;
      const silence = now - this.lastArrival;
      // A lull counts once it is longer than two usual gaps and than a slot's share of a statement: a worker
      // under load receives jobs in bursts a Redis round trip apart, and a pause between them is not quiet.
      const quietAfter = Math.max(2 * usual, this.statementMs / this.concurrency);
      const gap = silence > quietAfter ? silence : usual;
      const share = Math.min(this.maxBatchSize, this.statementMs / (free * gap));
      if (unclaimed >= share) {
        this.schedule(true);
        return;
      }
      // When the silence since the last key will have made this batch its share.
      const quietAt = this.lastArrival + Math.max(quietAfter, this.statementMs / (free * unclaimed));
      wake = Math.min(deadline, quietAt);
    }
    this.timer?.cancel();
    const h = setTimeout(
      () => {
        this.timer = undefined;
        this.decide();
      },
      Math.max(0, wake - now),
    );
    this.timer = { cancel: () => clearTimeout(h) };
  }

  private async runNext(): Promise<void> {
    if (this.pending.size === 0) return;
    const entries: Entry<K, V>[] = [];
    for (const entry of this.pending.values()) {
      entries.push(entry);
      this.inFlight.set(entry.id, entry);
      if (entries.length === this.maxBatchSize) break;
    }
    for (const e of entries) this.pending.delete(e.id);
    // Keys that arrived while this call waited for a slot start a new window.
    if (this.pending.size > 0) this.schedule(false);
    try {
      await this.runEntries(entries, `${this.name}-${this.idPrefix}-${++this.seq}`, false);
    } finally {
      for (const e of entries) this.settle(e);
    }
  }

  private async runEntries(entries: Entry<K, V>[], batchId: string, split: boolean): Promise<void> {
    const batch: BatchInfo = { batchId, size: entries.length, jobs: entries.reduce((n, e) => n + e.waiters.length, 0) };
    this.counters.batches++;
    const started = performance.now();
    let queryId: string | undefined;
    const call: BatchCall = {
      onQueryId: (id) => {
        queryId = id;
      },
    };
    const reported = () => (queryId ? { queryId } : {});
    let results: Array<V | Error>;
    try {
      // One span per batch call, linking the spans of the jobs it serves (a batch has many parents).
      const links = entries.flatMap((e) => e.waiters.map((w) => w.span));
      results = await withBatchSpan(
        `batch ${this.name}`,
        links,
        { 'fleet.batch.id': batchId, 'fleet.batch.size': entries.length, 'fleet.batch.jobs': batch.jobs, 'fleet.batch.split': split },
        () =>
          this.loadBatch(
            entries.map((e) => e.key),
            batch,
            call,
          ),
      );
      if (!Array.isArray(results) || results.length !== entries.length) {
        throw new Error(
          `Coalescer ${this.name}: loadBatch returned ${Array.isArray(results) ? results.length : typeof results} results for ${entries.length} keys`,
        );
      }
    } catch (err) {
      this.emit({ name: this.name, batch, durationMs: performance.now() - started, ok: false, error: err, split, ...reported() });
      if (entries.length > 1 && this.shouldSplit(err)) {
        // Bisect: the halves that succeed complete; the item that breaks the call is isolated.
        this.counters.splits++;
        const mid = Math.ceil(entries.length / 2);
        await this.runEntries(entries.slice(0, mid), `${batchId}.1`, true);
        await this.runEntries(entries.slice(mid), `${batchId}.2`, true);
        return;
      }
      if (typeof err === 'object' && err !== null) failedIn.set(err, batch);
      for (const e of entries) {
        this.settle(e);
        for (const w of e.waiters) w.reject(err);
      }
      return;
    }
    const durationMs = performance.now() - started;
    if (!split) {
      this.statementMs = this.statementSamples++ === 0 ? durationMs : this.statementMs + EWMA_ALPHA * (durationMs - this.statementMs);
    }
    // Loads of the same keys that joined while the call was in flight are answered too: the event counts them.
    const answered = entries.reduce((n, e) => n + e.waiters.length, 0);
    this.emit({ name: this.name, batch: { ...batch, jobs: answered }, taggedJobs: batch.jobs, durationMs, ok: true, split, ...reported() });
    entries.forEach((e, i) => {
      const r = results[i];
      this.settle(e);
      if (r instanceof Error) failedIn.set(r, batch);
      for (const w of e.waiters) {
        if (r instanceof Error) w.reject(r);
        else w.resolve({ value: r, batch });
      }
    });
  }

  /**
   * An entry leaves the in-flight set the moment its waiters are answered, not when its whole batch
   * (with split halves still running) ends: a later load of the same key — a retry of a job that just
   * failed — must start a new load, not join one whose answer was already given.
   */
  private settle(entry: Entry<K, V>): void {
    if (this.inFlight.get(entry.id) === entry) this.inFlight.delete(entry.id);
  }

  private emit(event: BatchEvent): void {
    try {
      this.onBatch?.(event);
    } catch {
      // a listener must never break batching
    }
  }
}
