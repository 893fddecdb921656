import type { JobType } from 'bullmq';
import { HttpError } from './http-error';

/** The part of a BullMQ Queue the guard reads. */
export interface BacklogSource {
  readonly name: string;
  getJobCounts(...types: JobType[]): Promise<Record<string, number>>;
}

export interface BacklogOptions {
  /**
   * Most jobs allowed to wait per queue: one number for every queue, or per queue name (queues not
   * listed are unbounded). `Infinity` disables the bound. Default 100,000.
   */
  maxBacklog?: number | Readonly<Record<string, number>>;
  /**
   * States that count as backlog. Default `waiting` and `prioritized` (what workers have yet to take);
   * add `delayed` to count retries waiting for their backoff as well.
   */
  states?: readonly JobType[];
  /** How long a count is reused before Redis is asked again. Default 250 ms (one count per queue per 250 ms, not per request). */
  cacheMs?: number;
  /** Retry-After (seconds) sent with 429. Default 5. */
  retryAfterS?: number;
  /** Clock; default performance.now. */
  now?: () => number;
}

interface CachedCount {
  value: number;
  at: number;
  refreshing?: Promise<number>;
}

const DEFAULT_MAX_BACKLOG = 100_000;

/**
 * Refuses enqueues (429 with Retry-After) while a queue's backlog is over its bound, so a producer
 * that outruns the workers gets back-pressure instead of filling Redis (which must never evict).
 * The count comes from `getJobCounts(states)` and is cached briefly; jobs this process adds are added
 * to the cached value, so the bound holds within one API process between refreshes, and is exceeded
 * across replicas by at most what they add within `cacheMs`.
 */
export class BacklogGuard {
  private readonly counts = new Map<string, CachedCount>();
  private readonly states: JobType[];
  private readonly cacheMs: number;
  private readonly retryAfterS: number;
  private readonly now: () => number;
  private readonly limits: number | Readonly<Record<string, number>>;

  constructor(opts: BacklogOptions = {}) {
    this.limits = opts.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    const check = (name: string, v: unknown) => {
      if (v !== Infinity && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) {
        throw new RangeError(`option \`${name}\` must be an integer >= 0 or Infinity, got ${String(v)}`);
      }
    };
    if (typeof this.limits === 'number') check('maxBacklog', this.limits);
    else if (this.limits && typeof this.limits === 'object') for (const [q, v] of Object.entries(this.limits)) check(`maxBacklog.${q}`, v);
    else throw new TypeError(`option \`maxBacklog\` must be a number or a record of numbers per queue, got ${String(this.limits)}`);
    this.states = [...(opts.states ?? ['waiting', 'prioritized'])];
    if (this.states.length === 0) throw new RangeError('option `states` must name at least one job state');
    this.cacheMs = opts.cacheMs ?? 250;
    if (!Number.isFinite(this.cacheMs) || this.cacheMs < 0) throw new RangeError(`option \`cacheMs\` must be a number >= 0, got ${String(opts.cacheMs)}`);
    this.retryAfterS = opts.retryAfterS ?? 5;
    if (!Number.isInteger(this.retryAfterS) || this.retryAfterS < 1)
      throw new RangeError(`option \`retryAfterS\` must be an integer >= 1, got ${String(opts.retryAfterS)}`);
    this.now = opts.now ?? (() => performance.now());
  }

  /** The bound of `queue` (Infinity when unbounded). */
  limit(queue: string): number {
    return typeof this.limits === 'number' ? this.limits : (this.limits[queue] ?? Infinity);
  }

  /**
   * Admits `incoming` jobs into `source`'s queue or throws a 429 HttpError. Admitted jobs are counted
   * into the cached backlog at once (call `release` if the enqueue then fails).
   */
  async admit(source: BacklogSource, incoming: number): Promise<void> {
    const max = this.limit(source.name);
    if (max === Infinity) return;
    const entry = await this.entry(source);
    // Read after the await: requests admitted meanwhile have already added themselves.
    const backlog = entry.value;
    if (backlog + incoming > max) {
      throw new HttpError(
        429,
        'backlog_full',
        `queue ${source.name} has ${backlog} jobs waiting (bound ${max}); ${incoming} more would exceed it. Retry after ${this.retryAfterS} s.`,
        undefined,
        { 'retry-after': String(this.retryAfterS) },
      );
    }
    entry.value += incoming;
  }

  /** Takes back jobs admitted by `admit` that were not enqueued after all. */
  release(queue: string, count: number): void {
    const cached = this.counts.get(queue);
    if (cached) cached.value = Math.max(0, cached.value - count);
  }

  private async entry(source: BacklogSource): Promise<CachedCount> {
    const now = this.now();
    let cached = this.counts.get(source.name);
    if (cached && now - cached.at <= this.cacheMs) return cached;
    if (!cached) {
      cached = { value: 0, at: -Infinity };
      this.counts.set(source.name, cached);
    }
    // Single flight: concurrent requests on an expired entry share one Redis call.
    const entry = cached;
    entry.refreshing ??= source
      .getJobCounts(...this.states)
      .then((counts) => {
        entry.value = this.states.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
        entry.at = this.now();
        return entry.value;
      })
      .finally(() => {
        entry.refreshing = undefined;
      });
    await entry.refreshing;
    return entry;
  }
}
