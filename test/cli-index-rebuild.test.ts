import IORedis from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { indexLogKey } from '../src/index-builder/upsert-stream';
import { launchFleet } from './helpers/processes';
import { testRedisUrl, uniquePrefix } from './helpers/redis';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * `fleet index rebuild` run as operators run it (`node bin/fleet.js`, from dist/): the source table read through
 * Snowflake's chunked-result path, one upsert per row appended to the index log. A fleet process, so `npm test`
 * only (jest.fast.config.js); the fleet's batch statements through chunked results are checked in-process by
 * test/warehouse-chunked-batches.test.ts.
 */
let server: LocalWarehouse;
beforeAll(async () => {
  // The default inline part (100 KB, like Snowflake's): large results come back as chunk files.
  server = await startTestWarehouse();
});
afterAll(() => server.close());

describe('fleet index rebuild', () => {
  it('`fleet index rebuild` reads its source through chunked results and appends one upsert per row', async () => {
    const prefix = uniquePrefix('rebuild');
    server.resetStats();
    const { code, stderr } = await launchFleet(['index', 'rebuild', '--source', 'calls', '--chunk', '500'], {
      env: { REDIS_URL: testRedisUrl(), FLEET_QUEUE_PREFIX: prefix, SNOWFLAKE_ACCESS_URL: server.url, LOG_LEVEL: 'warn', POOL_MIN: '0' },
    }).finished(60_000);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const appended = Number(/appended (\d+) upserts to namespace "calls"/.exec(stderr)?.[1]);
    expect(appended).toBeGreaterThan(500);
    const stats = server.stats();
    expect(stats.chunkedResults).toBeGreaterThan(0);
    expect(stats.chunksServed).toBeGreaterThan(0);
    const redis = new IORedis(testRedisUrl());
    try {
      // One log entry per upsert (fields op, ns, id, v), one per call row with text: none lost, none doubled.
      const entries = await redis.xrange(indexLogKey(prefix), '-', '+');
      const ids = entries.map(([, fields]) => fields[fields.indexOf('id') + 1]);
      expect(entries).toHaveLength(appended);
      expect(new Set(ids).size).toBe(appended);
      expect(entries.every(([, fields]) => fields[fields.indexOf('ns') + 1] === 'calls')).toBe(true);
    } finally {
      await redis.quit();
    }
  }, 90_000);
});
