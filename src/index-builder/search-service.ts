import type { Cluster, Redis } from 'ioredis';
import { MAX_FILTER_VALUES } from '../contracts/search';
import { activeFleetMetrics } from '../telemetry/active-metrics';
import type { Logger } from '../telemetry/logger';
import type { FleetMetrics } from '../telemetry/metrics';
import { IndexClosedError } from './errors/index-closed-error';
import { IndexNotReadyError } from './errors/index-not-ready-error';
import { IndexOptionError } from './errors/index-option-error';
import { SafeEmitter } from './events';
import { IndexThread } from './index-thread';
import { isActiveFilter, type SearchFilter } from './item-metadata';
import type { BatchAnswer, BatchQuery, NamespacedHit, QueryAnswer } from './namespaced-index';
import { integerIn, isValidId, isValidNamespace, oneOf } from './settings';
import { type SnapshotRef, SnapshotStore } from './snapshot-store';
import { snapshotChannel } from './upsert-stream';
import { DEFAULT_EXACT_FILTER_MAX, type OpenMode } from './vector-index';

/** Options of `createSearchService`. Durations in ms. */
export interface SearchServiceOptions {
  /** Redis whose `duplicate()` subscribes to snapshot announcements. Required; not closed by the service. */
  redis: Redis | Cluster;
  /** Same prefix as the builder. Required. */
  prefix: string;
  /** The builder's snapshot folder (a shared volume, or the same pod). Required. */
  snapshotDir: string;
  /**
   * `view` (default) memory-maps the index files: opens in milliseconds, pages shared by all threads
   * and with the page cache, read-only. `load` copies them into RAM (use it when the folder is on a
   * network filesystem where mmap is unreliable).
   */
  mode?: OpenMode;
  /** Overrides the snapshot's `expansionSearch` (ef) for this replica. Default: the snapshot's. 1–4096. */
  expansionSearch?: number;
  /**
   * A filter matching at most `max(exactFilterMax, 32 × k)` items is answered exactly from the
   * snapshot's vector file (every matching item can be returned); a larger one by over-fetching from
   * the graph. Snapshots without a vector file always over-fetch. Default 2 048; 0 always over-fetches;
   * 0–1 000 000.
   */
  exactFilterMax?: number;
  /** Index threads per loaded snapshot; queries go to the least busy. Default 1; 1–64. With `view` extra threads cost little memory. */
  threads?: number;
  /** Fallback check for a newer snapshot, for announcements missed while disconnected. Default 30 000; 0 disables; else 100–3 600 000. */
  pollMs?: number;
  /** Largest `k` accepted. Default 1 000; 1–10 000. */
  maxK?: number;
  /** How long a replaced snapshot waits for its in-flight queries before its threads stop anyway. Default 30 000; 0–600 000. */
  drainTimeoutMs?: number;
  /**
   * Coalesce concurrent queries: while an index thread is busy, queries queue, and the thread then
   * takes all of them (up to `maxBatch`) in one message and one multi-query USearch call spread over
   * `batchThreads` cores. A query arriving at an idle thread leaves at once (with those from the same
   * tick), so a lone query waits for nothing. Default true; false sends each query on its own.
   */
  coalesce?: boolean;
  /** Most queries in one coalesced batch. Default 256; 1–10 000. */
  maxBatch?: number;
  /** Native threads one batched call uses; 0 = every core. Default 0; 0–256. */
  batchThreads?: number;
  /** Extra time an idle thread waits for more queries after the first (coalescing only). Default 0; 0–100. */
  coalesceWindowMs?: number;
  logger?: Logger;
  /** Reports the served snapshot's size and version (`fleet_index_*{index_role="search"}`). Default: the process's telemetry, if started. */
  metrics?: Pick<FleetMetrics, 'observeIndex'>;
}

interface CompiledSearchOptions {
  redis: Redis | Cluster;
  prefix: string;
  snapshotDir: string;
  mode: OpenMode;
  expansionSearch?: number;
  exactFilterMax: number;
  threads: number;
  pollMs: number;
  maxK: number;
  drainTimeoutMs: number;
  coalesce: boolean;
  maxBatch: number;
  batchThreads: number;
  coalesceWindowMs: number;
  logger?: Logger;
  metrics?: Pick<FleetMetrics, 'observeIndex'>;
}

