import { readFileSync } from 'node:fs';
import IORedis, { type Redis, type RedisOptions } from 'ioredis';
import type { RedisSettings } from '../config';
import type { Logger } from '../telemetry/logger';
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
