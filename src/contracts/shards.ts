import { hash } from 'node:crypto';
import { QUEUES, type QueueName } from './queues';

/**
 * Sharded queues (issue #21). A queue split into N shards is N BullMQ queues of the same name, each under a
 * prefix with a hash tag of its own, so on a Redis Cluster each shard's keys live in their own slot and the
 * shards spread over the cluster's masters. Shard 0 keeps the fleet's prefix, so one shard (the default) is
 * today's keys, and a queue going from 1 to N shards keeps its jobs where they are.
 *
 * Pure functions shared by producers, workers, the API and the benchmarks: every process derives the same
 * prefixes, shards and job ids from the same settings, with nothing stored.
 */

/**
 * The queues that may be sharded: jobs that stand alone. Flows (workflows, collect, analyze) stay on the fleet's
 * prefix: a BullMQ flow's parent and children are written and completed by one script, so on a cluster all of
 * a flow's queues must share one hash tag.
 */
export const SHARDABLE_QUEUES: readonly QueueName[] = Object.freeze([QUEUES.embeddings, QUEUES.deals, QUEUES.search]);

/** Most shards of one queue (each is a BullMQ queue a worker process consumes with a connection of its own). */
export const MAX_SHARDS = 16;

/** Shards per queue; a queue not named has one. */
export type ShardCounts = Readonly<Partial<Record<QueueName, number>>>;

/** Shard indexes a worker consumes, per queue; a queue not named: every shard. */
export type ShardSelection = Readonly<Partial<Record<QueueName, readonly number[]>>>;

/** How many shards `queue` has under `counts`. */
export const shardCount = (counts: ShardCounts | undefined, queue: QueueName): number => counts?.[queue] ?? 1;

function checkQueue(queue: string, what: string): QueueName {
  if (!(SHARDABLE_QUEUES as readonly string[]).includes(queue)) {
    throw new RangeError(
      `${what}: ${JSON.stringify(queue)} cannot be sharded (shardable: ${SHARDABLE_QUEUES.join(', ')}; flows keep one hash tag for parent and children)`,
    );
  }
  return queue as QueueName;
}

/** Parses `embeddings=3,deals=2` (FLEET_QUEUE_SHARDS). Throws a RangeError naming the bad part. */
export function parseShardCounts(spec: string, what = 'FLEET_QUEUE_SHARDS'): ShardCounts {
  const out: Partial<Record<QueueName, number>> = {};
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([a-z-]+)=(\d{1,3})$/.exec(part);
    if (!m) throw new RangeError(`${what}: ${JSON.stringify(part)} is not queue=count (e.g. embeddings=3)`);
    const queue = checkQueue(m[1], what);
    const n = Number(m[2]);
    if (n < 1 || n > MAX_SHARDS) throw new RangeError(`${what}: ${queue} must have 1 to ${MAX_SHARDS} shards, got ${n}`);
    if (queue in out) throw new RangeError(`${what}: ${queue} is named twice`);
    out[queue] = n;
  }
  return out;
}

/** Parses `embeddings=0+2,deals=1` (FLEET_WORKER_SHARDS): the shards a worker consumes. */
export function parseShardSelection(spec: string, what = 'FLEET_WORKER_SHARDS'): ShardSelection {
  const out: Partial<Record<QueueName, number[]>> = {};
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([a-z-]+)=(\d{1,2}(?:\+\d{1,2})*)$/.exec(part);
    if (!m) throw new RangeError(`${what}: ${JSON.stringify(part)} is not queue=shard+shard (e.g. embeddings=0+2)`);
    const queue = checkQueue(m[1], what);
    if (queue in out) throw new RangeError(`${what}: ${queue} is named twice`);
    const shards = [...new Set(m[2].split('+').map(Number))].sort((a, b) => a - b);
    if (shards.some((s) => s >= MAX_SHARDS)) throw new RangeError(`${what}: shard indexes of ${queue} must be below ${MAX_SHARDS}`);
    out[queue] = shards;
  }
  return out;
}

/** CRC16 (XMODEM) of a key's hash tag, modulo 16384: the slot Redis Cluster puts the key in. */
export function clusterSlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

const SLOTS = 16384;

