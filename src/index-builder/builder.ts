import type { Cluster, Redis } from 'ioredis';
import { activeFleetMetrics } from '../telemetry/active-metrics';
import type { Logger } from '../telemetry/logger';
import type { FleetMetrics } from '../telemetry/metrics';
import { BuilderLease } from './builder-lease';
import { IndexClosedError } from './errors/index-closed-error';
import { IndexOptionError } from './errors/index-option-error';
import { SnapshotCorruptError } from './errors/snapshot-corrupt-error';
import { SafeEmitter } from './events';
import { IndexThread } from './index-thread';
import type { ApplyResult } from './namespaced-index';
import { type CompiledIndexSettings, compileIndexSettings, type IndexSettings, integerIn, sameStorageSettings } from './settings';
import { type SnapshotRef, SnapshotStore } from './snapshot-store';
import type { IndexStats } from './thread-protocol';
import { compareStreamIds, readLog, type SnapshotAnnouncement, snapshotChannel, trimLog } from './upsert-stream';

/** Options of `createIndexBuilder`. Durations in ms. */
export interface IndexBuilderOptions {
  /**
   * Redis for lease, trim and publish. Required; not closed by the builder. The builder makes one
   * `duplicate()` of it for its blocking log reads (and closes that one).
   */
  redis: Redis | Cluster;
  /** Key prefix shared with producers and search services (`<prefix>:index:log`, ...). Required. */
  prefix: string;
  /** Folder of snapshots (created if missing). Search services must see the same files. Required. */
  snapshotDir: string;
  /** Index settings (see `IndexSettings`); dimensions, metric and dtype must match existing snapshots. */
  settings?: IndexSettings;
  /** Time between snapshots while changes arrive; no snapshot is taken without changes. Default 60 000; 1 000–86 400 000. */
  snapshotEveryMs?: number;
  /** Snapshots kept on disk. Default 3; 1–1000. The log is only trimmed up to the oldest kept one. */
  keepSnapshots?: number;
  /** Log entries per read = largest batch add. Default 1 000; 1–10 000. */
  readBatchSize?: number;
  /** How long one log read waits for new entries (also bounds how late a due snapshot starts). Default 1 000; 10–60 000. */
  blockMs?: number;
  /** TTL of the single-builder lease; renewed every third of it. Default 30 000; 1 000–600 000. */
  leaseTtlMs?: number;
  /** How long `start()` waits for another builder to release the lease. Default 60 000; 0–3 600 000. */
  leaseWaitMs?: number;
  logger?: Logger;
  /** Reports the last snapshot written (`fleet_index_*{index_role="builder"}`). Default: the process's telemetry, if started. */
  metrics?: Pick<FleetMetrics, 'observeIndex'>;
}

interface CompiledBuilderOptions {
  redis: Redis | Cluster;
  prefix: string;
  snapshotDir: string;
  settings: CompiledIndexSettings;
  snapshotEveryMs: number;
  keepSnapshots: number;
  readBatchSize: number;
  blockMs: number;
  leaseTtlMs: number;
  leaseWaitMs: number;
  logger?: Logger;
  metrics?: Pick<FleetMetrics, 'observeIndex'>;
}

export type IndexBuilderState = 'created' | 'starting' | 'running' | 'failed' | 'closing' | 'closed';

export interface IndexBuilderEvents extends Record<string, unknown> {
  /** A log read was applied (`position` is the last stream id applied). */
  applied: { entries: number; position: string; result: ApplyResult; malformed: number };
  /** A snapshot is durable, announced and the log trimmed. */
  snapshot: SnapshotRef;
  /** The builder stopped applying (lost lease, dead index thread). Restart the role. */
  failed: Error;
}

