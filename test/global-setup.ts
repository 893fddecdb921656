import { startPrivateRedis } from '../src/app/redis-server';

/**
 * Every test run gets its own redis-server on a free port, so parallel runs (and the developer's own
 * Redis on 6379) never see each other's keys - one per jest worker, so that a test may also read what
 * the whole server did (INFO commandstats, SCRIPT FLUSH, CLIENT PAUSE) when `npm run test:fast` runs
 * files side by side. Tests get their worker's URL from test/helpers/redis.ts (FLEET_TEST_REDIS_URLS).
 */
export default async function globalSetup(globalConfig: { maxWorkers: number }): Promise<void> {
  const started = await Promise.allSettled(Array.from({ length: Math.max(1, globalConfig.maxWorkers) }, () => startPrivateRedis()));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  process.env.FLEET_TEST_REDIS_URLS = servers.map((s) => s.url).join(',');
  (globalThis as Record<string, unknown>).__FLEET_TEST_REDIS__ = servers;
}
