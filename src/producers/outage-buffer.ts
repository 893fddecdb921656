import type { Cluster, Redis } from 'ioredis';
import { BufferFullError, EnqueueDroppedError, EnqueueOutcomeUnknownError, RedisUnavailableError } from '../contracts/errors';
import type { QueueName } from '../contracts/queues';
import { isCluster } from '../redis-lua/cluster-client';
import { isConnectionError } from '../telemetry/outage-log';

/** Bounds of the producer's outage buffer. */
export interface BufferLimits {
  /** Most jobs held while Redis is unreachable (a bulk embed of n texts counts n). Default 10,000. */
  maxJobs?: number;
  /** Most payload bytes (JSON) held. Default 32 MiB. */
  maxBytes?: number;
}

export const DEFAULT_BUFFER_LIMITS: Required<BufferLimits> = { maxJobs: 10_000, maxBytes: 32 * 1024 * 1024 };

/** One enqueue call as the gate sees it: what it adds, and how to send it. */
export interface Submission<T> {
  queue: QueueName;
  /** The ids the call adds (chosen by the producer, so a re-sent add is a no-op). */
  jobIds: readonly string[];
  /** JSON size of the payloads, counted against `maxBytes`: asked only when the call is buffered (most never are). */
  bytes: () => number;
  /** Sends the add(s) to Redis. Called at most once per attempt; may be called again after a lost connection. */
  send: () => Promise<T>;
  /** False for calls that are useless later (a search): they fail fast instead of waiting in the buffer. */
  bufferable: boolean;
  /** Aborting removes the call while it waits (for the first connection or in the buffer); a call already sent cannot be taken back. */
  signal?: AbortSignal;
}

/** Where a submitted call is: sent (the value of its add) or waiting in the buffer. */
export type Admitted<T> = { buffered: false; value: T } | { buffered: true; persisted: Promise<T> };

/** Counters of the gate, for `producer.stats()` and the metrics. */
export interface BufferStats {
  /** Whether the producer's Redis connection is ready now. */
  connected: boolean;
  /** Jobs and payload bytes waiting in the buffer (the one being flushed included). */
  bufferedJobs: number;
  bufferedBytes: number;
  /** Jobs flushed from the buffer to Redis since the producer started. */
  flushedJobs: number;
  /** Jobs removed from the buffer without reaching Redis (aborted, closed, refused by Redis). */
  droppedJobs: number;
}

/** What `close()` did with the buffer. */
export interface CloseResult {
  /** Jobs the close flushed to Redis within its deadline. */
  flushed: number;
  /** Jobs dropped from the buffer unsent: they will never appear. */
  dropped: number;
  /** Jobs whose add was sent while the connection failed, with no reply before the deadline: they may have been enqueued. */
  unknown: number;
}

interface Entry<T> {
  sub: Submission<T>;
  /** `sub.bytes()`, measured once when the call was buffered. */
  bytes: number;
  sending: boolean;
  resolve(value: T): void;
  reject(err: Error): void;
  detach(): void;
}

/** `redis://host:port` of a connection, for error messages (never its password); a cluster is named as one. */
function describeRedis(conn: Redis | Cluster): string {
  if (isCluster(conn)) return `the Redis Cluster (${conn.options.redisOptions?.tls ? 'TLS' : 'no TLS'})`;
  const o = conn.options;
  if (o.path) return `unix:${o.path}`;
  return `${o.tls ? 'rediss' : 'redis'}://${o.host ?? '127.0.0.1'}:${o.port ?? 6379}`;
}

/**
 * Decides, per enqueue, whether it goes to Redis now, waits in the bounded buffer, or fails at once — so the
 * producer always knows whether an add reached Redis. ioredis' own offline queue would hold an add
 * invisibly while disconnected and send it whenever the connection returns; the gate never hands ioredis
 * a command while the connection is not ready. Buffered calls are flushed in order, one at a time, on
 * 'ready'. A call that was written to the socket when the connection failed stays with ioredis (it re-sends
 * it on reconnect; the producer's job ids make a second run a no-op): its outcome is unknown until then.
 */
export class OutageGate {
  private readonly buffer: Entry<unknown>[] = [];
  /** `queue\0id` → how many buffered calls add it (a repeated idempotency key can be buffered twice). */
  private readonly held = new Map<string, number>();
  private bytes = 0;
  private jobs = 0;
  private flushedJobs = 0;
  private droppedJobs = 0;
  private lastError: string | undefined;
  private failedSinceReady = false;
  private flushing = false;
  private closing = false;
  private readonly drained = new Set<() => void>();
  readonly redis: string;

