import { startPrivateRedis } from '../src/app/redis-server';

/**
 * Every test run gets its own redis-server on a free port, so parallel runs (and the developer's own
 * Redis on 6379) never see each other's keys. Tests read its URL from FLEET_TEST_REDIS_URL.
 */
export default async function globalSetup(): Promise<void> {
  const redis = await startPrivateRedis();
  process.env.FLEET_TEST_REDIS_URL = redis.url;
  (globalThis as Record<string, unknown>).__FLEET_TEST_REDIS__ = redis;
}
