import type { PrivateRedis } from '../src/app/redis-server';

export default async function globalTeardown(): Promise<void> {
  const redis = (globalThis as Record<string, unknown>).__FLEET_TEST_REDIS__ as PrivateRedis | undefined;
  await redis?.stop();
}
