import { endianness } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import { IndexItemId, IndexNamespace } from '../contracts/embedding';
import { ValidationError } from '../contracts/errors';
import { LuaCommand } from '../redis-lua/lua-command';
import type { ItemMeta } from './item-metadata';
import type { IndexOp, OpBatch } from './namespaced-index';
import { DEFAULT_NAMESPACE } from './settings';

/**
 * The index log: a Redis Stream `<prefix>:index:log`, one entry per upsert or delete, so an upsert
 * acknowledged to a producer survives a builder crash (Redis persists it; the builder replays it).
 *
 * Entry fields (all binary-safe strings):
 *   op  `u` (upsert) or `d` (delete)
 *   ns  namespace
 *   id  item id
 *   v   upserts only: the vector as raw little-endian float32 bytes (3 KB for 768-d; base64 would be 4 KB)
 *   j   upserts written by `appendUpsertsOnce`: the id of the job whose effect the entry is
 *   t   upserts, optional: tenant          ─┐ filter metadata; an entry without them (every entry
 *   dl  upserts, optional: deal id          │ written before filters existed) is an item without
 *   ts  upserts, optional: ms since epoch  ─┘ metadata, which filtered searches never return
 *
 * Applying entries is idempotent: the final vector of an id depends only on its last entry.
 */
export function indexLogKey(prefix: string): string {
  return `${prefix}:index:log`;
}

/** Pub/sub channel on which the builder announces each durable snapshot (`SnapshotAnnouncement` JSON). */
export function snapshotChannel(prefix: string): string {
  return `${prefix}:index:snapshots`;
}

export interface SnapshotAnnouncement {
  version: number;
  /** Folder name inside the snapshot directory (readers may mount it elsewhere). */
  name: string;
  count: number;
  log_position: string;
}

/**
 * One vector to index. `namespace` defaults to `default`; ids are unique per namespace. `tenant`,
 * `dealId` and `ts` (ms since the epoch) are what filtered searches select by; a re-upsert replaces
 * them with the new entry's (absent = none).
 */
export interface IndexUpsert {
  id: string;
  vector: Float32Array | readonly number[];
  namespace?: string;
  tenant?: string;
  dealId?: string;
  ts?: number;
}

export interface IndexDeletion {
  id: string;
  namespace?: string;
}

export interface AppendOptions {
  /** When given, every vector must have exactly this many components. */
  dimensions?: number;
}

/** Most items accepted by one append call (one MULTI). */
const MAX_APPEND_BATCH = 10_000;

const LE = endianness() === 'LE';

/**
 * Appends upserts to the index log in one MULTI/EXEC (one round trip, all or nothing). When it
 * resolves the upserts are acknowledged: the builder will apply them even if it restarts first.
 * Throws `ValidationError` (listing every bad item) before touching Redis. Returns the stream ids.
 *
 * @example
 *   await appendUpserts(redis, 'fleet', [{ id: 'call-42', namespace: 'call_notes', vector }]);
 */
export async function appendUpserts(redis: Redis | Cluster, prefix: string, items: readonly IndexUpsert[], opts: AppendOptions = {}): Promise<string[]> {
  validateUpserts(items, opts);
  const key = indexLogKey(prefix);
  const tx = redis.multi();
  for (const item of items)
    tx.xadd(key, '*', 'op', 'u', 'ns', item.namespace ?? DEFAULT_NAMESPACE, 'id', item.id, 'v', vectorBytes(item.vector), ...metaFields(item));
  return execIds(await tx.exec());
}

/** An upsert that is the effect of one BullMQ job: appended at most once per job, however often the job runs. */
export interface JobUpsert extends IndexUpsert {
  /** The job's hash in Redis (`<prefix>:<queue>:<jobId>`, BullMQ's `job.queueQualifiedName + ':' + job.id`). */
  jobKey: string;
  jobId: string;
}

/** Job-hash field that records "this job's index upsert is in the log". */
export const INDEX_EFFECT_FIELD = 'fleet:index-upsert';

