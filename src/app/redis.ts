import { readFileSync } from 'node:fs';
import IORedis, { Cluster, type ClusterNode, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';
import type { RedisSettings } from '../config';
import type { Logger } from '../telemetry/logger';
import type { DependencyLog } from '../telemetry/outage-log';
import { canConnect, type PrivateRedis, startPrivateRedis } from './redis-server';

/**
 * A connection to the fleet's Redis: one server (REDIS_URL), the primary its sentinels name (REDIS_SENTINELS;
 * an ioredis `Redis` too) or a Redis Cluster (REDIS_CLUSTER_NODES).
 */
export type RedisClient = Redis | Cluster;

/** Reconnect with capped backoff after a Redis restart or network cut, forever. */
const reconnectDelay = (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 3000);

/** TLS options: on for `rediss://` (or `rediss://` cluster seeds), verifying against REDIS_TLS_CA_FILE when given. */
function tlsOptions(settings: RedisSettings, on: boolean): Pick<RedisOptions, 'tls'> {
  return on ? { tls: settings.tlsCaFile ? { ca: readFileSync(settings.tlsCaFile) } : {} } : {};
}

/** ioredis options for BullMQ and the cache: TLS for `rediss://`, ACL user/password, retry forever. */
function redisOptions(settings: RedisSettings): RedisOptions {
  if (settings.sentinel) return sentinelOptions(settings.sentinel, settings);
  const url = new URL(settings.url);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    db: url.pathname && url.pathname !== '/' ? Number(url.pathname.slice(1)) : 0,
    username: settings.username ?? (url.username ? decodeURIComponent(url.username) : undefined),
    password: settings.password ?? (url.password ? decodeURIComponent(url.password) : undefined),
    ...tlsOptions(settings, url.protocol === 'rediss:'),
    // BullMQ workers need commands to wait for a reconnect instead of failing after N retries.
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
    connectTimeout: 5_000,
  };
}

/**
 * ioredis options for REDIS_SENTINELS: the client asks the sentinels (in turn, forever with ioredis's backoff
 * when none answers) for the primary of the master group, connects to it with the ACL login and TLS of one
 * Redis, and checks it is a primary (the role in the ready check's INFO; a demoted one is left for the next answer).
 * When the connection drops - the primary died or was failed over - it reconnects with the same backoff
 * as one Redis and asks the sentinels again, so after a failover it lands on the promoted replica; commands
 * wait meanwhile (`maxRetriesPerRequest: null`, as BullMQ needs). `rediss://` sentinels: TLS to the
 * sentinels and the primary, both verified against REDIS_TLS_CA_FILE when given.
 */
function sentinelOptions(sentinel: NonNullable<RedisSettings['sentinel']>, settings: RedisSettings): RedisOptions {
  const { tls } = tlsOptions(settings, sentinel.tls);
  return {
    sentinels: sentinel.nodes.map((n) => ({ host: n.host, port: n.port })),
    name: sentinel.master,
    sentinelPassword: sentinel.password,
    username: settings.username,
    password: settings.password,
    ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
    connectTimeout: 5_000,
  };
}

/**
 * ioredis Cluster options for REDIS_CLUSTER_NODES: every node connection gets the ACL login, TLS and
 * BullMQ's `maxRetriesPerRequest: null`; the cluster reconnects forever when no node answers (as one Redis
 * does), and a command that meets a failing-over master is retried while its replica takes over.
 */