function compile(opts: IndexBuilderOptions): CompiledBuilderOptions {
  if (!opts || typeof opts !== 'object') throw new IndexOptionError('options', opts, 'an object');
  if (!opts.redis || typeof (opts.redis as Partial<Redis>).duplicate !== 'function')
    throw new IndexOptionError('redis', typeof opts.redis, 'an ioredis client');
  if (typeof opts.prefix !== 'string' || opts.prefix.length === 0) throw new IndexOptionError('prefix', opts.prefix, 'a non-empty string');
  if (typeof opts.snapshotDir !== 'string' || opts.snapshotDir.length === 0) throw new IndexOptionError('snapshotDir', opts.snapshotDir, 'a folder path');
  return {
    redis: opts.redis,
    prefix: opts.prefix,
    snapshotDir: opts.snapshotDir,
    settings: compileIndexSettings(opts.settings),
    snapshotEveryMs: integerIn('snapshotEveryMs', opts.snapshotEveryMs ?? 60_000, 1_000, 86_400_000),
    keepSnapshots: integerIn('keepSnapshots', opts.keepSnapshots ?? 3, 1, 1000),
    readBatchSize: integerIn('readBatchSize', opts.readBatchSize ?? 1_000, 1, 10_000),
    blockMs: integerIn('blockMs', opts.blockMs ?? 1_000, 10, 60_000),
    leaseTtlMs: integerIn('leaseTtlMs', opts.leaseTtlMs ?? 30_000, 1_000, 600_000),
    leaseWaitMs: integerIn('leaseWaitMs', opts.leaseWaitMs ?? 60_000, 0, 3_600_000),
    logger: opts.logger,
    metrics: opts.metrics ?? activeFleetMetrics(),
  };
}

/**
 * Creates the index builder: the one process (per prefix) that applies the index log to a USearch
 * index in a worker thread and writes snapshots. Nothing runs until `start()`.
 *
 * @example
 *   const builder = createIndexBuilder({ redis, prefix: 'fleet', snapshotDir: '/var/lib/fleet/index' });
 *   await builder.start();          // latest good snapshot + replay of the log after it
 *   releasers.add('index builder', () => builder.close()); // close() writes a final snapshot
 */
export function createIndexBuilder(opts: IndexBuilderOptions): IndexBuilder {
  return new IndexBuilder(compile(opts));
}

/**
 * Applies `<prefix>:index:log` in batches (one batch add per read), snapshots every `snapshotEveryMs`
 * and on `close()`, trims the log behind the oldest kept snapshot and announces each snapshot on
 * `<prefix>:index:snapshots`. Recovery: latest verified snapshot, then every log entry after its
 * `log_position` — so no acknowledged upsert is lost.
 */
