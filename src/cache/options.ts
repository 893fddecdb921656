import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { CircuitState } from '../resilience/circuit-breaker';
import type { CacheCodec } from './codecs';
import { DEFAULT_KEY_PREFIX, DEFAULT_KEY_VERSION, invalidationChannel, isKeyPrefix, isKeySegment, keySpace } from './keys';

/** Something worth a metric or a log line. Listeners run synchronously; one that throws is ignored. */
export type CacheEvent =
  /** An L2 call failed or was skipped (`reason` says why); the cache carried on without L2. */
  | { type: 'l2-error'; cache: string; op: string; reason: string; error: unknown }
  /** The L2 circuit opened (L2 skipped for a cool-down) or closed again (a probe succeeded). */
  | { type: 'circuit'; cache: string; state: Exclude<CircuitState, 'half-open'> }
  /** The loader threw (every key of the call failed) or returned Errors for `keys`. */
  | { type: 'load-error'; cache: string; keys: readonly string[]; error: unknown }
  /** Another instance told us to drop `keys` (or everything) from L1. */
  | { type: 'invalidated'; cache: string; keys: number | 'all'; from: string }
  /** The subscriber reconnected; L1 was cleared because invalidations may have been missed meanwhile. */
  | { type: 'resubscribed'; cache: string; clearedEntries: number }
  /** A background refresh of entries served stale finished. */
  | { type: 'refreshed'; cache: string; keys: number; errors: number };

/**
 * Options of a `TieredCache`. Every field but `redis`, `namespace` and `codec` has a default; the
 * constructor rejects a bad value with a RangeError/TypeError naming the option and the value.
 */
export interface TieredCacheOptions<V> {
  /** ioredis client for L2 reads, writes and invalidation publishes. Required; never quit by the cache. */
  redis: Redis | Cluster;
  /** Name of this cache's key space, e.g. `emb`. Required; 1-64 of `[A-Za-z0-9_.-]`. */
  namespace: string;
  /** How values are stored in Redis and sized in L1. Required (see `float32Codec`, `jsonCodec`). */
  codec: CacheCodec<V>;
  /** First part of every Redis key and of the invalidation channel. Default `fleet:cache`. */
  prefix?: string;
  /** Storage-format version, bumped when the codec or value meaning changes. Default `v1`. */
  version?: string;
  /** Most entries in L1. Default 10,000. */
  l1MaxEntries?: number;
  /** Most bytes in L1, as estimated by the codec plus a per-entry overhead. Default 64 MiB. */
  l1MaxBytes?: number;
  /**
   * How long an entry stays fresh in L1. Default 300,000 (5 min). Bounds how stale a replica can be if an
   * invalidation message is lost. With `graceMs`, also capped by the entry's remaining L2 lifetime.
   */
  l1TtlMs?: number;
  /** How long an entry stays fresh in Redis. Default 86,400,000 (24 h). */
  l2TtlMs?: number;
  /**
   * Stale-while-revalidate: an entry past its TTL but within `graceMs` is returned at once and refreshed
   * in the background (once, through L2 and then the loader). Entries live `ttl + graceMs` in each tier.
   * Default 0 (off). With grace on, L2 reads also fetch each key's remaining TTL (one Lua call).
   */
  graceMs?: number;
  /**
   * After a background refresh fails, how long the stale value is served before the loader is asked
   * again (so a failing warehouse is not hit on every lookup). Default 5,000 ms.
   */
  refreshBackoffMs?: number;
  /** Deadline of each L2 call (one round trip). Default 100 ms. */
  l2TimeoutMs?: number;
  /** Keys per MGET/Lua command; larger batches send several commands in the same round trip. Default 1,000. */
  l2BatchSize?: number;
  /** Consecutive L2 failures that open the circuit. Default 3. */
  l2BreakerThreshold?: number;
  /** How long L2 is skipped once the circuit is open, before one probe. Default 5,000 ms. */
  l2BreakerCooldownMs?: number;
  /** Publish and receive invalidations so other replicas drop changed keys from L1. Default true. */
  invalidation?: boolean;
  /**
   * Connection in subscriber mode for invalidations. Default: `redis.duplicate()`, owned and disconnected
   * by `close()`. An injected one may be shared by several caches; `close()` only unsubscribes.
   */
  subscriber?: Redis | Cluster;
  /** Clear L1 when the subscriber reconnects (messages may have been lost meanwhile). Default true. */
  clearL1OnResubscribe?: boolean;
  /** Identity in invalidation messages, so an instance ignores its own. Default a random UUID. */
  instanceId?: string;
  /** Listener for `CacheEvent`s (metrics, logs). Default none. */
  onEvent?: (event: CacheEvent) => void;
  /**
   * A value's version (deal rows: their `updatedAt`), compared when a background refresh replaces a
   * stale copy: when it moved on, the write-back also publishes an invalidation in the same round trip,
   * so every replica drops the old copy from L1. Default none (refreshes publish nothing).
   */
  versionOf?: (value: V) => string | number | null | undefined;
}

