import { join } from 'node:path';
import type { ResourceLimits, Worker } from 'node:worker_threads';
import { IndexClosedError } from './errors/index-closed-error';
import { IndexThreadError } from './errors/index-thread-error';
import type { ItemMeta } from './item-metadata';
import type { ApplyResult, BatchAnswer, BatchQuery, NamespacedHit, NamespaceFiles, OpBatch } from './namespaced-index';
import { type CompiledIndexSettings, DEFAULT_NAMESPACE } from './settings';
import type { IndexStats, SavedIndex, ThreadReply, ThreadRequest, ThreadResults } from './thread-protocol';
import type { OpenMode } from './vector-index';
import { startWorkerScript } from './worker-script';

export interface IndexThreadOptions {
  /** Name shown in stack traces and diagnostics. Default `usearch-index`. */
  name?: string;
  /** Heap limits of the thread's JS heap (USearch's own memory is native and not counted). */
  resourceLimits?: ResourceLimits;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * Async API over one `NamespacedIndex` living in its own worker thread. Every USearch call (batch add,
 * search, save, load) runs there, so a 30-second batch add never delays the event loop of the caller.
 * Requests are answered in order; `pending` counts those not yet answered.
 *
 * @example
 *   const thread = await IndexThread.create(compileIndexSettings({ dimensions: 768 }));
 *   await thread.upsertMany([{ id: 'deal-1', vector }], 'deals');
 *   const hits = await thread.search(query, 10, 'deals');
 *   await thread.close();
 */
export class IndexThread {
  private seq = 0;
  private readonly waiting = new Map<number, Pending>();
  private dead?: Error;
  private closing?: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    readonly settings: CompiledIndexSettings,
  ) {
    worker.on('message', (reply: ThreadReply) => this.onReply(reply));
    worker.on('error', (err) => this.fail(new IndexThreadError(`index thread crashed: ${err.message}`, err.name)));
    worker.on('exit', (code) => this.fail(this.closing ? new IndexClosedError('index thread') : new IndexThreadError(`index thread exited with code ${code}`)));
  }

  /** A thread holding a new, empty, writable index. */
  static async create(settings: CompiledIndexSettings, opts: IndexThreadOptions = {}): Promise<IndexThread> {
    const thread = new IndexThread(spawn(opts), settings);
    await thread.request({ op: 'create', settings }).catch(async (err) => {
      await thread.close();
      throw err;
    });
    return thread;
  }

  /**
   * A thread holding the index files of a snapshot folder (verified by the caller). `view` maps them
   * read-only; `load` copies them into RAM and keeps them writable. `expansionSearch` overrides the
   * snapshot's setting (a viewed index takes it only here); `exactFilterMax` is the largest filter
   * answered exactly from the vector file (see `OpenOptions`).
   */
  static async open(
    snapshot: { dir: string; settings: CompiledIndexSettings; namespaces: NamespaceFiles },
    mode: OpenMode,
    opts: IndexThreadOptions & { expansionSearch?: number; exactFilterMax?: number } = {},
  ): Promise<IndexThread> {
    const thread = new IndexThread(spawn(opts), snapshot.settings);
    await thread
      .request({
        op: 'open',
        dir: snapshot.dir,
        settings: snapshot.settings,
        namespaces: snapshot.namespaces,
        mode,
        expansionSearch: opts.expansionSearch,
        exactFilterMax: opts.exactFilterMax,
      })
      .catch(async (err) => {
        await thread.close();
        throw err;
      });
    return thread;
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.waiting.size;
  }

  get alive(): boolean {
    return !this.dead && !this.closing;
  }

  /**
   * Applies a batch of upserts and deletes. With `transfer: true` the batch's vector buffer moves to
   * the thread without a copy and is detached here (the caller must not use it afterwards).
   */
  apply(batch: OpBatch, opts: { transfer?: boolean } = {}): Promise<ApplyResult> {
    const vectors = opts.transfer && isWholeBuffer(batch.vectors) ? batch.vectors : batch.vectors.slice();
    return this.request({ op: 'apply', batch: { ops: batch.ops, vectors } }, [vectors.buffer as ArrayBuffer]);
  }

