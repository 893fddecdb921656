import type { Cluster, Redis } from 'ioredis';
import { isCluster } from '../redis-lua/cluster-client';
import { withDeadlineOr } from '../resilience/deadline';

/** What one instance tells the others: drop these keys (logical keys of one cache) or everything. */
export interface InvalidationMessage {
  from: string;
  keys: readonly string[] | 'all';
}

const FORMAT = 1;

/** How often a cluster client's subscription is checked for having moved to another node's connection. */
const CLUSTER_SUBSCRIBER_CHECK_MS = 1_000;

export function encodeInvalidation(from: string, keys: readonly string[] | 'all'): string {
  return JSON.stringify(keys === 'all' ? { f: FORMAT, from, all: true } : { f: FORMAT, from, keys });
}

/** Parses a message; null for anything that is not a well-formed invalidation (ignored, never thrown). */
function decodeInvalidation(text: string): InvalidationMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (!m || typeof m !== 'object') return null;
  const o = m as { f?: unknown; from?: unknown; keys?: unknown; all?: unknown };
  if (o.f !== FORMAT || typeof o.from !== 'string') return null;
  if (o.all === true) return { from: o.from, keys: 'all' };
  if (Array.isArray(o.keys) && o.keys.every((k) => typeof k === 'string')) return { from: o.from, keys: o.keys as string[] };
  return null;
}

export interface InvalidationBusOptions {
  /** Subscriber-mode connection. */
  subscriber: Redis | Cluster;
  /** True when the bus created it (and so disconnects it on close). */
  owned: boolean;
  channel: string;
  instanceId: string;
  onMessage: (msg: InvalidationMessage) => void;
  /** Called after a reconnect once the subscription is confirmed again. */
  onResubscribed: () => void;
  onError: (err: unknown) => void;
}

/**
 * Receives invalidations for one cache over Redis pub/sub. Publishing goes through the cache's normal
 * connection, in the same pipeline as the write it announces. A subscriber connection may be shared by
 * several buses: each listens to its own channel only and unsubscribes only that channel on close.
 *
 * Pub/sub is fire-and-forget: a message sent while this subscriber is disconnected is lost. So after a
 * reconnect the bus re-subscribes, waits for the confirmation, then tells the cache (which clears L1).
 * A Redis Cluster client reconnects its subscription without a 'ready': when the node it listens on goes
 * away, ioredis subscribes again on another node while the client stays ready. The bus notices the move
 * (the subscriber's connection changed, checked every `CLUSTER_SUBSCRIBER_CHECK_MS`) and does the same.
 */
export class InvalidationBus {
  private started = false;
  private lostConnection = false;
  private firstConfirmed!: (ok: boolean) => void;
  /** Settles at the first confirmed subscription (true), or false if the bus closes before one. */
  readonly confirmed = new Promise<boolean>((resolve) => {
    this.firstConfirmed = resolve;
  });
  private closed = false;
  private moveCheck?: NodeJS.Timeout;
  /** A cluster client's current subscription connection, and the one the bus last had its subscription confirmed on. */
  private subscriptionConnection?: () => object | null;
  private confirmedOn: object | null = null;
  private readonly listeners: Array<[string, (...args: unknown[]) => void]> = [];

  constructor(private readonly opts: InvalidationBusOptions) {
    const { subscriber, channel } = opts;
    this.listen('message', (ch: string, text: string) => {
      if (ch !== channel || this.closed) return;
      const msg = decodeInvalidation(text);
      if (msg && msg.from !== opts.instanceId) opts.onMessage(msg);
    });
    this.listen('close', () => {
      if (this.started) this.lostConnection = true;
    });
    this.listen('ready', () => {
      if (!this.lostConnection || this.closed) return;
      this.lostConnection = false;
      this.resubscribe();
    });
    if (opts.owned) this.listen('error', (err: unknown) => opts.onError(err));
    if (isCluster(subscriber)) this.watchClusterSubscription(subscriber);
  }

  /** ioredis re-subscribes by itself; subscribing again is harmless and gives us a confirmation, after which the cache clears L1. */
  private resubscribe(): void {
    this.opts.subscriber.subscribe(this.opts.channel).then(
      () => {
        if (this.closed) return;
        this.noteConfirmed();
        this.firstConfirmed(true);
        this.opts.onResubscribed();
      },
      (err: unknown) => this.opts.onError(err),
    );
  }

  /**
   * A cluster client's subscription lives on one node's connection (ioredis's ClusterSubscriber, an
   * internal: in a version without it only 'ready' is watched). When that connection ends, ioredis
   * subscribes on another one and emits nothing: a new connection means messages may have been lost.
   */
  private watchClusterSubscription(cluster: Cluster): void {
    this.subscriptionConnection = () => (cluster as unknown as { subscriber?: { getInstance?: () => object | null } }).subscriber?.getInstance?.() ?? null;
    this.moveCheck = setInterval(() => {
      const now = this.subscriptionConnection!();
      if (this.closed || now === null || this.confirmedOn === null || now === this.confirmedOn) return;
      this.confirmedOn = now;
      this.resubscribe();
    }, CLUSTER_SUBSCRIBER_CHECK_MS);
    this.moveCheck.unref();
  }

  private noteConfirmed(): void {
    if (this.subscriptionConnection) this.confirmedOn = this.subscriptionConnection();
  }

  /**
   * Subscribes. A failure (Redis down at start-up) is reported through `onError`, not thrown: the bus
   * subscribes again when the connection becomes ready. Idempotent.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.opts.subscriber.subscribe(this.opts.channel).then(
      () => {
        this.noteConfirmed();
        this.firstConfirmed(true);
      },
      (err: unknown) => this.opts.onError(err),
    );
  }

  async close(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.moveCheck);
    this.firstConfirmed(false);
    const { subscriber, owned, channel } = this.opts;
    for (const [event, fn] of this.listeners) subscriber.off(event, fn);
    if (owned) {
      // Cutting a connection in the middle of its handshake makes ioredis fail its ready check and
      // leave a 2 s timer behind: let a handshake in progress finish first (bounded).
      if (subscriber.status === 'connect' || subscriber.status === 'connecting') await readyOrTimeout(subscriber, timeoutMs);
      // disconnect(), not quit(): QUIT would wait in the offline queue while Redis is down. Not on an
      // ended client: ioredis would arm a 2 s timer for a socket that is already gone.
      if (subscriber.status !== 'end') subscriber.disconnect();
      return;
    }
    if (subscriber.status !== 'ready') return;
    await withDeadlineOr(
      subscriber.unsubscribe(channel).catch(() => undefined),
      timeoutMs,
      undefined,
    );
  }

  private listen<A extends unknown[]>(event: string, fn: (...args: A) => void): void {
    const listener = fn as unknown as (...args: unknown[]) => void;
    this.opts.subscriber.on(event, listener);
    this.listeners.push([event, listener]);
  }
}

/** Resolves when `client` is ready or has ended, or after `timeoutMs`, whichever is first. */
async function readyOrTimeout(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  let done!: () => void;
  const settled = new Promise<void>((resolve) => {
    done = () => resolve();
    client.once('ready', done);
    client.once('end', done);
  });
  try {
    await withDeadlineOr(settled, timeoutMs, undefined);
  } finally {
    client.off('ready', done);
    client.off('end', done);
  }
}