/** Options after defaults and validation, durations in ms. */
export interface CompiledCacheOptions<V> {
  readonly redis: Redis | Cluster;
  readonly namespace: string;
  readonly codec: CacheCodec<V>;
  readonly prefix: string;
  readonly version: string;
  /** `<prefix>:<version>:<namespace>:` */
  readonly keySpace: string;
  /** `<prefix>:<version>:<namespace>:~invalidate` (`~` cannot occur in a logical key made by the helpers). */
  readonly channel: string;
  readonly l1MaxEntries: number;
  readonly l1MaxBytes: number;
  readonly l1TtlMs: number;
  readonly l2TtlMs: number;
  readonly graceMs: number;
  readonly refreshBackoffMs: number;
  readonly l2TimeoutMs: number;
  readonly l2BatchSize: number;
  readonly l2BreakerThreshold: number;
  readonly l2BreakerCooldownMs: number;
  readonly invalidation: boolean;
  readonly subscriber?: Redis | Cluster;
  readonly clearL1OnResubscribe: boolean;
  readonly instanceId: string;
  readonly onEvent?: (event: CacheEvent) => void;
  readonly versionOf?: (value: V) => string | number | null | undefined;
}

export const CACHE_DEFAULTS = Object.freeze({
  prefix: DEFAULT_KEY_PREFIX,
  version: DEFAULT_KEY_VERSION,
  l1MaxEntries: 10_000,
  l1MaxBytes: 64 * 1024 * 1024,
  l1TtlMs: 5 * 60_000,
  l2TtlMs: 24 * 3_600_000,
  graceMs: 0,
  refreshBackoffMs: 5_000,
  l2TimeoutMs: 100,
  l2BatchSize: 1_000,
  l2BreakerThreshold: 3,
  l2BreakerCooldownMs: 5_000,
  invalidation: true,
  clearL1OnResubscribe: true,
});

const MAX_TTL_MS = 365 * 24 * 3_600_000;

