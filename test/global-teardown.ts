import type { PrivateRedis } from '../src/app/redis-server';

export default async function globalTeardown(): Promise<void> {
  const servers = ((globalThis as Record<string, unknown>).__FLEET_TEST_REDIS__ as PrivateRedis[] | undefined) ?? [];
  await Promise.all(servers.map((s) => s.stop()));
}
