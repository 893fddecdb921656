import { chunkBytes, type ResultChunks } from './result-chunks';

/**
 * A finished query reply, kept as its UTF-8 bytes so a replay is byte-for-byte the original. Bytes, not
 * a string: up to `maxBytes` of replies then live outside the V8 heap, where the garbage collector does
 * not have to walk them, and the bound counts what is really held.
 */
export interface StoredReply {
  readonly body: Buffer;
  readonly queryId: string;
  /** The chunk files a large result's reply points at; downloadable while the reply is kept. */
  readonly chunks?: ResultChunks;
  /**
   * `false` for a reply that is not the query's result (the "running asynchronously" answer to an
   * `asyncExec` request): it is replayed by request id but not served as the result by query id.
   */
  readonly isResult?: boolean;
}

/** Bytes a stored reply holds: its body and its chunk files. */
function replyBytes(reply: StoredReply): number {
  return reply.body.byteLength + chunkBytes(reply.chunks);
}

export interface ReplayCacheOptions {
  /** Most replies kept. */
  readonly maxEntries: number;
  /** Most bytes of reply bodies and chunk files kept (an embedding batch of 500 texts is ~4 MB, ~1.7 MB chunked). */
  readonly maxBytes: number;
  /** How long a reply can be replayed. */
  readonly ttlMs: number;
  readonly now?: () => number;
}

interface Entry {
  reply?: StoredReply;
  pending?: Promise<StoredReply>;
  storedAt: number;
}

/**
 * Replies by request id, so that a retried `query-request` (the driver resends the same `requestId`
 * after a network error or a 5xx, and users may resubmit with it on purpose) is answered with the first
 * execution's reply instead of running the statement again: a retried INSERT inserts once. A retry that
 * arrives while the first execution is still running waits for it.
 *
 * Bounded in entries, bytes and age: after eviction a request id executes again (Snowflake, too, only
 * remembers request ids for a while). Also indexes replies by query id for `GET /queries/<id>/result`
 * and for the chunk files of large results, which therefore expire with the reply that lists them.
 */
export class ReplayCache {
  private readonly entries = new Map<string, Entry>();
  private readonly byQueryId = new Map<string, string>();
  private bytes = 0;
  private readonly now: () => number;

  constructor(private readonly opts: ReplayCacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * Runs `execute` for a new key, or returns the earlier reply (finished or still running) for a known
   * one. `execute` resolves to the reply and whether it may be replayed (injected faults and cancelled
   * statements are not, so a retry runs them again).
   */
  async run(key: string, execute: () => Promise<{ reply: StoredReply; keep: boolean }>): Promise<{ reply: StoredReply; replayed: boolean }> {
    const existing = this.entries.get(key);
    if (existing && (existing.pending || this.now() - existing.storedAt < this.opts.ttlMs)) {
      return { reply: existing.reply ?? (await existing.pending!), replayed: true };
    }
    if (existing) this.remove(key);

    let settle!: (r: StoredReply) => void;
    let fail!: (e: unknown) => void;
    const pending = new Promise<StoredReply>((res, rej) => {
      settle = res;
      fail = rej;
    });
    // A waiting retry sees the failure through its own await; nobody else may be listening.
    pending.catch(() => undefined);
    this.entries.set(key, { pending, storedAt: this.now() });
    try {
      const { reply, keep } = await execute();
      if (keep) this.store(key, reply);
      else this.entries.delete(key);
      settle(reply);
      return { reply, replayed: false };
    } catch (err) {
      this.entries.delete(key);
      fail(err);
      throw err;
    }
  }

  /** The reply of a finished query, by query id. */
  getByQueryId(queryId: string): StoredReply | undefined {
    const key = this.byQueryId.get(queryId);
    const entry = key === undefined ? undefined : this.entries.get(key);
    if (!entry?.reply) return undefined;
    if (this.now() - entry.storedAt >= this.opts.ttlMs) {
      this.remove(key!);
      return undefined;
    }
    return entry.reply;
  }

  clear(): void {
    this.entries.clear();
    this.byQueryId.clear();
    this.bytes = 0;
  }

  private store(key: string, reply: StoredReply): void {
    this.entries.delete(key); // re-insert so Map order is age order
    this.entries.set(key, { reply, storedAt: this.now() });
    if (reply.isResult !== false) this.byQueryId.set(reply.queryId, key);
    this.bytes += replyBytes(reply);
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.opts.maxEntries && this.bytes <= this.opts.maxBytes) break;
      if (e.reply && k !== key) this.remove(k);
    }
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    if (e.reply) {
      this.bytes -= replyBytes(e.reply);
      if (this.byQueryId.get(e.reply.queryId) === key) this.byQueryId.delete(e.reply.queryId);
    }
  }
}
