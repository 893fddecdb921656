import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { DealInvalidationRequest } from '../contracts/deals';
import { validate } from '../contracts/validate';
import { isCluster } from '../redis-lua/cluster-client';
import { withDeadline, withDeadlineOr } from '../resilience/deadline';
import { CacheUnavailableError } from './errors';
import { encodeInvalidation } from './invalidation-bus';
import { DEAL_NAMESPACE, DEFAULT_KEY_PREFIX, DEFAULT_KEY_VERSION, dealKey, invalidationChannel, isKeyPrefix, isKeySegment, keySpace } from './keys';

export interface InvalidateDealsOptions {
  /** Key prefix of the fleet's caches (`CACHE_KEY_PREFIX` of the replicas). Default `fleet:cache`. */
  prefix?: string;
  /** Storage version of the deal cache. Default `v1`. */
  version?: string;
  /** Deadline of the one Redis round trip. Default 5,000 ms. */
  timeoutMs?: number;
}

/** What an invalidation did. */
export interface DealInvalidation {
  /** The ids, as given. */
  dealIds: string[];
  /** Redis (L2) entries removed; an id nobody had cached is not an error. */
  deleted: number;
  /**
   * Deal caches (one per replica process) that were subscribed and got the message. Each drops the ids from
   * its L1 when it reads its subscriber connection, before any later reply on that connection. On a Redis
   * Cluster, PUBLISH counts only the subscribers of the node that took it; the cluster bus carries the
   * message to every node, so the count is the channel's subscribers on every node (`PUBSUB NUMSUB`).
   */
  receivers: number;
}

/**
 * Drops cached deal rows on every replica, after a CRM update: removes their Redis (L2) entries and
 * publishes the ids on the deal cache's invalidation channel, in ONE round trip (a pipeline; the delete
 * runs first, so a replica that drops its L1 copy finds no old copy in Redis either). The next job that
 * asks for one of these deals reads it from the warehouse. Ids are validated as a `deals` job's are.
 * Throws `ValidationError` for bad ids, `CacheUnavailableError` when Redis did not answer (then nothing
 * is known to be invalidated: retry).
 *
 * @example
 *   const { receivers } = await invalidateDeals(redis, ['D-1', 'D-2'], { prefix: 'fleet:cache' });
 */
export async function invalidateDeals(redis: Redis | Cluster, dealIds: readonly string[], opts: InvalidateDealsOptions = {}): Promise<DealInvalidation> {
  const { dealIds: ids } = validate(DealInvalidationRequest, { dealIds });
  const prefix = opts.prefix ?? DEFAULT_KEY_PREFIX;
  const version = opts.version ?? DEFAULT_KEY_VERSION;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  if (!isKeyPrefix(prefix)) throw new TypeError(`invalidateDeals: option \`prefix\` must be 1-128 of [A-Za-z0-9_.:{}-], got ${JSON.stringify(prefix)}`);
  if (!isKeySegment(version)) throw new TypeError(`invalidateDeals: option \`version\` must be 1-64 of [A-Za-z0-9_.-], got ${JSON.stringify(version)}`);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000)
    throw new RangeError(`invalidateDeals: option \`timeoutMs\` must be an integer from 1 to 60000, got ${String(opts.timeoutMs)}`);

  const space = keySpace(prefix, version, DEAL_NAMESPACE);
  const keys = ids.map(dealKey);
  // A sender id no cache instance has, so every instance (including one in this process) acts on it.
  const message = encodeInvalidation(`invalidate-deals:${randomUUID()}`, keys);
  const pipeline = redis.pipeline();
  pipeline.unlink(...keys.map((k) => space + k));
  pipeline.publish(invalidationChannel(space), message);
  let replies: Array<[Error | null, unknown]>;
  try {
    replies = (await withDeadline(pipeline.exec(), timeoutMs, () => new CacheUnavailableError('invalidate', 'timeout'))) ?? [];
  } catch (err) {
    throw err instanceof CacheUnavailableError ? err : new CacheUnavailableError('invalidate', 'error', err);
  }
  const failed = replies.find(([err]) => err)?.[0];
  if (failed || replies.length !== 2) throw new CacheUnavailableError('invalidate', 'error', failed ?? new Error(`expected 2 replies, got ${replies.length}`));
  const [[, deleted], [, published]] = replies;
  const receivers = isCluster(redis) ? await subscribersOnEveryNode(redis, invalidationChannel(space), timeoutMs, Number(published)) : Number(published);
  return { dealIds: ids, deleted: Number(deleted), receivers };
}

/** Node connections that are gone or waiting to reconnect: a node being failed over holds no subscriber and would only make the call wait. */
const LOST = new Set(['close', 'end', 'reconnecting']);

/**
 * Subscribers of `channel` summed over the cluster's nodes, lost ones aside (a node the client never used
 * yet is lazily connected, `wait`, and is asked too); `fallback` (PUBLISH's count) if a node does not answer
 * in time.
 */
async function subscribersOnEveryNode(cluster: Cluster, channel: string, timeoutMs: number, fallback: number): Promise<number> {
  const counts = Promise.all(
    cluster
      .nodes('all')
      .filter((node) => !LOST.has(node.status))
      .map(async (node) => {
        const reply = (await node.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
        return Number(reply[1]);
      }),
  ).then((all) => all.reduce((a, b) => a + b, 0));
  return withDeadlineOr(counts, timeoutMs, fallback).catch(() => fallback);
}