export class IndexBuilder {
  readonly events: SafeEmitter<IndexBuilderEvents>;
  private readonly store: SnapshotStore;
  private readonly lease: BuilderLease;
  private thread?: IndexThread;
  private reader?: Redis | Cluster;
  private _state: IndexBuilderState = 'created';
  private _position = '0-0';
  private changes = 0;
  private lastSnapshotAt = Date.now();
  private loopDone?: Promise<void>;
  private lock: Promise<unknown> = Promise.resolve();
  private snapshotChain: Promise<unknown> = Promise.resolve();
  private waiters: { id: string; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private starting?: Promise<void>;
  private closing?: Promise<void>;
  /** The snapshot this builder resumed from or last wrote, for the index gauges. */
  private lastSnapshot?: { vectors: number; snapshotVersion: number };
  private unobserve?: () => void;

  constructor(private readonly opts: CompiledBuilderOptions) {
    this.events = new SafeEmitter((event, err) => opts.logger?.error({ event, err }, 'index builder listener failed'));
    this.store = new SnapshotStore({ dir: opts.snapshotDir, keep: opts.keepSnapshots });
    this.lease = new BuilderLease(opts.redis, `${opts.prefix}:index:builder`, opts.leaseTtlMs, (err) => this.fail(err));
  }

  get state(): IndexBuilderState {
    return this._state;
  }

  /** Stream id of the last log entry applied (`0-0` before any). */
  get position(): string {
    return this._position;
  }

  get settings(): CompiledIndexSettings {
    return this.opts.settings;
  }

  /** Takes the lease, recovers (snapshot + log replay starts in the loop) and starts applying. Idempotent. */
  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (this.closing) throw new IndexClosedError('index builder');
    this._state = 'starting';
    const { logger, settings } = this.opts;
    try {
      await this.lease.acquire(this.opts.leaseWaitMs);
      await this.store.init();
      const { snapshot, skipped } = await this.store.loadLatest();
      for (const err of skipped) logger?.warn({ err: err.message }, 'snapshot refused; trying the previous one');
      if (!snapshot && skipped.length) {
        throw new SnapshotCorruptError(
          this.opts.snapshotDir,
          `every snapshot was refused; not starting empty (acknowledged upserts may be trimmed from the log). Fix or remove them: ${skipped.map((e) => e.message).join('; ')}`,
        );
      }
      if (snapshot) {
        if (!sameStorageSettings(snapshot.manifest.settings, settings)) {
          const m = snapshot.manifest.settings;
          throw new IndexOptionError(
            'settings',
            { dimensions: settings.dimensions, metric: settings.metric, dtype: settings.dtype },
            `dimensions ${m.dimensions}, metric ${m.metric}, dtype ${m.dtype} like snapshot ${snapshot.version}; changing them needs a rebuild under a new prefix and snapshotDir`,
          );
        }
        this.thread = await IndexThread.open({ dir: snapshot.dir, settings, namespaces: snapshot.manifest.namespaces }, 'load', { name: 'index-builder' });
        this._position = snapshot.manifest.log_position;
        this.lastSnapshot = { vectors: snapshot.manifest.count, snapshotVersion: snapshot.version };
        logger?.info({ version: snapshot.version, count: snapshot.manifest.count, position: this._position }, 'index builder resumed from snapshot');
      } else {
        this.thread = await IndexThread.create(settings, { name: 'index-builder' });
        logger?.info('index builder starting with an empty index (no snapshot yet)');
      }
      this.lastSnapshotAt = Date.now();
      this.reader = this.opts.redis.duplicate();
      this.unobserve = this.opts.metrics?.observeIndex(() => this.lastSnapshot, 'builder');
      this._state = 'running';
      this.loopDone = this.loop();
    } catch (err) {
      this._state = 'failed';
      await this.thread?.close().catch(() => {});
      await this.lease.release().catch(() => {});
      throw err;
    }
  }

