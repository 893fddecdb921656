import { Queue } from 'bullmq';
import { freePort } from '../src/app/redis-server';
import { Releasers } from '../src/app/releasers';
import { createWarehouseClient } from '../src/app/warehouse';
import { jobOptionsFrom, loadConfig } from '../src/config';
import { CircuitOpenError } from '../src/warehouse/errors';
import { launchFleet } from './helpers/processes';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';

/** Settings that are easy to read into config and forget to hand on: each is checked where it acts. */
describe('configuration reaches what it configures', () => {
  it("WAREHOUSE_BREAKER_THRESHOLD opens the process's circuit after that many failed calls", async () => {
    const cfg = loadConfig({
      WAREHOUSE_BREAKER_THRESHOLD: '2',
      WAREHOUSE_BREAKER_RESET_MS: '60000',
      WAREHOUSE_RETRIES: '0',
      WAREHOUSE_QUERY_TIMEOUT_MS: '500',
      POOL_ACQUIRE_TIMEOUT_MS: '500',
      POOL_MIN: '0',
    });
    const port = await freePort(); // nothing listens there: every call fails as transient
    const releasers = new Releasers();
    const { warehouse } = createWarehouseClient(
      cfg,
      { account: 'local', username: 'fleet', password: 'fleet', accessUrl: `http://127.0.0.1:${port}` },
      releasers,
    );
    try {
      for (let i = 0; i < 2; i++) {
        const err = await warehouse.query('SELECT 1').catch((e: unknown) => e);
        expect(err).not.toBeInstanceOf(CircuitOpenError);
      }
      await expect(warehouse.query('SELECT 1')).rejects.toBeInstanceOf(CircuitOpenError);
    } finally {
      await releasers.releaseAll();
    }
  });

  it('JOB_ATTEMPTS, JOB_BACKOFF_MS and JOB_KEEP_* are set on jobs the CLI enqueues', async () => {
    const prefix = uniquePrefix('job-opts');
    const env = {
      ...process.env,
      REDIS_URL: testRedisUrl(),
      FLEET_QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      JOB_ATTEMPTS: '7',
      JOB_BACKOFF_MS: '2500',
      JOB_KEEP_COMPLETED_S: '3600',
      JOB_KEEP_COMPLETED_COUNT: '123',
      JOB_KEEP_FAILED_S: '7200',
    };
    const run = await launchFleet(['enqueue', 'embed', '--no-wait', 'configured', 'retry', 'policy'], { env }).finished(30_000);
    expect({ status: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ status: 0, stderr: '' });
    const redis = testRedis();
    const queue = new Queue('embeddings', { connection: redis, prefix });
    try {
      const [job] = await queue.getWaiting();
      expect(job.opts).toMatchObject(jobOptionsFrom(loadConfig(env).jobs));
      expect(job.opts).toMatchObject({
        attempts: 7,
        backoff: { type: 'exponential', delay: 2500 },
        removeOnComplete: { age: 3600, count: 123 },
        removeOnFail: { age: 7200 },
      });
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await redis.quit();
    }
  });
});
