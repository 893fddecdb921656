import type { LocalWarehouse } from 'local-snowflake';
import { createProducer } from '../src/producers';
import { launchFleet } from './helpers/processes';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Secrets never reach logs or job data, checked on a real worker replica (`node bin/fleet.js worker`, from dist/):
 * a fleet process, so `npm test` only (jest.fast.config.js); the logger's scrubbing is checked in-process by
 * test/secrets-logs.test.ts.
 */
const SECRET_PASSWORD = 'sw0rdfish-not-the-warehouse-password';
const SECRET_TOKEN = 'tok3n-that-must-never-be-logged-0001';

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse();
});
afterAll(() => server.close());

describe('security: configured secrets never appear in logs or job data', () => {
  it('a worker whose warehouse login fails logs the failure without the password', async () => {
    const prefix = uniquePrefix('secrets');
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });
    const worker = launchFleet(['worker', '--role', 'deals'], {
      env: {
        LOG_LEVEL: 'debug',
        REDIS_URL: testRedisUrl(),
        FLEET_QUEUE_PREFIX: prefix,
        CACHE_KEY_PREFIX: `${prefix}:cache`, // its own cache: another test may have cached D-1 under the default prefix
        SNOWFLAKE_ACCESS_URL: server.url,
        SNOWFLAKE_PASSWORD: SECRET_PASSWORD, // wrong for the local warehouse: every login fails (390100)
        FLEET_API_TOKENS: SECRET_TOKEN,
        HEALTH_PORT: '0',
        POOL_MIN: '0',
        POOL_ACQUIRE_TIMEOUT_MS: '1000',
        WAREHOUSE_QUERY_TIMEOUT_MS: '2000',
        WAREHOUSE_RETRIES: '0',
      },
    });
    try {
      const handle = await producer.dealInsights(['D-1', 'D-2']);
      await expect(handle.result({ timeoutMs: 30_000 })).rejects.toThrow(/failed/);
      const job = await producer.queue('deals').getJob(handle.id);
      expect(JSON.stringify(job)).not.toContain(SECRET_PASSWORD);
    } finally {
      await worker.stop();
      await producer.close();
      await redis.quit();
    }
    const output = worker.output();
    expect(output).toMatch(/390100|Incorrect username or password|login/i); // the failure itself is logged
    expect(output).not.toContain(SECRET_PASSWORD);
    expect(output).not.toContain(SECRET_TOKEN);
  });
});