  /** Resolves once every log entry up to `streamId` (from `appendUpserts`) is applied to the index. */
  waitForApplied(streamId: string, timeoutMs = 30_000): Promise<void> {
    if (compareStreamIds(this._position, streamId) >= 0) return Promise.resolve();
    if (this.closing || this._state === 'failed') return Promise.reject(new IndexClosedError('index builder'));
    return new Promise((resolve, reject) => {
      const w = {
        id: streamId,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(new Error(`index builder did not apply ${streamId} within ${timeoutMs} ms (at ${this._position})`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** Size and memory of the builder's index. */
  stats(): Promise<IndexStats> {
    if (!this.thread) return Promise.reject(new IndexClosedError('index builder (not started)'));
    return this.thread.stats();
  }

  /**
   * Writes a snapshot now (even without changes), announces it and trims the log. Snapshots never
   * overlap; applying continues while the files are checksummed and fsynced.
   */
  snapshot(): Promise<SnapshotRef> {
    if (!this.thread || this._state === 'created' || this._state === 'starting') return Promise.reject(new Error('index builder is not started'));
    const next = this.snapshotChain.then(() => this.takeSnapshot());
    this.snapshotChain = next.catch(() => {});
    return next;
  }

  private async takeSnapshot(): Promise<SnapshotRef> {
    const thread = this.thread!;
    const { logger, settings, redis, prefix } = this.opts;
    const started = Date.now();
    const pending = await this.store.begin();
    let ref: SnapshotRef;
    try {
      const captured = await this.exclusive(async () => ({ saved: await thread.save(pending.tmpDir), position: this._position, changes: this.changes }));
      ref = await this.store.commit(pending, { count: captured.saved.count, settings, logPosition: captured.position, namespaces: captured.saved.namespaces });
      this.changes -= captured.changes;
      this.lastSnapshotAt = Date.now();
      this.lastSnapshot = { vectors: ref.manifest.count, snapshotVersion: ref.version };
    } catch (err) {
      await this.store.abort(pending).catch(() => {});
      throw err;
    }
    const retained = await this.store.retainedLogPosition();
    const trimmed = retained && retained !== '0-0' ? await trimLog(redis, prefix, retained) : 0;
    const announcement: SnapshotAnnouncement = {
      version: ref.version,
      name: ref.dir.split(/[\\/]/).pop()!,
      count: ref.manifest.count,
      log_position: ref.manifest.log_position,
    };
    await redis.publish(snapshotChannel(prefix), JSON.stringify(announcement));
    logger?.info(
      { version: ref.version, count: ref.manifest.count, position: ref.manifest.log_position, trimmed, ms: Date.now() - started },
      'index snapshot written',
    );
    this.events.emit('snapshot', ref);
    return ref;
  }

  private async loop(): Promise<void> {
    const { prefix, readBatchSize, blockMs, settings, logger, snapshotEveryMs } = this.opts;
    let backoff = 100;
    while (this._state === 'running') {
      try {
        const read = await readLog(this.reader!, prefix, this._position, { count: readBatchSize, blockMs, dimensions: settings.dimensions });
        if (this._state !== 'running') break;
        if (read) {
          for (const m of read.malformed) logger?.warn(m, 'malformed index log entry skipped');
          const result = await this.exclusive(async () => {
            const r: ApplyResult = read.batch.ops.length
              ? await this.thread!.apply(read.batch, { transfer: true })
              : { upserted: 0, deleted: 0, rejected: [], size: -1 };
            this._position = read.lastId;
            this.changes += read.entries;
            return r;
          });
          for (const r of result.rejected) logger?.warn(r, 'index upsert rejected');
          this.events.emit('applied', { entries: read.entries, position: read.lastId, result, malformed: read.malformed.length });
          this.wake();
        }
        backoff = 100;
        if (this.changes > 0 && Date.now() - this.lastSnapshotAt >= snapshotEveryMs) {
          await this.snapshot().catch((err) => {
            logger?.error({ err }, 'index snapshot failed; retrying at the next interval');
            this.lastSnapshotAt = Date.now();
          });
        }
      } catch (err) {
        if (this._state !== 'running') break;
        if (this.thread && !this.thread.alive) {
          this.fail(err instanceof Error ? err : new Error(String(err)));
          break;
        }
        logger?.warn({ err, retryInMs: backoff }, 'index log read failed');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => {});
    return run;
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (compareStreamIds(this._position, w.id) < 0) return true;
      clearTimeout(w.timer);
      w.resolve();
      return false;
    });
  }

  private fail(err: Error): void {
    if (this._state !== 'running') return;
    this._state = 'failed';
    this.opts.logger?.error({ err }, 'index builder stopped applying the log');
    this.reader?.disconnect();
    this.rejectWaiters(err);
    this.events.emit('failed', err);
  }

  private rejectWaiters(err: Error): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters = [];
  }

  /**
   * Stops reading, writes a final snapshot (when anything changed since the last one and the
   * builder had not failed), stops the index thread and releases the lease. Every step runs even if
   * an earlier one throws. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const wasRunning = this._state === 'running';
    this._state = 'closing';
    const errors: unknown[] = [];
    const step = async (name: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
        this.opts.logger?.error({ err, step: name }, 'index builder close step failed');
      }
    };
    await step('start', () => this.starting?.catch(() => {}));
    this.reader?.disconnect(); // interrupts a blocking XREAD; the loop sees the state and ends
    await step('loop', () => this.loopDone);
    await step('pending snapshot', () => this.snapshotChain);
    if (wasRunning && this.changes > 0 && this.thread?.alive) await step('final snapshot', () => this.takeSnapshot());
    await step('index thread', () => this.thread?.close());
    await step('lease', () => this.lease.release());
    this.unobserve?.();
    this.rejectWaiters(new IndexClosedError('index builder'));
    this._state = 'closed';
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} steps of index builder close failed`);
  }
}