/** Answer of `SearchService.search`. */
export interface SearchResult {
  /** Closest first. `score`: cosine similarity for `cos`. */
  hits: NamespacedHit[];
  /** Version of the snapshot that answered (all hits come from one snapshot). */
  snapshotVersion: number;
  /** Filtered searches: how many items (in the namespaces searched) match the filter. */
  matching?: number;
}

export interface SearchServiceEvents extends Record<string, unknown> {
  /** A newer snapshot is now serving. */
  swapped: { from: number | null; to: number; loadMs: number };
  /** A snapshot was refused (corrupt, partial) or failed to open; the current one keeps serving. */
  refused: { version: number | null; error: Error };
}

function compile(opts: SearchServiceOptions): CompiledSearchOptions {
  if (!opts || typeof opts !== 'object') throw new IndexOptionError('options', opts, 'an object');
  if (!opts.redis || typeof (opts.redis as Partial<Redis>).duplicate !== 'function')
    throw new IndexOptionError('redis', typeof opts.redis, 'an ioredis client');
  if (typeof opts.prefix !== 'string' || opts.prefix.length === 0) throw new IndexOptionError('prefix', opts.prefix, 'a non-empty string');
  if (typeof opts.snapshotDir !== 'string' || opts.snapshotDir.length === 0) throw new IndexOptionError('snapshotDir', opts.snapshotDir, 'a folder path');
  const pollMs = opts.pollMs ?? 30_000;
  if (pollMs !== 0) integerIn('pollMs', pollMs, 100, 3_600_000);
  return {
    redis: opts.redis,
    prefix: opts.prefix,
    snapshotDir: opts.snapshotDir,
    mode: oneOf('mode', opts.mode ?? 'view', ['view', 'load'] as const),
    expansionSearch: opts.expansionSearch === undefined ? undefined : integerIn('expansionSearch', opts.expansionSearch, 1, 4096),
    exactFilterMax: integerIn('exactFilterMax', opts.exactFilterMax ?? DEFAULT_EXACT_FILTER_MAX, 0, 1_000_000),
    threads: integerIn('threads', opts.threads ?? 1, 1, 64),
    pollMs,
    maxK: integerIn('maxK', opts.maxK ?? 1_000, 1, 10_000),
    drainTimeoutMs: integerIn('drainTimeoutMs', opts.drainTimeoutMs ?? 30_000, 0, 600_000),
    coalesce: opts.coalesce === undefined ? true : booleanOption('coalesce', opts.coalesce),
    maxBatch: integerIn('maxBatch', opts.maxBatch ?? 256, 1, 10_000),
    batchThreads: integerIn('batchThreads', opts.batchThreads ?? 0, 0, 256),
    coalesceWindowMs: integerIn('coalesceWindowMs', opts.coalesceWindowMs ?? 0, 0, 100),
    logger: opts.logger,
    metrics: opts.metrics ?? activeFleetMetrics(),
  };
}

function booleanOption(option: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new IndexOptionError(option, value, 'true or false');
  return value;
}

/** Checks a filter's shape (the contracts' schema does the same for API and queue input); throws RangeError. */
function checkFilter(filter: unknown): SearchFilter | undefined {
  if (filter === undefined) return undefined;
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) throw new RangeError('filter must be an object');
  const f = filter as Record<string, unknown>;
  for (const key of Object.keys(f))
    if (!['tenant', 'dealId', 'from', 'to'].includes(key)) throw new RangeError(`filter.${key} is not a filter field (tenant, dealId, from, to)`);
  for (const field of ['tenant', 'dealId'] as const) {
    const v = f[field];
    if (v === undefined) continue;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_FILTER_VALUES || !list.every(isValidId)) {
      throw new RangeError(`filter.${field} must be an id or a list of 1 to ${MAX_FILTER_VALUES} ids`);
    }
  }
  for (const field of ['from', 'to'] as const) {
    const v = f[field];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) throw new RangeError(`filter.${field} must be a time in ms since the epoch`);
  }
  return f as SearchFilter;
}

interface QueuedQuery {
  vector: Float32Array;
  query: BatchQuery;
  resolve: (a: QueryAnswer) => void;
  reject: (e: Error) => void;
}

type BatchPolicy = Pick<CompiledSearchOptions, 'coalesce' | 'maxBatch' | 'batchThreads' | 'coalesceWindowMs'>;

/**
 * One loaded snapshot: its threads, and how many queries are running on it. Retired when a newer one
 * takes over; its threads stop when the last of its queries returns (or after the drain timeout).
 */