/**
 * Where shard k's slot is aimed, as a fraction of the slot space past shard 0's: thirds first (1/3, 2/3), then
 * the sixths between them, then the twelfths, then the twenty-fourths. So on a cluster whose masters split the
 * slots evenly (as `redis-cli --cluster create` does), 2 or 3 shards land on 3 masters, 6 on 6 masters (or two
 * per master on 3), whichever master shard 0's tag is on; and shard k's aim never depends on how many shards
 * there are, so changing N leaves the existing shards' keys where they are.
 */
const AIMS: readonly number[] = (() => {
  const out = [0, 1 / 3, 2 / 3];
  for (let d = 6; out.length < 32; d *= 2) for (let i = 1; i < d; i += 2) out.push(i / d);
  return out;
})();
/** A shard's tag is accepted within this many slots of its aim (1/1024 of the space; ~500 candidates tried). */
const AIM_TOLERANCE = SLOTS / 1024;

const prefixCache = new Map<string, string>();

/**
 * The BullMQ prefix of one shard of `queue`: `base` for shard 0; for shard k the base's hash tag `{T}` becomes
 * `{T:queue:k}` (or `{T:queue:k:j}`, the first j whose slot is near the k-th aim), so it does not depend on the
 * number of shards: changing N adds or removes shards and leaves the others' keys where they are.
 *
 * @example
 *   shardPrefix('{fleet}', 'embeddings', 0) // '{fleet}'
 *   shardPrefix('{fleet}', 'embeddings', 2) // '{fleet:embeddings:2…}'
 */
export function shardPrefix(base: string, queue: QueueName, shard: number): string {
  if (shard === 0) return base;
  if (!Number.isInteger(shard) || shard < 0 || shard >= MAX_SHARDS) throw new RangeError(`shard must be an integer from 0 to ${MAX_SHARDS - 1}, got ${shard}`);
  const cacheKey = `${base}\u0000${queue}\u0000${shard}`;
  const cached = prefixCache.get(cacheKey);
  if (cached) return cached;
  const m = /\{([^{}]+)\}/.exec(base);
  if (!m) throw new RangeError(`a sharded queue needs a prefix with a hash tag ({…}) to vary per shard, got ${JSON.stringify(base)}`);
  const tag = m[1];
  const aim = (clusterSlot(tag) + Math.round(AIMS[shard] * SLOTS)) % SLOTS;
  let chosen = `${tag}:${queue}:${shard}`;
  for (let j = 0; j < 65_536; j++) {
    const candidate = j === 0 ? `${tag}:${queue}:${shard}` : `${tag}:${queue}:${shard}:${j}`;
    const d = Math.abs(clusterSlot(candidate) - aim);
    if (Math.min(d, SLOTS - d) <= AIM_TOLERANCE) {
      chosen = candidate;
      break;
    }
  }
  const prefix = base.replace(m[0], `{${chosen}}`);
  prefixCache.set(cacheKey, prefix);
  return prefix;
}

const SHARD_MARK = /^s(\d{1,2})\./;

/** The shard a job id names: `s2.…` is shard 2; an id without the mark is shard 0 (every id of an unsharded queue). */
export function shardOfJobId(id: string): number {
  const m = SHARD_MARK.exec(id);
  return m ? Number(m[1]) : 0;
}

/** `id` marked with its shard (shard 0 is unmarked, so one shard keeps today's ids). */
export const withShardMark = (id: string, shard: number): string => (shard === 0 ? id : `s${shard}.${id}`);

let roundRobin = 0;

/**
 * The shard a new job goes to: by its idempotency key's hash when it has one (a retried enqueue with the
 * same key lands on the same shard and stays deduplicated), else the next in turn.
 */
export function pickShard(count: number, idempotencyKey?: string): number {
  if (count <= 1) return 0;
  if (idempotencyKey === undefined) return roundRobin++ % count;
  return hash('sha1', idempotencyKey, 'buffer').readUInt32BE(0) % count;
}

/** The shard a queue's prefix belongs to (`shardPrefix`'s inverse): k for `{T:queue:k…}`, else 0. */
export function shardOfPrefix(prefix: string, queue: string): number {
  const m = /\{[^{}]*:([a-z-]+):(\d{1,2})(?::\d+)?\}/.exec(prefix);
  return m && m[1] === queue ? Number(m[2]) : 0;
}
