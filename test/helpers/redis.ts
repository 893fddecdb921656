import { randomUUID } from 'node:crypto';
import IORedis, { type Redis } from 'ioredis';

/** The private redis-server started by test/global-setup.ts. */
export function testRedisUrl(): string {
  const url = process.env.FLEET_TEST_REDIS_URL;
  if (!url) throw new Error('FLEET_TEST_REDIS_URL is not set: run tests through jest (test/global-setup.ts)');
  return url;
}

/** A BullMQ-ready connection (maxRetriesPerRequest: null) to the test Redis. Caller quits it. */
export function testRedis(): Redis {
  return new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
}

/** A key prefix unique to one test, so tests never share queues or cache keys. */
export function uniquePrefix(name: string): string {
  return `t-${name}-${randomUUID().slice(0, 8)}`;
}