export function compileCacheOptions<V>(input: TieredCacheOptions<V>): CompiledCacheOptions<V> {
  if (!input || typeof input !== 'object') throw new TypeError(`TieredCache: options must be an object, got ${input === null ? 'null' : typeof input}`);
  const o = { ...CACHE_DEFAULTS, ...stripUndefined(input) } as Required<Omit<TieredCacheOptions<V>, 'subscriber' | 'onEvent' | 'instanceId' | 'versionOf'>> &
    TieredCacheOptions<V>;
  const fail = (name: string, must: string, got: unknown): never => {
    throw new (typeof got === 'number' ? RangeError : TypeError)(`TieredCache: option \`${name}\` must be ${must}, got ${show(got)}`);
  };
  if (!isRedisLike(o.redis)) fail('redis', 'an ioredis client', o.redis);
  if (o.redis.options?.keyPrefix) fail('redis', 'a client without `keyPrefix` (the cache builds its own keys from `prefix`)', o.redis.options.keyPrefix);
  if (!isKeySegment(o.namespace)) fail('namespace', '1-64 of [A-Za-z0-9_.-] starting with a letter or digit', o.namespace);
  if (!o.codec || typeof o.codec.encode !== 'function' || typeof o.codec.decode !== 'function' || typeof o.codec.byteSize !== 'function') {
    fail('codec', 'a CacheCodec ({ name, encode, decode, byteSize })', o.codec);
  }
  if (!isKeyPrefix(o.prefix)) fail('prefix', '1-128 of [A-Za-z0-9_.:{}-] starting with a letter, a digit or {', o.prefix);
  if (!isKeySegment(o.version)) fail('version', '1-64 of [A-Za-z0-9_.-]', o.version);
  const int = (name: keyof typeof CACHE_DEFAULTS, min: number, max: number) => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(name, `an integer in [${min}, ${max}]`, v);
  };
  int('l1MaxEntries', 1, 10_000_000);
  int('l1MaxBytes', 1024, 2 ** 40);
  int('l1TtlMs', 1, MAX_TTL_MS);
  int('l2TtlMs', 1, MAX_TTL_MS);
  int('graceMs', 0, MAX_TTL_MS);
  int('refreshBackoffMs', 0, MAX_TTL_MS);
  int('l2TimeoutMs', 1, 60_000);
  int('l2BatchSize', 1, 100_000);
  int('l2BreakerThreshold', 1, 1_000);
  int('l2BreakerCooldownMs', 1, 3_600_000);
  if (typeof o.invalidation !== 'boolean') fail('invalidation', 'a boolean', o.invalidation);
  if (typeof o.clearL1OnResubscribe !== 'boolean') fail('clearL1OnResubscribe', 'a boolean', o.clearL1OnResubscribe);
  if (o.subscriber !== undefined) {
    if (!isRedisLike(o.subscriber)) fail('subscriber', 'an ioredis client', o.subscriber);
    if (o.subscriber === o.redis) fail('subscriber', 'a connection other than `redis` (a subscribed connection cannot run GET/SET)', 'the same client');
  }
  if (o.instanceId !== undefined && (typeof o.instanceId !== 'string' || o.instanceId.length === 0 || o.instanceId.length > 128)) {
    fail('instanceId', 'a string of 1-128 characters', o.instanceId);
  }
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function') fail('onEvent', 'a function', o.onEvent);
  if (o.versionOf !== undefined && typeof o.versionOf !== 'function') fail('versionOf', 'a function', o.versionOf);
  const space = keySpace(o.prefix, o.version, o.namespace);
  return Object.freeze({
    redis: o.redis,
    namespace: o.namespace,
    codec: o.codec,
    prefix: o.prefix,
    version: o.version,
    keySpace: space,
    channel: invalidationChannel(space),
    l1MaxEntries: o.l1MaxEntries,
    l1MaxBytes: o.l1MaxBytes,
    l1TtlMs: o.l1TtlMs,
    l2TtlMs: o.l2TtlMs,
    graceMs: o.graceMs,
    refreshBackoffMs: o.refreshBackoffMs,
    l2TimeoutMs: o.l2TimeoutMs,
    l2BatchSize: o.l2BatchSize,
    l2BreakerThreshold: o.l2BreakerThreshold,
    l2BreakerCooldownMs: o.l2BreakerCooldownMs,
    invalidation: o.invalidation,
    subscriber: o.subscriber,
    clearL1OnResubscribe: o.clearL1OnResubscribe,
    instanceId: o.instanceId ?? randomUUID(),
    onEvent: o.onEvent,
    versionOf: o.versionOf,
  });
}

function isRedisLike(v: unknown): v is Redis | Cluster {
  const r = v as Redis | undefined;
  return !!r && typeof r === 'object' && typeof r.pipeline === 'function' && typeof r.duplicate === 'function' && typeof r.status === 'string';
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'function') return 'a function';
  return Object.prototype.toString.call(v);
}