// One script call per batch: for each item, HSETNX a marker on the job's own hash and append only when the
// marker is new. Marker and entry are written atomically, and the marker goes away with the job (BullMQ's
// retention), so nothing needs a TTL. A job hash that no longer exists (removed while running) gets no
// marker: its entry is appended, as without deduplication. A job of a sharded queue's other shards has its
// hash in another slot, which a script on a cluster cannot touch: its marker is a key of its own in the log's
// slot (ARGV[a + 8] its TTL in seconds, the jobs' retention), set with SET NX.
const APPEND_ONCE_LUA = `
local out = {}
for i = 2, #KEYS do
  local a = (i - 2) * 8
  local fresh = 1
  if ARGV[a + 8] ~= '' then
    if not redis.call('SET', KEYS[i], ARGV[a + 4], 'NX', 'EX', ARGV[a + 8]) then fresh = 0 end
  elseif redis.call('EXISTS', KEYS[i]) == 1 then fresh = redis.call('HSETNX', KEYS[i], '${INDEX_EFFECT_FIELD}', ARGV[a + 4]) end
  if fresh == 1 then
    local entry = {'XADD', KEYS[1], '*', 'op', 'u', 'ns', ARGV[a + 1], 'id', ARGV[a + 2], 'v', ARGV[a + 3], 'j', ARGV[a + 4]}
    if ARGV[a + 5] ~= '' then table.insert(entry, 't'); table.insert(entry, ARGV[a + 5]) end
    if ARGV[a + 6] ~= '' then table.insert(entry, 'dl'); table.insert(entry, ARGV[a + 6]) end
    if ARGV[a + 7] ~= '' then table.insert(entry, 'ts'); table.insert(entry, ARGV[a + 7]) end
    out[i - 1] = redis.call(unpack(entry))
  else
    out[i - 1] = ''
  end
end
return out`;
const appendOnce = new LuaCommand('fleetIndexAppendOnce', APPEND_ONCE_LUA);

/**
 * Like {@link appendUpserts}, but exactly once per job: a job that runs again (lost lock, killed worker,
 * Redis failover replay) finds its marker and appends nothing. Each entry carries the job id (field `j`).
 * Returns the stream id of each appended item, or null where the job had already appended its upsert.
 * Every job key must hash to the log's slot on Redis Cluster (a `{hash-tagged}` prefix does that).
 */
export async function appendUpsertsOnce(
  redis: Redis | Cluster,
  prefix: string,
  items: readonly JobUpsert[],
  opts: AppendOptions & {
    /** How long the marker of a job outside the log's slot (a sharded queue's shard) lives. Default 7 days. */
    markerTtlS?: number;
  } = {},
): Promise<(string | null)[]> {
  validateUpserts(items, opts, (item, i, issues) => {
    if (typeof item?.jobKey !== 'string' || item.jobKey.length === 0) issues.push({ path: `[${i}].jobKey`, message: "must be the job's Redis key" });
    if (typeof item?.jobId !== 'string' || item.jobId.length === 0) issues.push({ path: `[${i}].jobId`, message: 'must be the job id' });
  });
  const logKey = indexLogKey(prefix);
  // Keys with the log's hash tag share its slot (Redis hashes only the tag). Without a tag the fleet is on one
  // Redis (a cluster requires tags): every key may be touched together.
  const tagOf = (key: string) => /\{[^{}]+\}/.exec(key)?.[0];
  const logTag = tagOf(logKey);
  const ttl = String(opts.markerTtlS ?? 7 * 24 * 3600);
  const keys: string[] = [logKey];
  const args: (string | Buffer)[] = [];
  for (const item of items) {
    // The job's own hash when it shares the log's slot; else a marker key in the log's slot.
    const own = logTag === undefined || tagOf(item.jobKey) === logTag;
    keys.push(own ? item.jobKey : `${logKey}:once:${item.jobKey.replace(/[{}]/g, '')}`);
    args.push(
      item.namespace ?? DEFAULT_NAMESPACE,
      item.id,
      vectorBytes(item.vector),
      item.jobId,
      item.tenant ?? '',
      item.dealId ?? '',
      item.ts === undefined ? '' : String(item.ts),
      own ? '' : ttl,
    );
  }
  const reply = (await appendOnce.run(redis, keys, args)) as string[];
  return reply.map((id) => (id === '' ? null : String(id)));
}

