import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script run with EVALSHA, its text sent only when Redis does not have it yet. */
export type RedisScript = (redis: Redis, keys: readonly string[], args: readonly (string | Buffer | number)[]) => Promise<unknown>;

/**
 * Wraps a Lua script for EVALSHA: the script's text travels only the first time a Redis sees it (or after
 * SCRIPT FLUSH, a restart or a failover), on the NOSCRIPT reply; every other call sends the 40-byte sha.
 *
 * @example
 *   const incrBoth = defineScript(`return { redis.call('INCR', KEYS[1]), redis.call('INCR', KEYS[2]) }`);
 *   await incrBoth(redis, ['{p}:a', '{p}:b'], []);
 */
export function defineScript(lua: string): RedisScript {
  const sha = createHash('sha1').update(lua).digest('hex');
  return (redis, keys, args) =>
    redis.evalsha(sha, keys.length, ...keys, ...args).catch((err: Error) => {
      if (!/NOSCRIPT/.test(err.message)) throw err;
      return redis.eval(lua, keys.length, ...keys, ...args);
    });
}