class Generation {
  private inFlight = 0;
  private retired = false;
  private closing = false;
  private drainTimer?: NodeJS.Timeout;
  private markStopped!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.markStopped = resolve));

  private readonly queue: QueuedQuery[] = [];
  private readonly busy = new Set<IndexThread>();
  private scheduled = false;
  /** Messages sent to the index threads, and the queries they carried (shared with the service). */
  readonly counts: { batches: number; queries: number };

  constructor(
    readonly snapshot: SnapshotRef,
    private readonly threads: IndexThread[],
    private readonly policy: BatchPolicy,
    counts: { batches: number; queries: number },
  ) {
    this.counts = counts;
  }

  get version(): number {
    return this.snapshot.version;
  }

  get dimensions(): number {
    return this.snapshot.manifest.settings.dimensions;
  }

  async search(vector: Float32Array, query: BatchQuery): Promise<QueryAnswer> {
    this.inFlight++;
    try {
      if (this.policy.coalesce)
        return await new Promise<QueryAnswer>((resolve, reject) => {
          this.queue.push({ vector, query, resolve, reject });
          this.schedule();
        });
      let thread = this.threads[0];
      for (const t of this.threads) if (t.pending < thread.pending) thread = t;
      this.counts.batches++;
      this.counts.queries++;
      const [answer] = await thread.searchBatch(vector.slice(), [query], 1);
      return unwrap(answer);
    } finally {
      this.inFlight--;
      if (this.retired && this.inFlight === 0) void this.close();
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.pump();
    };
    // Queries issued in the same tick ride together; with a window, so do those of the next few ms.
    if (this.policy.coalesceWindowMs > 0) setTimeout(run, this.policy.coalesceWindowMs);
    else queueMicrotask(run);
  }

  /** Hands queued queries to idle threads, one batch each; a thread's next batch is cut when its last one returns. */
  private pump(): void {
    while (this.queue.length > 0) {
      const idle = this.threads.filter((t) => !this.busy.has(t));
      if (idle.length === 0) return;
      const thread = idle[0];
      // Several idle threads share what is queued: otherwise a closed loop of callers, whose queries
      // all return (and come back) together, keeps feeding one thread while the others wait.
      const batch = this.queue.splice(0, Math.min(this.policy.maxBatch, Math.ceil(this.queue.length / idle.length)));
      const d = batch[0].vector.length;
      const matrix = new Float32Array(batch.length * d);
      batch.forEach((q, i) => {
        matrix.set(q.vector, i * d);
      });
      this.busy.add(thread);
      this.counts.batches++;
      this.counts.queries += batch.length;
      thread
        .searchBatch(
          matrix,
          batch.map((q) => q.query),
          this.policy.batchThreads,
        )
        .then(
          (answers) =>
            batch.forEach((q, i) => {
              try {
                q.resolve(unwrap(answers[i]));
              } catch (err) {
                q.reject(err as Error);
              }
            }),
          (err: Error) => {
            for (const q of batch) q.reject(err);
          },
        )
        .finally(() => {
          this.busy.delete(thread);
          this.pump();
        });
    }
  }

  /** Marks this generation replaced; resolves once its threads stopped (after its last query, or the drain timeout). */
  retire(drainTimeoutMs: number): Promise<void> {
    if (!this.retired) {
      this.retired = true;
      if (this.inFlight === 0) void this.close();
      else {
        this.drainTimer = setTimeout(() => void this.close(), drainTimeoutMs);
        this.drainTimer.unref();
      }
    }
    return this.stopped;
  }

  private close(): Promise<void> {
    clearTimeout(this.drainTimer);
    if (!this.closing) {
      this.closing = true;
      void Promise.allSettled(this.threads.map((t) => t.close())).then(() => this.markStopped());
    }
    return this.stopped;
  }
}

function unwrap(answer: BatchAnswer | undefined): QueryAnswer {
  if (!answer) throw new Error('index thread returned no answer for a query');
  if (!answer.ok) throw Object.assign(new Error(answer.error.message), { name: answer.error.name });
  return { hits: answer.hits, ...(answer.matching !== undefined ? { matching: answer.matching } : {}) };
}