  constructor(
    private readonly conn: Redis | Cluster,
    private readonly opts: { limits: Required<BufferLimits> | false; connectWaitMs: number; onError: (err: Error) => void; onDrop: (jobs: number) => void },
  ) {
    this.redis = describeRedis(conn);
    conn.on('error', this.onConnError);
    conn.on('close', this.onConnClose);
    conn.on('ready', this.onReady);
  }

  private readonly onConnError = (err: Error) => {
    this.lastError = err.message || (err as { code?: string }).code || String(err);
    this.failedSinceReady = true;
  };

  private readonly onConnClose = () => {
    this.failedSinceReady = true;
    this.lastError ??= 'connection closed';
  };

  private readonly onReady = () => {
    this.failedSinceReady = false;
    this.lastError = undefined;
    void this.flush();
  };

  private ready(): boolean {
    return this.conn.status === 'ready';
  }

  private dropped(jobs: number): void {
    this.droppedJobs += jobs;
    this.opts.onDrop(jobs);
  }

  /** Whether a job waits in the buffer (not yet in Redis). */
  holds(queue: QueueName, id: string): boolean {
    return this.held.has(`${queue}\0${id}`);
  }

  stats(): BufferStats {
    return {
      connected: this.ready(),
      bufferedJobs: this.jobs,
      bufferedBytes: this.bytes,
      flushedJobs: this.flushedJobs,
      droppedJobs: this.droppedJobs,
    };
  }

  /**
   * Sends the call now when Redis is ready and nothing is buffered ahead of it; else buffers it (buffering
   * on, room left) or throws RedisUnavailableError / BufferFullError, having sent nothing.
   */
  async submit<T>(sub: Submission<T>): Promise<Admitted<T>> {
    if (this.closing) throw new Error('producer is closed');
    if (sub.signal?.aborted) throw new EnqueueDroppedError(sub.queue, sub.jobIds, 'aborted');
    const buffering = this.opts.limits !== false && sub.bufferable;
    // Behind buffered calls even when Redis is back: the buffer flushes in order.
    if (buffering && this.buffer.length > 0) return this.enqueue(sub);
    // A connection still making its first attempt is not an outage: the call gets that attempt's outcome
    // (bounded), so a CLI or a just-started API that enqueues right after connecting is neither refused
    // nor buffered for being early.
    if (!this.ready() && !this.failedSinceReady && ['wait', 'connecting', 'connect'].includes(this.conn.status)) {
      await this.firstConnect(sub.signal);
      if (sub.signal?.aborted) throw new EnqueueDroppedError(sub.queue, sub.jobIds, 'aborted');
      if (buffering && this.buffer.length > 0) return this.enqueue(sub);
    }
    if (this.ready()) return this.sendNow(sub, buffering);
    if (buffering) return this.enqueue(sub);
    throw new RedisUnavailableError(this.redis, this.lastError ?? `connection ${this.conn.status}`);
  }

  /**
   * Sends a call while the connection is ready. If the connection fails before Redis answers, part of it
   * may have run (BullMQ's addBulk is a pipeline, not a transaction, and ioredis does not resend a cut
   * pipeline): with buffering it goes to the buffer and is sent again on reconnect (the producer's job ids
   * make the adds that already ran no-ops); without, the caller is told the outcome is unknown.
   */
  private async sendNow<T>(sub: Submission<T>, buffering: boolean): Promise<Admitted<T>> {
    try {
      return { buffered: false, value: await sub.send() };
    } catch (err) {
      if (!isConnectionError(err) && this.conn.status === 'ready') throw err;
      const reason = (err as Error).message || String(err);
      if (buffering) {
        try {
          return this.enqueue(sub);
        } catch {
          // no room to hold it for a resend: fall through to the honest answer
        }
      }
      throw new EnqueueOutcomeUnknownError(this.redis, sub.queue, sub.jobIds, reason);
    }
  }

