import type { Cluster, Redis } from 'ioredis';
import { isCluster } from '../redis-lua/cluster-client';
import { LuaCommand } from '../redis-lua/lua-command';
import type { CircuitBreaker } from '../resilience/circuit-breaker';
import { withDeadline } from '../resilience/deadline';
import { CacheUnavailableError } from './errors';

/** One key's L2 reply: the stored bytes (null when absent) and, when asked for, its remaining TTL in ms. */
export interface L2Entry {
  raw: Buffer | null;
  /** Remaining TTL in ms; -1 when not fetched (MGET path) or the key has no expiry. */
  pttlMs: number;
}

/**
 * GET and PTTL for every key in one server-side call (only used when grace periods are on). On the hot path
 * of the deal cache: sent as EVALSHA, its text only once per connection.
 */
const readWithTtl = new LuaCommand(
  'fleetCacheReadWithTtl',
  `
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  out[2 * i - 1] = v
  if v then out[2 * i] = redis.call('PTTL', k) else out[2 * i] = -2 end
end
return out`,
);

function nodeName(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

/** Client states in which a command would only wait in ioredis's offline queue: fail fast instead. */
const DOWN = new Set(['reconnecting', 'close', 'end']);

export interface RedisTierOptions {
  timeoutMs: number;
  batchSize: number;
  /** Skips L2 while open; every call reports its outcome to it (a reply error counts as Redis being up). */
  breaker: CircuitBreaker;
  /** Reports every failed or skipped call; the caller counts it and decides whether to surface it. */
  onError: (err: CacheUnavailableError) => void;
}

/**
 * The L2 tier: batch reads and writes against Redis, each batch ONE round trip (the commands of a
 * pipeline are written together and answered together), each call under its own deadline and behind
 * a circuit breaker. Knows nothing of L1, codecs or loaders.
 */
export class RedisTier {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly opts: RedisTierOptions,
  ) {
    // Before any pipeline is made from the client: ioredis copies custom commands into a pipeline when it creates it.
    readWithTtl.defineOn(client);
  }

  /**
   * Reads `keys` in one round trip: MGET (or, with `withTtl`, a Lua GET+PTTL) per `batchSize` keys, all in
   * one pipeline. Throws CacheUnavailableError when skipped or failed; readers treat that as all-miss.
   */
  readMany(keys: readonly string[], withTtl: boolean): Promise<L2Entry[]> {
    return this.guard('read', async () => {
      const replies = await this.readReplies(keys, withTtl);
      const out: L2Entry[] = [];
      for (const arr of replies) {
        if (withTtl) {
          for (let j = 0; j < arr.length; j += 2) out.push({ raw: (arr[j] as Buffer | null) ?? null, pttlMs: Number(arr[j + 1]) });
        } else {
          for (const raw of arr) out.push({ raw: (raw as Buffer | null) ?? null, pttlMs: -1 });
        }
      }
      if (out.length !== keys.length) throw new Error(`L2 read returned ${out.length} entries for ${keys.length} keys`);
      return out;
    });
  }

  /** One command per `batchSize` keys; several are sent as one pipeline (one write, one round trip). */
  private async readReplies(keys: readonly string[], withTtl: boolean): Promise<Array<Array<Buffer | number | null>>> {
    const { batchSize } = this.opts;
    if (keys.length <= batchSize) {
      const chunk = [...keys];
      return [(await (withTtl ? readWithTtl.run(this.client, chunk, [], { buffers: true }) : this.client.mgetBuffer(chunk))) as Array<Buffer | number | null>];
    }
    const p = this.client.pipeline();
    for (let i = 0; i < keys.length; i += batchSize) {
      const chunk = keys.slice(i, i + batchSize);
      if (withTtl) readWithTtl.queue(p, chunk, [], { buffers: true });
      else p.mgetBuffer(chunk);
    }
    const replies = (await p.exec()) ?? [];
    return replies.map(([err, reply]) => {
      if (err) throw err;
      return reply as Array<Buffer | number | null>;
    });
  }

  /** SET key value PX ttl for every entry, and optionally a PUBLISH, in one round trip. */
  writeMany(entries: ReadonlyArray<readonly [string, Buffer | string]>, pxMs: number, publish?: { channel: string; message: string }): Promise<void> {
    return this.guard('write', async () => {
      const p = this.client.pipeline();
      for (const [key, value] of entries) p.set(key, value, 'PX', pxMs);
      if (publish) p.publish(publish.channel, publish.message);
      throwFirst(await p.exec());
    });
  }

  /** UNLINK the keys and optionally PUBLISH, in one round trip. */
  deleteMany(keys: readonly string[], publish?: { channel: string; message: string }): Promise<void> {
    return this.guard('delete', async () => {
      const p = this.client.pipeline();
      for (let i = 0; i < keys.length; i += this.opts.batchSize) p.unlink(...keys.slice(i, i + this.opts.batchSize));
      if (publish) p.publish(publish.channel, publish.message);
      throwFirst(await p.exec());
    });
  }

  publish(channel: string, message: string): Promise<void> {
    return this.guard('publish', async () => {
      await this.client.publish(channel, message);
    });
  }

  /**
   * One SCAN step over `pattern`, unlinking what it found. Returns the next cursor ('0' when done). On a
   * cluster a SCAN sees one node only, so the steps walk every master in turn (cursor `<master>:<cursor>`).
   */
  scanDeleteStep(pattern: string, cursor: string): Promise<{ cursor: string; deleted: number }> {
    return this.guard('clear', async () => {
      const { client } = this;
      if (!isCluster(client)) {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        if (keys.length) await client.unlink(...keys);
        return { cursor: next, deleted: keys.length };
      }
      const masters = client.nodes('master').sort((a, b) => nodeName(a).localeCompare(nodeName(b)));
      const [at, nodeCursor] = cursor === '0' ? [0, '0'] : [Number(cursor.split(':')[0]), cursor.split(':')[1]];
      const node = masters[at];
      if (!node) return { cursor: '0', deleted: 0 };
      const [next, keys] = await node.scan(nodeCursor, 'MATCH', pattern, 'COUNT', 1000);
      // One UNLINK per key: keys of one master may still lie in different slots.
      if (keys.length) throwFirst(await keys.reduce((p, key) => p.unlink(key), node.pipeline()).exec());
      const more = next !== '0' ? `${at}:${next}` : at + 1 < masters.length ? `${at + 1}:0` : '0';
      return { cursor: more, deleted: keys.length };
    });
  }

  private async guard<T>(op: string, run: () => Promise<T>): Promise<T> {
    const { breaker } = this.opts;
    if (!breaker.allow()) throw this.report(new CacheUnavailableError(op, 'circuit-open'));
    if (DOWN.has(this.client.status)) {
      const err = new CacheUnavailableError(op, 'not-connected');
      breaker.failure(err);
      throw this.report(err);
    }
    try {
      // The command may still settle after the deadline; nobody waits for it then.
      const result = await withDeadline(run(), this.opts.timeoutMs, () => new CacheUnavailableError(op, 'timeout'));
      breaker.success();
      return result;
    } catch (err) {
      // A reply error (WRONGTYPE, script error…) means Redis is up: it must not open the circuit.
      if ((err as Error)?.name === 'ReplyError') breaker.success();
      else breaker.failure(err);
      throw this.report(err instanceof CacheUnavailableError ? err : new CacheUnavailableError(op, 'error', err));
    }
  }

  private report(err: CacheUnavailableError): CacheUnavailableError {
    this.opts.onError(err);
    return err;
  }
}

function throwFirst(replies: Array<[Error | null, unknown]> | null): void {
  for (const [err] of replies ?? []) if (err) throw err;
}