/**
 * Creates a search replica over the builder's snapshots. Nothing runs until `start()`.
 *
 * @example
 *   const search = createSearchService({ redis, prefix: 'fleet', snapshotDir: '/var/lib/fleet/index' });
 *   await search.start();
 *   const { hits, snapshotVersion } = await search.search(queryVector, 10, 'call_notes');
 */
export function createSearchService(opts: SearchServiceOptions): SearchService {
  return new SearchService(compile(opts));
}

/**
 * Serves k-NN queries from the latest good snapshot, off the main thread, and hot-swaps to each new
 * snapshot: the new one is verified (manifest, sizes, sha256) and opened in new threads while the
 * current one keeps answering; then the reference is swapped in one assignment. Queries that started
 * on the old snapshot finish on it; its threads stop once they have. No query fails or comes back
 * empty because of a swap. A refused snapshot leaves the current one serving.
 */
export class SearchService {
  readonly events: SafeEmitter<SearchServiceEvents>;
  private readonly store: SnapshotStore;
  private current?: Generation;
  private subscriber?: Redis | Cluster;
  private pollTimer?: NodeJS.Timeout;
  private refreshing?: Promise<boolean>;
  private refreshAgain = false;
  private readonly refused = new Set<number>();
  private _lastError?: Error;
  private starting?: Promise<void>;
  private closing?: Promise<void>;
  private unobserve?: () => void;

  constructor(private readonly opts: CompiledSearchOptions) {
    this.events = new SafeEmitter((event, err) => opts.logger?.error({ event, err }, 'search service listener failed'));
    this.store = new SnapshotStore({ dir: opts.snapshotDir });
  }

  /** Messages sent to index threads and the queries they carried, since start: `queries / batches` is the mean batch. */
  readonly searchCounts = { batches: 0, queries: 0 };

  /** Version being served, or null before the first snapshot. */
  get snapshotVersion(): number | null {
    return this.current?.version ?? null;
  }

  /** True once a snapshot is serving (a readiness probe). */
  get ready(): boolean {
    return this.current !== undefined && !this.closing;
  }

  /** Why the last snapshot was refused or failed to open, if one was. */
  get lastError(): Error | undefined {
    return this._lastError;
  }

  /**
   * Subscribes to announcements and loads the latest good snapshot. Resolves even when there is none
   * yet (`ready` stays false and `search` throws `IndexNotReadyError` until one arrives). Idempotent.
   */
  start(): Promise<void> {
    this.starting ??= (async () => {
      if (this.closing) throw new IndexClosedError('search service');
      this.unobserve = this.opts.metrics?.observeIndex(() => {
        const gen = this.current;
        return gen && { vectors: gen.snapshot.manifest.count, snapshotVersion: gen.version };
      }, 'search');
      const sub = this.opts.redis.duplicate();
      this.subscriber = sub;
      sub.on('message', () => void this.refresh());
      // A listener keeps ioredis from printing every reconnect attempt; the fleet's Redis log reports the outage once.
      sub.on('error', (err) => this.opts.logger?.debug({ err }, 'snapshot subscription error'));
      await sub.subscribe(snapshotChannel(this.opts.prefix));
      await this.refresh();
      if (this.opts.pollMs > 0) {
        this.pollTimer = setInterval(() => void this.refresh(), this.opts.pollMs);
        this.pollTimer.unref();
      }
    })();
    return this.starting;
  }