function validateUpserts<T extends IndexUpsert>(
  items: readonly T[],
  opts: AppendOptions,
  extra?: (item: T, i: number, issues: { path: string; message: string }[]) => void,
): void {
  const issues: { path: string; message: string }[] = [];
  checkBatch(items, issues);
  items.forEach?.((item, i) => {
    checkRef(item, i, issues);
    const v = item?.vector;
    if (!(v instanceof Float32Array) && !Array.isArray(v)) issues.push({ path: `[${i}].vector`, message: 'must be a Float32Array or an array of numbers' });
    else if (v.length === 0 || (opts.dimensions !== undefined && v.length !== opts.dimensions)) {
      issues.push({ path: `[${i}].vector`, message: `has ${v.length} components, expected ${opts.dimensions ?? 'at least 1'}` });
    } else {
      for (let j = 0; j < v.length; j++) {
        if (typeof v[j] !== 'number' || !Number.isFinite(v[j])) {
          issues.push({ path: `[${i}].vector[${j}]`, message: 'must be a finite number' });
          break;
        }
      }
    }
    for (const field of ['tenant', 'dealId'] as const) {
      if (item?.[field] === undefined) continue;
      const r = IndexItemId.safeParse(item[field]);
      if (!r.success) issues.push({ path: `[${i}].${field}`, message: r.error.issues[0].message });
    }
    if (item?.ts !== undefined && (typeof item.ts !== 'number' || !Number.isSafeInteger(item.ts) || item.ts < 0)) {
      issues.push({ path: `[${i}].ts`, message: 'must be an integer number of ms since the epoch' });
    }
    extra?.(item, i, issues);
  });
  if (issues.length) throw new ValidationError(issues);
}

/** Appends deletes to the index log (one MULTI/EXEC). Deleting an unknown id is a no-op when applied. */
export async function appendDeletes(redis: Redis | Cluster, prefix: string, items: readonly IndexDeletion[]): Promise<string[]> {
  const issues: { path: string; message: string }[] = [];
  checkBatch(items, issues);
  items.forEach?.((item, i) => checkRef(item, i, issues));
  if (issues.length) throw new ValidationError(issues);
  const key = indexLogKey(prefix);
  const tx = redis.multi();
  for (const item of items) tx.xadd(key, '*', 'op', 'd', 'ns', item.namespace ?? DEFAULT_NAMESPACE, 'id', item.id);
  return execIds(await tx.exec());
}

/** A read of the log, decoded into a batch ready for `IndexThread.apply`. */
export interface LogRead {
  /** Stream id of the last entry read (also of malformed ones): the next read starts after it. */
  lastId: string;
  entries: number;
  batch: OpBatch;
  /** Entries that could not be decoded (skipped, never retried: they would fail the same way). */
  malformed: { streamId: string; reason: string }[];
}

/**
 * Reads up to `count` entries after `afterId` (exclusive), waiting up to `blockMs` when none are
 * there (omit it to return at once). Null when nothing arrived. Use a dedicated connection when blocking.
 */
