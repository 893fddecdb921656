import { randomUUID } from 'node:crypto';
import IORedis, { type Redis } from 'ioredis';

/** The private redis-server test/global-setup.ts started for this jest worker (files in other workers use their own). */
export function testRedisUrl(): string {
  const urls = process.env.FLEET_TEST_REDIS_URLS?.split(',').filter(Boolean);
  if (!urls?.length) throw new Error('FLEET_TEST_REDIS_URLS is not set: run tests through jest (test/global-setup.ts)');
  const worker = Number(process.env.JEST_WORKER_ID ?? '1');
  return urls[(Number.isInteger(worker) && worker > 0 ? worker - 1 : 0) % urls.length];
}

/** A BullMQ-ready connection (maxRetriesPerRequest: null) to the test Redis. Caller quits it. */
export function testRedis(): Redis {
  return new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
}

/** A key prefix unique to one test, so tests never share queues or cache keys. */
export function uniquePrefix(name: string): string {
  return `t-${name}-${randomUUID().slice(0, 8)}`;
}