  /**
   * The `k` nearest items to `vector` in `namespace` (or across all namespaces), from one snapshot;
   * with `filter`, only items whose metadata matches (see `SearchFilter`; `matching` in the result).
   * Concurrent calls are coalesced into batched native calls (see `coalesce`).
   * Throws `RangeError`s for bad input, `IndexNotReadyError` before a snapshot.
   *
   * @example await search.search(vector, 10, 'call_notes', { tenant: 'acme', from: Date.parse('2026-11-01') })
   */
  async search(vector: Float32Array | readonly number[], k: number, namespace?: string, filter?: SearchFilter): Promise<SearchResult> {
    if (this.closing) throw new IndexClosedError('search service');
    const gen = this.current;
    if (!gen) throw new IndexNotReadyError(this._lastError ? `no good snapshot (${this._lastError.message})` : 'no snapshot loaded yet');
    if (!(vector instanceof Float32Array) && !Array.isArray(vector)) throw new RangeError('query vector must be a Float32Array or an array of numbers');
    if (vector.length !== gen.dimensions) throw new RangeError(`query vector has ${vector.length} components, the index has ${gen.dimensions}`);
    if (!Number.isInteger(k) || k < 1 || k > this.opts.maxK) throw new RangeError(`k must be an integer from 1 to ${this.opts.maxK}, got ${k}`);
    if (namespace !== undefined && !isValidNamespace(namespace)) throw new RangeError(`namespace ${JSON.stringify(namespace)} is not valid`);
    const f = checkFilter(filter);
    const v = vector instanceof Float32Array ? vector : Float32Array.from(vector);
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) throw new RangeError(`query vector component ${i} is not a finite number`);
    const answer = await gen.search(v, { k, ...(namespace !== undefined ? { namespace } : {}), ...(isActiveFilter(f) ? { filter: f } : {}) });
    return { hits: answer.hits, snapshotVersion: gen.version, ...(answer.matching !== undefined ? { matching: answer.matching } : {}) };
  }

  /**
   * Loads a snapshot newer than the one serving, if a good one exists, and swaps to it. Concurrent
   * calls share one run (and one more run follows if a call came in meanwhile). Resolves true on a swap.
   */
  refresh(): Promise<boolean> {
    if (this.closing) return Promise.resolve(false);
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      let swapped = false;
      do {
        this.refreshAgain = false;
        swapped =
          (await this.refreshOnce().catch((err) => {
            this.opts.logger?.error({ err }, 'snapshot refresh failed');
            return false;
          })) || swapped;
      } while (this.refreshAgain && !this.closing);
      return swapped;
    })().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshOnce(): Promise<boolean> {
    const {
      logger,
      mode,
      expansionSearch,
      exactFilterMax,
      threads: threadCount,
      drainTimeoutMs,
      coalesce,
      maxBatch,
      batchThreads,
      coalesceWindowMs,
    } = this.opts;
    const { snapshot, skipped } = await this.store.loadLatest({ newerThan: this.current?.version ?? 0, exclude: this.refused });
    for (const err of skipped) {
      if (err.version !== undefined) this.refused.add(err.version); // a refused snapshot never heals: do not re-hash it
      this._lastError = err;
      logger?.warn({ err: err.message, serving: this.snapshotVersion }, 'snapshot refused; the current one keeps serving');
      this.events.emit('refused', { version: err.version ?? null, error: err });
    }
    if (!snapshot || this.closing) return false;

    const started = Date.now();
    const opened = await Promise.allSettled(
      Array.from({ length: threadCount }, (_, i) =>
        IndexThread.open({ dir: snapshot.dir, settings: snapshot.manifest.settings, namespaces: snapshot.manifest.namespaces }, mode, {
          expansionSearch,
          exactFilterMax,
          name: `index-search-${snapshot.version}-${i}`,
        }),
      ),
    );
    const threads = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failure = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure || this.closing) {
      await Promise.allSettled(threads.map((t) => t.close()));
      if (!failure) return false;
      const error = failure.reason instanceof Error ? failure.reason : new Error(String(failure.reason));
      this.refused.add(snapshot.version);
      this._lastError = error;
      logger?.error({ err: error, version: snapshot.version, serving: this.snapshotVersion }, 'snapshot failed to open; the current one keeps serving');
      this.events.emit('refused', { version: snapshot.version, error });
      return false;
    }
    const old = this.current;
    this.current = new Generation(snapshot, threads, { coalesce, maxBatch, batchThreads, coalesceWindowMs }, this.searchCounts); // the swap: later queries start on the new snapshot
    void old?.retire(drainTimeoutMs);
    const loadMs = Date.now() - started;
    logger?.info({ from: old?.version ?? null, to: snapshot.version, count: snapshot.manifest.count, loadMs }, 'search index swapped');
    this.events.emit('swapped', { from: old?.version ?? null, to: snapshot.version, loadMs });
    return true;
  }

  /** Unsubscribes, stops polling, lets running queries finish (up to the drain timeout) and stops the threads. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.pollTimer);
      this.unobserve?.();
      const errors: unknown[] = [];
      await this.starting?.catch(() => {});
      try {
        this.subscriber?.disconnect();
      } catch (err) {
        errors.push(err);
      }
      await this.refreshing?.catch(() => {});
      const gen = this.current;
      this.current = undefined;
      if (gen) await gen.retire(this.opts.drainTimeoutMs);
      if (errors.length) throw errors.length === 1 ? errors[0] : new AggregateError(errors, 'search service close failed');
    })();
    return this.closing;
  }
}