function clusterOptions(settings: RedisSettings & { cluster: NonNullable<RedisSettings['cluster']> }): ClusterOptions {
  const { tls } = settings.cluster;
  return {
    redisOptions: {
      username: settings.username,
      password: settings.password,
      ...tlsOptions(settings, tls),
      maxRetriesPerRequest: null,
      connectTimeout: 5_000,
    },
    enableReadyCheck: true,
    clusterRetryStrategy: reconnectDelay,
    // A master that dies is failed over after cluster-node-timeout (15 s by default) plus an election: a command
    // sent to it meanwhile is retried (a slot refresh before each try) for up to maxRedirections x
    // retryDelayOnFailover = 10 s; past that it fails and BullMQ retries it, or stalled-job recovery runs the job again.
    retryDelayOnFailover: 500,
    retryDelayOnClusterDown: 500,
    retryDelayOnTryAgain: 200,
    maxRedirections: 20,
    // The certificate of a TLS node names its host, not the address the cluster announces it by (AWS's advice).
    ...(tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
  };
}

function clusterSeeds(settings: RedisSettings): ClusterNode[] | undefined {
  return settings.cluster?.nodes.map((n) => ({ host: n.host, port: n.port }));
}

/**
 * A new connection to the configured Redis: an ioredis Cluster when REDIS_CLUSTER_NODES is set, one Redis
 * otherwise. `extra` is applied to one Redis as given (through Sentinel, a `retryStrategy` also applies to
 * asking the sentinels: `() => null` gives up when none answers); on a cluster, `retryStrategy` and
 * `lazyConnect` are the cluster's (`null`: give up when no node answers) and the rest applies to every node
 * connection.
 */
export function createRedis(settings: RedisSettings, extra: RedisOptions = {}): RedisClient {
  const seeds = clusterSeeds(settings);
  if (!seeds) {
    const { retryStrategy } = extra;
    const sentinelRetry = settings.sentinel && retryStrategy !== undefined ? { sentinelRetryStrategy: retryStrategy ?? (() => null) } : {};
    return new IORedis({ ...redisOptions(settings), ...sentinelRetry, ...extra });
  }
  const { retryStrategy, lazyConnect, ...nodeExtra } = extra;
  const base = clusterOptions({ ...settings, cluster: settings.cluster! });
  return new Cluster(seeds, {
    ...base,
    ...(retryStrategy !== undefined ? { clusterRetryStrategy: (times: number) => (retryStrategy ? retryStrategy(times) : null) } : {}),
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    redisOptions: { ...base.redisOptions, ...nodeExtra },
  });
}

/**
 * An ioredis client whose duplicates (BullMQ's blocking connections, cache and snapshot subscribers) are
 * watched like itself: ioredis's own `duplicate()` copies the options but not the listeners, and a client
 * without an 'error' listener prints every reconnect failure with its stack ("Unhandled error event").
 */
class WatchedRedis extends IORedis {
  // An ES private field: a TypeScript-private name could collide with one of ioredis's command methods.
  readonly #watch: (connection: RedisClient) => void;
  /** Through Sentinel: what the last sentinel that failed in this round of asking them said. */
  #sentinelFailure: string | undefined;

  constructor(options: RedisOptions, watch: (connection: RedisClient) => void) {
    super(options);
    this.#watch = watch;
    watch(this);
  }

  /**
   * Through Sentinel, ioredis 5 starts each reconnect where its round of the sentinels stopped, so once the
   * round has reached the last sentinel (with one sentinel: at every reconnect) it first reports "All sentinels
   * are unreachable" without having asked any, then asks them from the first. That report says nothing and is
   * dropped; one after sentinels were asked and failed is kept (e.g. `Last error: ERR No such master with that
   * name` for a wrong REDIS_SENTINEL_MASTER), with what the last of them said when ioredis does not name it (an
   * invalid reply).
   */
  override silentEmit(eventName: string, arg?: unknown): boolean {
    // (Not during ioredis's own constructor, before this class's fields exist.)
    if (!(#sentinelFailure in this)) return super.silentEmit(eventName, arg);
    if (eventName === 'sentinelError') {
      this.#sentinelFailure = arg instanceof Error ? arg.message : String(arg);
    } else if (eventName === 'error' && arg instanceof Error && arg.message.startsWith('All sentinels are unreachable')) {
      const failure = this.#sentinelFailure;
      this.#sentinelFailure = undefined;
      if (failure === undefined) return false;
      if (!arg.message.includes('Last error:')) return super.silentEmit(eventName, new Error(`${arg.message} Last sentinel: ${failure}`));
    }
    return super.silentEmit(eventName, arg);
  }

  override duplicate(override: Partial<RedisOptions> = {}): Redis {
    return new WatchedRedis({ ...this.options, ...override }, this.#watch);
  }
}

/** The same for a cluster: BullMQ duplicates it as `duplicate(undefined, { redisOptions })`. */
class WatchedCluster extends Cluster {
  readonly #watch: (connection: RedisClient) => void;
  readonly #seeds: ClusterNode[];

  constructor(seeds: ClusterNode[], options: ClusterOptions, watch: (connection: RedisClient) => void) {
    super(seeds, options);
    this.#seeds = seeds;
    this.#watch = watch;
    watch(this);
  }

  override duplicate(overrideStartupNodes: ClusterNode[] = [], overrideOptions: ClusterOptions = {}): Cluster {
    const seeds = overrideStartupNodes.length > 0 ? overrideStartupNodes : this.#seeds.slice();
    return new WatchedCluster(seeds, { ...this.options, ...overrideOptions }, this.#watch);
  }
}

/**
 * After a master failed over, a cluster client stays 'ready' (it never lost every node), so no 'ready' says
 * Redis is back: once a slot refresh shows a map whose every master answers PING, it is.
 */
function watchClusterRecovery(cluster: Cluster, log: DependencyLog): void {
  let checking = false;
  cluster.on('refresh', () => {
    if (!log.down || checking || cluster.status !== 'ready') return;
    checking = true;
    Promise.all(cluster.nodes('master').map((node) => node.ping()))
      .then(
        () => log.recovered(),
        () => undefined,
      )
      .finally(() => {
        checking = false;
      });
  });
}

/**
 * Every Redis connection of a fleet process, made by `create` (and their duplicates): all report to one
 * dependency log (one line when Redis goes away, one when it returns), and `disconnectAll` drops them at
 * once when Redis is down at shutdown, so nothing waits for a reconnect that may never come.
 */
export class RedisConnections {
  private readonly open = new Set<RedisClient>();

  constructor(
    private readonly settings: RedisSettings,
    readonly log: DependencyLog,
  ) {}

  /** A new connection to the fleet's Redis (the caller closes it, e.g. with `closeRedis`). */
  create(): RedisClient {
    const watch = (connection: RedisClient) => {
      this.open.add(connection);
      connection.on('error', (err: unknown) => this.log.failed(err));
      // 'ready' can be processed after another connection's failure was (a handshake answered just before
      // Redis died, read in the same turn as the reset): only a command answered after the outage began says
      // Redis is back.
      connection.on('ready', () => {
        if (this.log.down)
          connection.ping().then(
            () => this.log.recovered(),
            () => undefined,
          );
      });
      connection.on('end', () => this.open.delete(connection));
      if (connection instanceof Cluster) watchClusterRecovery(connection, this.log);
    };
    const seeds = clusterSeeds(this.settings);
    if (!seeds) return new WatchedRedis(redisOptions(this.settings), watch);
    return new WatchedCluster(seeds, clusterOptions({ ...this.settings, cluster: this.settings.cluster! }), watch);
  }

  /** Drops every open connection without QUIT: their pending and queued commands fail at once with "Connection is closed". */
  disconnectAll(): void {
    for (const connection of this.open) dropRedis(connection);
    this.open.clear();
  }
}

/** A cluster's seed nodes as REDIS_CLUSTER_NODES spells them (`host:port,…`, `rediss://` for TLS); REDIS_SENTINELS' the same way. */
export function clusterSeedList(cluster: NonNullable<RedisSettings['cluster']>): string {
  const scheme = cluster.tls ? 'rediss://' : '';
  return cluster.nodes.map((n) => `${scheme}${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
}

/** `REDIS_URL=…`, `REDIS_SENTINELS=… REDIS_SENTINEL_MASTER=…` or `REDIS_CLUSTER_NODES=…`: where another terminal finds this fleet's Redis (no password). */
export function redisEnvOf(settings: RedisSettings): string {
  if (settings.sentinel) return `REDIS_SENTINELS=${clusterSeedList(settings.sentinel)} REDIS_SENTINEL_MASTER=${settings.sentinel.master}`;
  return settings.cluster ? `REDIS_CLUSTER_NODES=${clusterSeedList(settings.cluster)}` : `REDIS_URL=${settings.url}`;
}

/**
 * Ends a connection at once, without QUIT, whatever its state: pending and queued commands reject with
 * "Connection is closed" and the client does not reconnect.
 */
export function dropRedis(connection: RedisClient): void {
  connection.disconnect(false);
  if (connection instanceof Cluster) {
    if (connection.status === 'disconnecting' && connection.nodes().length === 0) {
      // A cluster dropped while it waited to reconnect has no node left whose close would end it: ioredis 5
      // leaves it 'disconnecting' with its queued commands pending. A connect attempt ends it ('end', the
      // queue rejected) when no node answers; one that finds the cluster back is dropped at once.
      connection.connect().then(
        () => connection.disconnect(false),
        () => undefined,
      );
    }
    return;
  }
  if (connection.status === 'reconnecting') {
    // ioredis 5 leaves a client that was waiting to reconnect in 'reconnecting' with its queued commands
    // pending forever: disconnect() only clears the retry timer, and its socket is already closed, so no
    // 'close' event ends it. Starting a connection and dropping it at once ends it as a close would.
    connection.connect().catch(() => undefined);
    connection.disconnect(false);
  }
}

/**
 * Closes a connection: QUIT when it is up (its queued writes go out first), a plain disconnect when it is
 * not (QUIT would wait in the offline queue for a reconnect that may never come). Resolves once closed.
 */
export async function closeRedis(connection: RedisClient): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status !== 'ready') {
    dropRedis(connection);
    return;
  }
  await connection.quit();
}

/**
 * Makes sure a Redis answers: the configured one if it accepts connections, otherwise (for `fleet up`
 * on a fresh machine) a private `redis-server` from PATH on a free port with a temporary directory. A
 * configured cluster or Sentinel is used as it is.
 */
export async function ensureRedis(settings: RedisSettings, logger: Logger): Promise<{ settings: RedisSettings; started?: PrivateRedis }> {
  // A cluster or a Sentinel-watched primary is never replaced by a private server: its client waits for it, as a replica waits for Redis.
  if (settings.cluster || settings.sentinel) return { settings };
  const url = new URL(settings.url);
  if (await canConnect(url.hostname, Number(url.port || 6379), 1000)) return { settings };
  logger.warn({ url: `${url.protocol}//${url.hostname}:${url.port || 6379}` }, 'no Redis answers at REDIS_URL; starting a private redis-server');
  const started = await startPrivateRedis();
  logger.info({ url: started.url, dir: started.dir }, 'private redis-server started (data is temporary)');
  return { settings: { url: started.url }, started };
}
