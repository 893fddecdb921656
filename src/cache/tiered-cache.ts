import { LRUCache } from 'lru-cache';
import { CircuitBreaker, type CircuitState } from '../resilience/circuit-breaker';
import { L1_ENTRY_OVERHEAD_BYTES } from './codecs';
import { CacheClosedError, MissingLoadResultError } from './errors';
import { encodeInvalidation, InvalidationBus, type InvalidationMessage } from './invalidation-bus';
import { type CacheEvent, type CompiledCacheOptions, compileCacheOptions, type TieredCacheOptions } from './options';
import { type L2Entry, RedisTier } from './redis-tier';

/**
 * Loads the keys neither tier had, in one call (one warehouse statement). Returns an entry per key: the
 * value, or an Error for a key that failed on its own. Errors are handed to that key's callers and never
 * cached; a key left out of the map gets a `MissingLoadResultError`. Throwing fails every key of the call.
 * `info.refresh` is true for a background refresh of keys served stale (nobody waits for it), false when
 * callers wait for the keys.
 */
export type LoadMany<V> = (keys: string[], info: { refresh: boolean }) => Promise<ReadonlyMap<string, V | Error>>;

/** Counters since construction; see each field for what is counted. */
export interface CacheStats {
  /** Keys answered from L1 (including stale-within-grace and `peek` hits). */
  l1Hits: number;
  /** Keys answered from L2 (including stale-within-grace). */
  l2Hits: number;
  /** Keys neither tier had, handed to a loader. */
  misses: number;
  /** Loader calls (foreground and background refreshes). */
  loads: number;
  /** Keys whose load failed: a per-key Error, a missing result, or the whole call throwing. */
  loadErrors: number;
  /** L2 calls that failed (timeout, connection, reply error) — the cache carried on without L2. */
  l2Errors: number;
  /** L2 calls not made because the circuit was open. */
  l2Skipped: number;
  /** Errors on the invalidation subscriber (connection errors while Redis is down, failed subscribes). */
  busErrors: number;
  /** L2 entries that could not be decoded (treated as misses). */
  decodeErrors: number;
  /** L1 entries evicted to respect `l1MaxEntries` / `l1MaxBytes`. */
  evictions: number;
  /** Keys dropped from L1 because another instance invalidated them (a clear counts once). */
  invalidationsReceived: number;
  /** Keys answered with a value past its TTL, within `graceMs`. */
  staleServed: number;
  /** Background refreshes started (each covers the stale keys of one call). */
  refreshes: number;
  /** Keys answered by joining a lookup already in flight for the same key (single-flight). */
  joined: number;
  /** Listener calls that threw (and were ignored). */
  listenerErrors: number;
  /** Entries and estimated bytes in L1 now. */
  l1Entries: number;
  l1Bytes: number;
  /** Keys being looked up or loaded now. */
  inFlight: number;
  /** The L2 circuit: `open` while L2 is skipped, `half-open` when the next L2 call is the probe. */
  breaker: CircuitState;
}

type CounterName = Exclude<keyof CacheStats, 'l1Entries' | 'l1Bytes' | 'inFlight' | 'breaker'>;

interface L1Entry<V> {
  value: V;
  /** Bytes charged against `l1MaxBytes`. */
  size: number;
  /** `Date.now()` after which the entry is stale (served only within grace, and refreshed). */
  freshUntil: number;
  /** After a failed refresh: no new refresh before this `Date.now()` (the stale value is served meanwhile). */
  retryAfter?: number;
}

/** One key being looked up in L2 and/or loaded; later callers for the key wait on it. */
interface Flight<V> {
  readonly promise: Promise<V | Error>;
  readonly resolve: (v: V | Error) => void;
  /** Set by a delete/set/invalidation while in flight: the result is still returned but not cached. */
  invalidated: boolean;
  settled: boolean;
}

type State = 'open' | 'closing' | 'closed';

const MAX_KEY_LENGTH = 1024;

