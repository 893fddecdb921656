import { readFileSync } from 'node:fs';
import IORedis, { type Redis, type RedisOptions } from 'ioredis';
import type { RedisSettings } from '../config';
import type { Logger } from '../telemetry/logger';
import type { DependencyLog } from '../telemetry/outage-log';
import { canConnect, type PrivateRedis, startPrivateRedis } from './redis-server';

/** ioredis options for BullMQ and the cache: TLS for `rediss://`, ACL user/password, retry forever. */
function redisOptions(settings: RedisSettings): RedisOptions {
  const url = new URL(settings.url);
  const tls = url.protocol === 'rediss:';
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    db: url.pathname && url.pathname !== '/' ? Number(url.pathname.slice(1)) : 0,
    username: settings.username ?? (url.username ? decodeURIComponent(url.username) : undefined),
    password: settings.password ?? (url.password ? decodeURIComponent(url.password) : undefined),
    ...(tls ? { tls: settings.tlsCaFile ? { ca: readFileSync(settings.tlsCaFile) } : {} } : {}),
    // BullMQ workers need commands to wait for a reconnect instead of failing after N retries.
    maxRetriesPerRequest: null,
    // Reconnect with capped backoff after a Redis restart or network cut.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 3000),
    connectTimeout: 5_000,
  };
}

export function createRedis(settings: RedisSettings, extra: RedisOptions = {}): Redis {
  return new IORedis({ ...redisOptions(settings), ...extra });
}

/**
 * An ioredis client whose duplicates (BullMQ's blocking connections, cache and snapshot subscribers) are
 * watched like itself: ioredis's own `duplicate()` copies the options but not the listeners, and a client
 * without an 'error' listener prints every reconnect failure with its stack ("Unhandled error event").
 */
class WatchedRedis extends IORedis {
  // An ES private field: a TypeScript-private name could collide with one of ioredis's command methods.
  readonly #watch: (connection: Redis) => void;

  constructor(options: RedisOptions, watch: (connection: Redis) => void) {
    super(options);
    this.#watch = watch;
    watch(this);
  }

  override duplicate(override: Partial<RedisOptions> = {}): Redis {
    return new WatchedRedis({ ...this.options, ...override }, this.#watch);
  }
}

/**
 * Every Redis connection of a fleet process, made by `create` (and their duplicates): all report to one
 * dependency log (one line when Redis goes away, one when it returns), and `disconnectAll` drops them at
 * once when Redis is down at shutdown, so nothing waits for a reconnect that may never come.
 */
export class RedisConnections {
  private readonly open = new Set<Redis>();

  constructor(
    private readonly settings: RedisSettings,
    readonly log: DependencyLog,
  ) {}

  /** A new connection to the fleet's Redis (the caller closes it, e.g. with `closeRedis`). */
  create(): Redis {
    return new WatchedRedis(redisOptions(this.settings), (connection) => {
      this.open.add(connection);
      connection.on('error', (err) => this.log.failed(err));
      connection.on('ready', () => this.log.recovered());
      connection.on('end', () => this.open.delete(connection));
    });
  }

  /** Drops every open connection without QUIT: their pending and queued commands fail at once with "Connection is closed". */
  disconnectAll(): void {
    for (const connection of this.open) dropRedis(connection);
    this.open.clear();
  }
}

/**
 * Ends a connection at once, without QUIT, whatever its state: pending and queued commands reject with
 * "Connection is closed" and the client does not reconnect.
 */
export function dropRedis(connection: Redis): void {
  connection.disconnect(false);
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
export async function closeRedis(connection: Redis): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status !== 'ready') {
    dropRedis(connection);
    return;
  }
  await connection.quit();
}

/**
 * Makes sure a Redis answers: the configured one if it accepts connections, otherwise (for `fleet up`
 * on a fresh machine) a private `redis-server` from PATH on a free port with a temporary directory.
 */
export async function ensureRedis(settings: RedisSettings, logger: Logger): Promise<{ settings: RedisSettings; started?: PrivateRedis }> {
  const url = new URL(settings.url);
  if (await canConnect(url.hostname, Number(url.port || 6379), 1000)) return { settings };
  logger.warn({ url: `${url.protocol}//${url.hostname}:${url.port || 6379}` }, 'no Redis answers at REDIS_URL; starting a private redis-server');
  const started = await startPrivateRedis();
  logger.info({ url: started.url, dir: started.dir }, 'private redis-server started (data is temporary)');
  return { settings: { url: started.url }, started };
}