  /** Upserts items into one namespace (default `default`) in one batch add. */
  upsertMany(items: readonly { id: string; vector: ArrayLike<number>; meta?: ItemMeta }[], namespace = DEFAULT_NAMESPACE): Promise<ApplyResult> {
    const d = this.settings.dimensions;
    const vectors = new Float32Array(items.length * d);
    const ops: OpBatch['ops'] = [];
    for (const item of items) {
      if (item.vector?.length !== d) throw new RangeError(`vector of ${item.id} has ${item.vector?.length} components, expected ${d}`);
      vectors.set(item.vector, ops.length * d);
      ops.push({ kind: 'upsert', namespace, id: item.id, ...(item.meta ? { meta: item.meta } : {}) });
    }
    return this.apply({ ops, vectors }, { transfer: true });
  }

  deleteMany(ids: readonly string[], namespace = DEFAULT_NAMESPACE): Promise<ApplyResult> {
    return this.apply({ ops: ids.map((id) => ({ kind: 'delete', namespace, id })), vectors: new Float32Array(0) }, { transfer: true });
  }

  /** Nearest `k` hits in `namespace`, or merged across all namespaces when it is omitted. */
  search(vector: Float32Array | readonly number[], k: number, namespace?: string): Promise<NamespacedHit[]> {
    const v = vector instanceof Float32Array ? vector : Float32Array.from(vector);
    return this.request({ op: 'search', vector: v, k, namespace });
  }

  /**
   * A batch of queries in one message and as few native calls as possible (see
   * `NamespacedIndex.searchBatch`): row `i` of `vectors` is the vector of `queries[i]`; each answer is
   * its own success or error. `vectors` is transferred (detached here) when it owns its whole buffer.
   * `threads`: native threads per call (0 = all cores; a created or written-to index uses one).
   */
  searchBatch(vectors: Float32Array, queries: BatchQuery[], threads = 0): Promise<BatchAnswer[]> {
    const v = isWholeBuffer(vectors) ? vectors : vectors.slice();
    return this.request({ op: 'searchBatch', vectors: v, queries, threads }, [v.buffer as ArrayBuffer]);
  }

  /** Writes the index files and `mapping.json` into `dir` (an existing, empty folder). */
  save(dir: string): Promise<SavedIndex> {
    return this.request({ op: 'save', dir });
  }

  stats(): Promise<IndexStats> {
    return this.request({ op: 'stats' });
  }

  /** Stops the thread. Pending requests fail with `IndexClosedError`. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.worker.terminate().then(
      () => this.fail(new IndexClosedError('index thread')),
      () => this.fail(new IndexClosedError('index thread')),
    );
    return this.closing;
  }

  private request<O extends ThreadRequest['op']>(request: Extract<ThreadRequest, { op: O }>, transfer: ArrayBuffer[] = []): Promise<ThreadResults[O]> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closing) return Promise.reject(new IndexClosedError('index thread'));
    const seq = ++this.seq;
    return new Promise<ThreadResults[O]>((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      try {
        this.worker.postMessage({ seq, request }, transfer);
      } catch (err) {
        this.waiting.delete(seq);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private onReply(reply: ThreadReply): void {
    const p = this.waiting.get(reply.seq);
    if (!p) return;
    this.waiting.delete(reply.seq);
    if (reply.ok) p.resolve(reply.result);
    else p.reject(new IndexThreadError(reply.error.message, reply.error.name));
  }

  private fail(err: Error): void {
    this.dead ??= err;
    for (const p of this.waiting.values()) p.reject(err);
    this.waiting.clear();
  }
}

function spawn(opts: IndexThreadOptions): Worker {
  return startWorkerScript(join(__dirname, 'index-worker'), { name: opts.name ?? 'usearch-index', resourceLimits: opts.resourceLimits });
}

function isWholeBuffer(a: Float32Array): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !(a.buffer instanceof SharedArrayBuffer);
}
