import type { LocalWarehouse } from 'local-snowflake';
import { createRedis } from '../src/app/redis';
import { loadConfig } from '../src/config';
import { createProducer } from '../src/producers';
import { startReplica } from './helpers/faults';
import { uniquePrefix } from './helpers/redis';
import { tlsRedisForFile } from './helpers/tls-redis';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Redis over TLS with an ACL user (test/helpers/tls-redis.ts), reached by a worker replica (`node bin/fleet.js
 * worker`, from dist/) and a producer through configuration alone: jobs run, and the password appears in none
 * of the replica's output. A fleet process, so `npm test` only (jest.fast.config.js); the connection itself is
 * checked in-process by test/redis-tls-acl.test.ts.
 */
const tls = tlsRedisForFile();
let warehouse: LocalWarehouse;
beforeAll(async () => {
  warehouse = await startTestWarehouse({ deals: 50 });
});
afterAll(() => warehouse?.close());

describe('Redis over TLS with an ACL user, by configuration', () => {
  it('a worker replica and a producer run jobs through it; the password is in none of the replica output', async () => {
    const prefix = uniquePrefix('tls');
    const cfg = loadConfig(tls.env());
    const redis = createRedis(cfg.redis);
    const producer = createProducer({ connection: redis, prefix });
    const replica = startReplica({ ...tls.env(), FLEET_QUEUE_PREFIX: prefix, SNOWFLAKE_ACCESS_URL: warehouse.url, POOL_MIN: '0', POOL_MAX: '2' });
    try {
      const handles = await producer.embed(Array.from({ length: 20 }, (_, i) => `tls note ${i}`));
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
      expect(results.every((r) => r.dims === 768)).toBe(true);
      expect(replica.output()).toContain('worker started');
      expect(replica.output()).not.toContain(tls.password);
    } finally {
      await replica.stop();
      await producer.close();
      redis.disconnect();
    }
  });
});