  private firstConnect(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.conn.off('ready', done).off('error', done).off('end', done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.lastError ??= `no connection within ${this.opts.connectWaitMs} ms`;
        done();
      }, this.opts.connectWaitMs);
      this.conn.once('ready', done).once('error', done).once('end', done);
      signal?.addEventListener('abort', done, { once: true });
      if (this.conn.status === 'wait') this.conn.connect().catch(() => undefined);
    });
  }

  private enqueue<T>(sub: Submission<T>): Admitted<T> {
    const limits = this.opts.limits as Required<BufferLimits>;
    const n = sub.jobIds.length;
    if (this.jobs + n > limits.maxJobs) throw new BufferFullError(this.redis, 'maxJobs', limits.maxJobs, n);
    const bytes = sub.bytes();
    if (this.bytes + bytes > limits.maxBytes) throw new BufferFullError(this.redis, 'maxBytes', limits.maxBytes, n);
    let resolve!: (v: T) => void;
    let reject!: (err: Error) => void;
    const persisted = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // The caller may never look at `persisted`; a drop is reported through onError and the stats as well.
    persisted.catch(() => undefined);
    const onAbort = () => {
      if (entry.sending || !this.remove(entry)) return;
      this.dropped(n);
      entry.reject(new EnqueueDroppedError(sub.queue, sub.jobIds, 'aborted'));
    };
    const entry: Entry<T> = {
      sub,
      bytes,
      sending: false,
      resolve,
      reject,
      detach: () => sub.signal?.removeEventListener('abort', onAbort),
    };
    sub.signal?.addEventListener('abort', onAbort, { once: true });
    this.buffer.push(entry as Entry<unknown>);
    for (const id of sub.jobIds) this.held.set(`${sub.queue}\0${id}`, (this.held.get(`${sub.queue}\0${id}`) ?? 0) + 1);
    this.jobs += n;
    this.bytes += bytes;
    this.opts.onError(
      new Error(
        `Redis is unreachable at ${this.redis} (${this.lastError ?? `connection ${this.conn.status}`}); ${n} job(s) buffered in memory (${this.jobs} in all), sent in order when it is back`,
      ),
    );
    if (this.ready()) void this.flush();
    return { buffered: true, persisted };
  }

  private remove(entry: Entry<unknown>): boolean {
    const i = this.buffer.indexOf(entry);
    if (i < 0) return false;
    this.buffer.splice(i, 1);
    for (const id of entry.sub.jobIds) {
      const key = `${entry.sub.queue}\0${id}`;
      const left = (this.held.get(key) ?? 1) - 1;
      if (left > 0) this.held.set(key, left);
      else this.held.delete(key);
    }
    this.jobs -= entry.sub.jobIds.length;
    this.bytes -= entry.bytes;
    entry.detach();
    if (this.buffer.length === 0) for (const d of this.drained) d();
    return true;
  }

  /** Sends buffered calls in order while the connection is ready; one in flight at a time keeps the order. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.buffer.length > 0 && this.ready()) {
        const entry = this.buffer[0];
        entry.sending = true;
        let value: unknown;
        try {
          value = await entry.sub.send();
        } catch (err) {
          if (isConnectionError(err) || this.conn.status !== 'ready') {
            // Not refused by Redis: it stays first in line for the next 'ready'.
            entry.sending = false;
            break;
          }
          this.remove(entry);
          this.dropped(entry.sub.jobIds.length);
          const dropped = new EnqueueDroppedError(entry.sub.queue, entry.sub.jobIds, 'rejected by Redis', (err as Error).message);
          entry.reject(dropped);
          this.opts.onError(dropped);
          continue;
        }
        this.remove(entry);
        this.flushedJobs += entry.sub.jobIds.length;
        entry.resolve(value);
      }
    } finally {
      this.flushing = false;
    }
    // 'ready' may have come while a send was still waiting on the old connection.
    if (this.buffer.length > 0 && this.ready()) void this.flush();
  }

  /**
   * Stops taking calls and flushes what is buffered within `timeoutMs`; then drops the rest (their
   * `persisted` rejects with EnqueueDroppedError) and says how many were flushed, dropped, and sent without
   * a reply (outcome unknown).
   */
  async close(timeoutMs: number): Promise<CloseResult> {
    this.closing = true;
    const flushedBefore = this.flushedJobs;
    const droppedBefore = this.droppedJobs;
    if (this.buffer.length > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.drained.delete(done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        this.drained.add(done);
        void this.flush();
      });
    }
    let unknown = 0;
    for (const entry of [...this.buffer]) {
      const n = entry.sub.jobIds.length;
      this.remove(entry);
      if (entry.sending) {
        unknown += n;
        entry.reject(new Error(`the add of ${n} job(s) to ${entry.sub.queue} was sent, but no reply came before close(); it may have been enqueued`));
      } else {
        this.dropped(n);
        entry.reject(new EnqueueDroppedError(entry.sub.queue, entry.sub.jobIds, 'closed'));
      }
    }
    this.conn.off('error', this.onConnError).off('close', this.onConnClose).off('ready', this.onReady);
    return { flushed: this.flushedJobs - flushedBefore, dropped: this.droppedJobs - droppedBefore, unknown };
  }
}