/**
 * Two-tier cache: a bounded in-process LRU (L1, by entries and bytes, TTL per entry) in front of Redis
 * (L2, TTL per entry), with batch lookups that cost one Redis round trip, per-key single-flight, a loader
 * called once per batch for what both tiers miss, cross-replica invalidation over pub/sub, optional
 * stale-while-revalidate, and graceful degradation to L1 + loader when Redis is slow or down.
 *
 * Values handed out are shared with L1: callers must not mutate them.
 *
 * @example
 *   const cache = new TieredCache({ redis, namespace: 'emb', codec: float32Codec(768) });
 *   const keys = texts.map((t) => embeddingKey(model, t));
 *   const byKey = new Map(keys.map((k, i) => [k, texts[i]]));
 *   const vectors = await cache.getMany(keys, async (missing) => {
 *     const rows = await embedTexts(warehouse, missing.map((k) => byKey.get(k)!), model);
 *     return new Map(missing.map((k, i) => [k, rows[i]]));
 *   });
 *   await cache.close();
 */
export class TieredCache<V> {
  readonly options: CompiledCacheOptions<V>;
  private readonly l1: LRUCache<string, L1Entry<V>>;
  private readonly l2: RedisTier;
  private readonly breaker: CircuitBreaker;
  private readonly bus?: InvalidationBus;
  private readonly flights = new Map<string, Flight<V>>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly counters: Record<CounterName, number> = {
    l1Hits: 0,
    l2Hits: 0,
    misses: 0,
    loads: 0,
    loadErrors: 0,
    l2Errors: 0,
    l2Skipped: 0,
    busErrors: 0,
    decodeErrors: 0,
    evictions: 0,
    invalidationsReceived: 0,
    staleServed: 0,
    refreshes: 0,
    joined: 0,
    listenerErrors: 0,
  };
  private state: State = 'open';
  private closing?: Promise<void>;