export async function readLog(
  redis: Redis | Cluster,
  prefix: string,
  afterId: string,
  opts: { count: number; blockMs?: number; dimensions: number },
): Promise<LogRead | null> {
  const args: (string | number)[] = ['COUNT', opts.count];
  if (opts.blockMs !== undefined) args.push('BLOCK', opts.blockMs);
  args.push('STREAMS', indexLogKey(prefix), afterId);
  const reply = (await redis.callBuffer('XREAD', ...args)) as [Buffer, [Buffer, Buffer[]][]][] | null;
  const entries = reply?.[0]?.[1];
  if (!entries || entries.length === 0) return null;

  const d = opts.dimensions;
  const ops: IndexOp[] = [];
  const rows: Buffer[] = [];
  const malformed: LogRead['malformed'] = [];
  for (const [idBuf, fields] of entries) {
    const streamId = idBuf.toString();
    const f: Record<string, Buffer> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i].toString()] = fields[i + 1];
    const op = f.op?.toString();
    const namespace = f.ns?.toString() ?? DEFAULT_NAMESPACE;
    const id = f.id?.toString();
    if (!id || (op !== 'u' && op !== 'd')) {
      malformed.push({ streamId, reason: `entry needs op u|d and an id (got op=${op}, id=${id})` });
    } else if (op === 'u') {
      if (f.v?.length !== d * 4)
        malformed.push({ streamId, reason: `vector of ${namespace}/${id} has ${f.v?.length ?? 0} bytes, expected ${d * 4} (${d} float32)` });
      else {
        const meta = metaOf(f);
        ops.push(meta ? { kind: 'upsert', namespace, id, meta } : { kind: 'upsert', namespace, id });
        rows.push(f.v);
      }
    } else ops.push({ kind: 'delete', namespace, id });
  }
  const vectors = new Float32Array(rows.length * d);
  const bytes = new Uint8Array(vectors.buffer);
  rows.forEach((buf, i) => {
    if (LE) bytes.set(buf, i * d * 4);
    else for (let j = 0; j < d; j++) vectors[i * d + j] = buf.readFloatLE(j * 4);
  });
  return { lastId: entries[entries.length - 1][0].toString(), entries: entries.length, batch: { ops, vectors }, malformed };
}

/** Deletes log entries older than `minId` (XTRIM MINID; the entry at `minId` stays). Returns how many went. */
export async function trimLog(redis: Redis | Cluster, prefix: string, minId: string): Promise<number> {
  return redis.xtrim(indexLogKey(prefix), 'MINID', minId);
}

/** Orders Redis stream ids (`<ms>-<seq>`). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as ?? '0') - BigInt(bs ?? '0');
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

function checkBatch(items: readonly unknown[], issues: { path: string; message: string }[]): void {
  if (!Array.isArray(items)) issues.push({ path: '', message: 'items must be an array' });
  else if (items.length === 0) issues.push({ path: '', message: 'items must not be empty' });
  else if (items.length > MAX_APPEND_BATCH) issues.push({ path: '', message: `at most ${MAX_APPEND_BATCH} items per call, got ${items.length}` });
}

function checkRef(item: IndexDeletion, i: number, issues: { path: string; message: string }[]): void {
  const id = IndexItemId.safeParse(item?.id);
  if (!id.success) issues.push({ path: `[${i}].id`, message: id.error.issues[0].message });
  const ns = item?.namespace === undefined ? undefined : IndexNamespace.safeParse(item.namespace);
  if (ns && !ns.success) issues.push({ path: `[${i}].namespace`, message: ns.error.issues[0].message });
}

/** The optional metadata fields of a log entry (none when the item carries none). */
function metaFields(item: IndexUpsert): string[] {
  const out: string[] = [];
  if (item.tenant !== undefined) out.push('t', item.tenant);
  if (item.dealId !== undefined) out.push('dl', item.dealId);
  if (item.ts !== undefined) out.push('ts', String(item.ts));
  return out;
}

function metaOf(f: Record<string, Buffer>): ItemMeta | undefined {
  const meta: ItemMeta = {};
  if (f.t) meta.tenant = f.t.toString();
  if (f.dl) meta.dealId = f.dl.toString();
  if (f.ts) {
    const ts = Number(f.ts.toString());
    if (Number.isFinite(ts)) meta.ts = ts; // an unreadable time is dropped, not the whole entry
  }
  return meta.tenant !== undefined || meta.dealId !== undefined || meta.ts !== undefined ? meta : undefined;
}

function vectorBytes(v: Float32Array | readonly number[]): Buffer {
  const f = v instanceof Float32Array ? v : Float32Array.from(v);
  if (LE) return Buffer.from(new Uint8Array(f.buffer, f.byteOffset, f.byteLength)); // a copy: the caller may reuse its array
  const buf = Buffer.allocUnsafe(f.length * 4);
  for (let i = 0; i < f.length; i++) buf.writeFloatLE(f[i], i * 4);
  return buf;
}

function execIds(results: [Error | null, unknown][] | null): string[] {
  if (!results) throw new Error('index log append aborted (MULTI discarded)');
  return results.map(([err, id]) => {
    if (err) throw err;
    return String(id);
  });
}