  constructor(options: TieredCacheOptions<V>) {
    this.options = compileCacheOptions(options);
    const o = this.options;
    this.l1 = new LRUCache<string, L1Entry<V>>({
      max: o.l1MaxEntries,
      maxSize: o.l1MaxBytes,
      sizeCalculation: (entry) => entry.size,
      ttl: o.l1TtlMs + o.graceMs,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.counters.evictions++;
      },
    });
    this.breaker = new CircuitBreaker({
      threshold: o.l2BreakerThreshold,
      resetMs: o.l2BreakerCooldownMs,
      onStateChange: (state) => this.emit({ type: 'circuit', cache: o.namespace, state }),
    });
    this.l2 = new RedisTier(o.redis, {
      timeoutMs: o.l2TimeoutMs,
      batchSize: o.l2BatchSize,
      breaker: this.breaker,
      onError: (err) => {
        if (err.reason === 'circuit-open') this.counters.l2Skipped++;
        else this.counters.l2Errors++;
        this.emit({ type: 'l2-error', cache: o.namespace, op: err.op, reason: err.reason, error: err });
      },
    });
    if (o.invalidation) {
      const owned = !o.subscriber;
      this.bus = new InvalidationBus({
        subscriber: o.subscriber ?? o.redis.duplicate(),
        owned,
        channel: o.channel,
        instanceId: o.instanceId,
        onMessage: (msg) => this.onInvalidation(msg),
        onResubscribed: () => {
          const cleared = o.clearL1OnResubscribe ? this.dropAllLocal() : 0;
          this.emit({ type: 'resubscribed', cache: o.namespace, clearedEntries: cleared });
        },
        onError: (error) => {
          this.counters.busErrors++;
          this.emit({ type: 'l2-error', cache: o.namespace, op: 'subscribe', reason: 'error', error });
        },
      });
      this.bus.start();
    }
  }

  /**
   * Resolves once invalidations are being received (the first subscription is confirmed; with Redis
   * down at start-up, that is when it comes back). The cache serves before that; this is for tests and
   * readiness checks, so wrap it in your own timeout. Rejects with CacheClosedError if the cache is closed
   * first. Resolves at once when `invalidation` is off.
   */
  async ready(): Promise<void> {
    if (!this.bus) return;
    if (!(await this.bus.confirmed)) throw new CacheClosedError(this.options.namespace);
  }

  /** The Redis key of a logical key, e.g. `fleet:cache:v1:emb:<hash>`. */
  redisKey(key: string): string {
    return this.options.keySpace + key;
  }

  /**
   * Synchronous L1-only lookup of a fresh entry: lets a caller answer L1 hits without waiting for a
   * batch window. A stale (grace) entry is not returned here: go through `getMany` to serve and refresh it.
   */
  peek(key: string): V | undefined {
    if (this.state === 'closed') return undefined;
    const entry = this.l1.get(key);
    if (!entry || entry.freshUntil <= Date.now()) return undefined;
    this.counters.l1Hits++;
    return entry.value;
  }

  /**
   * Values for all `keys` (a Map in the order of the first occurrence of each key): L1 first,
   * synchronously; then the L1 misses from L2 in one round trip (filling L1); then one `loadMany` call
   * for what is still missing, whose values are written back to L2 in one round trip and to L1. Keys
   * already being fetched by another call are not fetched again: this call waits for that one.
   * A per-key Error in the result means that key failed to load (it was not cached).
   */
  async getMany(keys: readonly string[], loadMany: LoadMany<V>): Promise<Map<string, V | Error>> {
    this.assertOpen();
    if (!Array.isArray(keys)) throw new TypeError(`getMany: keys must be an array, got ${typeof keys}`);
    if (typeof loadMany !== 'function') throw new TypeError('getMany: loadMany must be a function');
    const out = new Map<string, V | Error>();
    const waits: Promise<unknown>[] = [];
    const toFetch: string[] = [];
    const stale: string[] = [];
    keys.forEach(assertKey);
    const now = Date.now();
    for (const key of keys) {
      if (out.has(key)) continue;
      const entry = this.l1.get(key);
      // Without grace a past-fresh entry is a miss (lru-cache's own TTL clock may lag Date.now by a tick).
      if (entry && (entry.freshUntil > now || this.options.graceMs > 0)) {
        out.set(key, entry.value);
        this.counters.l1Hits++;
        if (entry.freshUntil <= now) {
          this.counters.staleServed++;
          if (!(entry.retryAfter! > now)) stale.push(key);
        }
        continue;
      }
      out.set(key, undefined as unknown as V); // keeps the caller's order
      const flight = this.flights.get(key);
      if (flight) {
        this.counters.joined++;
        waits.push(flight.promise.then((v) => out.set(key, v)));
      } else {
        toFetch.push(key);
      }
    }
    if (stale.length) this.refreshInBackground(stale, loadMany, 'refresh');
    if (toFetch.length) waits.push(this.fetch(toFetch, loadMany, out, 'get'));
    await Promise.all(waits);
    return out;
  }

  /** One key through `getMany`. Rejects with the key's load error. */
  async get(key: string, load: (key: string) => Promise<V>): Promise<V> {
    const result = await this.getMany([key], async ([k]) => new Map([[k, await load(k)]]));
    const value = result.get(key) as V | Error;
    if (value instanceof Error) throw value;
    return value;
  }

  /**
   * Writes values to L1 and L2 (one round trip, with the invalidation publish in the same pipeline) so
   * other replicas drop their L1 copies. Rejects with CacheUnavailableError when L2 could not be written;
   * L1 is updated either way.
   */
  async setMany(entries: Iterable<readonly [string, V]>): Promise<void> {
    this.assertOpen();
    const { codec } = this.options;
    const encoded: Array<[string, Buffer | string, V]> = [];
    for (const [key, value] of entries) {
      assertKey(key);
      encoded.push([key, codec.encode(value), value]);
    }
    if (!encoded.length) return;
    const now = Date.now();
    for (const [key, raw, value] of encoded) {
      this.markInvalidated(key);
      this.l1Set(key, value, this.sizeOf(value, raw), this.options.l1TtlMs, now);
    }
    await this.l2.writeMany(
      encoded.map(([key, raw]) => [this.redisKey(key), raw] as const),
      this.options.l2TtlMs + this.options.graceMs,
      this.bus
        ? {
            channel: this.options.channel,
            message: encodeInvalidation(
              this.options.instanceId,
              encoded.map(([k]) => k),
            ),
          }
        : undefined,
    );
  }

  set(key: string, value: V): Promise<void> {
    return this.setMany([[key, value]]);
  }

  /**
   * Removes keys from L1 and L2 and tells other replicas to drop them (one round trip). Rejects with
   * CacheUnavailableError when L2 could not be reached; the local L1 is cleared either way.
   */
  async delete(keys: readonly string[] | string): Promise<void> {
    this.assertOpen();
    const list = [...new Set(typeof keys === 'string' ? [keys] : keys)];
    list.forEach(assertKey);
    if (!list.length) return;
    for (const key of list) {
      this.markInvalidated(key);
      this.l1.delete(key);
    }
    await this.l2.deleteMany(
      list.map((k) => this.redisKey(k)),
      this.bus ? { channel: this.options.channel, message: encodeInvalidation(this.options.instanceId, list) } : undefined,
    );
  }

  /**
   * Empties this cache's namespace: L1 here, every `<keySpace>*` key in Redis (SCAN + UNLINK, several round
   * trips) and L1 of every other replica. Meant for operators and tests, not the hot path.
   */
  async clear(): Promise<number> {
    this.assertOpen();
    this.dropAllLocal();
    let cursor = '0';
    let deleted = 0;
    do {
      const step = await this.l2.scanDeleteStep(`${this.options.keySpace}*`, cursor);
      cursor = step.cursor;
      deleted += step.deleted;
    } while (cursor !== '0');
    if (this.bus) await this.l2.publish(this.options.channel, encodeInvalidation(this.options.instanceId, 'all'));
    return deleted;
  }

  stats(): CacheStats {
    return {
      ...this.counters,
      l1Entries: this.l1.size,
      l1Bytes: this.l1.calculatedSize,
      inFlight: this.flights.size,
      breaker: this.breaker.state,
    };
  }

  /**
   * Waits for background refreshes, stops receiving invalidations (disconnecting the subscriber only if
   * the cache created it), and empties L1. Never quits the injected `redis`. Idempotent; every step runs
   * even if an earlier one failed.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      const errors: unknown[] = [];
      await Promise.allSettled([...this.background]);
      try {
        await this.bus?.close(this.options.l2TimeoutMs);
      } catch (err) {
        errors.push(err);
      }
      this.l1.clear();
      this.state = 'closed';
      if (errors.length) throw new AggregateError(errors, `cache ${this.options.namespace}: close failed`);
    })();
    return this.closing;
  }

  /**
   * Looks `keys` up in L2 (one round trip) and loads what is missing (one loader call). Registers a
   * flight per key first, synchronously, so concurrent callers join instead of fetching again.
   * Modes: `get` (a caller waits); `refresh` (the keys were served stale from L1: a stale L2 copy is
   * not an answer); `reload` (L2 itself just served them stale: go straight to the loader).
   */
  private async fetch(keys: string[], loadMany: LoadMany<V>, out: Map<string, V | Error>, mode: 'get' | 'refresh' | 'reload'): Promise<void> {
    const refresh = mode !== 'get';
    const flights = keys.map((key) => this.startFlight(key));
    const settle = (i: number, value: V | Error) => {
      out.set(keys[i], value);
      const flight = flights[i];
      flight.settled = true;
      flight.resolve(value);
      if (this.flights.get(keys[i]) === flight) this.flights.delete(keys[i]);
    };
    const { codec, graceMs, l1TtlMs, l2TtlMs } = this.options;
    try {
      const l2 = mode === 'reload' ? null : await this.readL2(keys);
      const now = Date.now();
      const missing: number[] = [];
      const staleInL2: string[] = [];
      for (let i = 0; i < keys.length; i++) {
        const hit = l2?.[i];
        if (!hit?.raw) {
          missing.push(i);
          continue;
        }
        let value: V;
        try {
          value = codec.decode(hit.raw);
        } catch {
          this.counters.decodeErrors++;
          missing.push(i);
          continue;
        }
        // With grace, PTTL tells how much of the entry's life is left: the last `graceMs` of it is stale.
        const freshLeft = hit.pttlMs >= 0 && graceMs > 0 ? hit.pttlMs - graceMs : l1TtlMs;
        if (freshLeft <= 0 && refresh) {
          missing.push(i);
          continue;
        }
        this.counters.l2Hits++;
        if (freshLeft <= 0) {
          this.counters.staleServed++;
          staleInL2.push(keys[i]);
        }
        if (!flights[i].invalidated) this.l1Set(keys[i], value, this.sizeOf(value, hit.raw), Math.min(l1TtlMs, freshLeft), now);
        settle(i, value);
      }
      if (staleInL2.length) this.refreshInBackground(staleInL2, loadMany, 'reload');
      if (!missing.length) return;

      const missingKeys = missing.map((i) => keys[i]);
      this.counters.misses += refresh ? 0 : missingKeys.length;
      this.counters.loads++;
      let loaded: ReadonlyMap<string, V | Error>;
      try {
        loaded = await loadMany(missingKeys, { refresh });
        if (!(loaded instanceof Map)) throw new TypeError(`loadMany must return a Map, got ${Object.prototype.toString.call(loaded)}`);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        this.counters.loadErrors += missingKeys.length;
        this.emit({ type: 'load-error', cache: this.options.namespace, keys: missingKeys, error });
        const failedAt = Date.now();
        for (const i of missing) {
          if (refresh) this.backOffRefresh(keys[i], failedAt);
          settle(i, error);
        }
        return;
      }
      const toWrite: Array<readonly [string, Buffer | string]> = [];
      /** Refreshed keys whose version moved on: other replicas may hold the old one in L1. */
      const changed: string[] = [];
      const failed: string[] = [];
      const loadedAt = Date.now();
      for (const i of missing) {
        const key = keys[i];
        let value: V | Error | undefined = loaded.get(key);
        if (value === undefined) value = new MissingLoadResultError(key);
        if (value instanceof Error) {
          failed.push(key);
          if (refresh) this.backOffRefresh(key, loadedAt);
          settle(i, value);
          continue;
        }
        if (!flights[i].invalidated) {
          try {
            const raw = codec.encode(value);
            if (refresh && this.versionMoved(key, value)) changed.push(key);
            this.l1Set(key, value, this.sizeOf(value, raw), l1TtlMs, loadedAt);
            toWrite.push([this.redisKey(key), raw]);
          } catch (err) {
            // Not storable (wrong shape for the codec): hand the value out, cache nothing.
            this.emit({ type: 'load-error', cache: this.options.namespace, keys: [key], error: err });
          }
        }
        settle(i, value);
      }
      if (failed.length) {
        this.counters.loadErrors += failed.length;
        this.emit({ type: 'load-error', cache: this.options.namespace, keys: failed, error: loaded.get(failed[0]) ?? new MissingLoadResultError(failed[0]) });
      }
      // Awaited so that when getMany resolves, L2 holds the values (bounded by the L2 deadline).
      // A refresh that found a newer version tells the other replicas in the same round trip (their copies
      // may be younger in L1 than this one was, so they would not refresh it themselves for a while).
      const publish = changed.length && this.bus ? { channel: this.options.channel, message: encodeInvalidation(this.options.instanceId, changed) } : undefined;
      if (toWrite.length) await this.l2.writeMany(toWrite, l2TtlMs + graceMs, publish).catch(() => undefined);
    } catch (err) {
      // A bug in this method must not leave callers waiting forever.
      const error = err instanceof Error ? err : new Error(String(err));
      for (const [i, f] of flights.entries()) if (!f.settled) settle(i, error);
    }
  }

  /** L2 replies for `keys`, or null when L2 is skipped or failed (then everything counts as missing). */
  private async readL2(keys: string[]): Promise<L2Entry[] | null> {
    try {
      return await this.l2.readMany(
        keys.map((k) => this.redisKey(k)),
        this.options.graceMs > 0,
      );
    } catch {
      return null;
    }
  }

  /** Refreshes stale keys once: keys already in flight (being refreshed or fetched) are skipped. */
  private refreshInBackground(keys: string[], loadMany: LoadMany<V>, mode: 'refresh' | 'reload'): void {
    if (this.state !== 'open') return;
    const todo = keys.filter((k) => !this.flights.has(k));
    if (!todo.length) return;
    this.counters.refreshes++;
    const results = new Map<string, V | Error>();
    const run = this.fetch(todo, loadMany, results, mode).then(() => {
      let errors = 0;
      for (const v of results.values()) if (v instanceof Error) errors++;
      this.emit({ type: 'refreshed', cache: this.options.namespace, keys: todo.length, errors });
    });
    this.background.add(run);
    void run.finally(() => this.background.delete(run));
  }

  /** True when `versionOf` says `fresh` differs from the copy in L1 (no version, or no copy: false). */
  private versionMoved(key: string, fresh: V): boolean {
    const { versionOf } = this.options;
    const old = this.l1.peek(key);
    if (!versionOf || !old) return false;
    const before = versionOf(old.value);
    const after = versionOf(fresh);
    return before !== null && before !== undefined && after !== null && after !== undefined && before !== after;
  }

  /** A refresh failed: keep serving the stale value, and do not ask the loader again for a while. */
  private backOffRefresh(key: string, now: number): void {
    const entry = this.l1.peek(key);
    if (entry) entry.retryAfter = now + this.options.refreshBackoffMs;
  }

  private startFlight(key: string): Flight<V> {
    let resolve!: (v: V | Error) => void;
    const promise = new Promise<V | Error>((r) => {
      resolve = r;
    });
    const flight: Flight<V> = { promise, resolve, invalidated: false, settled: false };
    this.flights.set(key, flight);
    return flight;
  }

  private markInvalidated(key: string): void {
    const flight = this.flights.get(key);
    if (flight) flight.invalidated = true;
  }

  private l1Set(key: string, value: V, size: number, freshMs: number, now: number): void {
    if (freshMs <= 0 && this.options.graceMs === 0) return;
    const ttl = Math.max(1, Math.floor(freshMs + this.options.graceMs));
    this.l1.set(key, { value, size, freshUntil: now + freshMs }, { ttl });
  }

  private sizeOf(value: V, raw: Buffer | string): number {
    const { codec } = this.options;
    const bytes = codec.sizeOfEncoded ? codec.sizeOfEncoded(typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length) : codec.byteSize(value);
    return Math.max(1, Math.ceil(bytes)) + L1_ENTRY_OVERHEAD_BYTES;
  }

  private onInvalidation(msg: InvalidationMessage): void {
    if (msg.keys === 'all') {
      this.dropAllLocal();
      this.counters.invalidationsReceived++;
    } else {
      for (const key of msg.keys) {
        this.markInvalidated(key);
        this.l1.delete(key);
      }
      this.counters.invalidationsReceived += msg.keys.length;
    }
    this.emit({ type: 'invalidated', cache: this.options.namespace, keys: msg.keys === 'all' ? 'all' : msg.keys.length, from: msg.from });
  }

  private dropAllLocal(): number {
    const n = this.l1.size;
    for (const flight of this.flights.values()) flight.invalidated = true;
    this.l1.clear();
    return n;
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw new CacheClosedError(this.options.namespace);
  }

  private emit(event: CacheEvent): void {
    const listener = this.options.onEvent;
    if (!listener) return;
    try {
      const r = listener(event) as unknown;
      if (r && typeof (r as Promise<unknown>).catch === 'function') (r as Promise<unknown>).catch(() => this.counters.listenerErrors++);
    } catch {
      this.counters.listenerErrors++;
    }
  }
}

function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new TypeError(
      `cache key must be a string of 1-${MAX_KEY_LENGTH} characters, got ${typeof key === 'string' ? `${key.length} characters` : typeof key}`,
    );
  }
}
