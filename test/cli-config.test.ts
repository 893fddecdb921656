import { generateKeyPairSync } from 'node:crypto';
import { Queue } from 'bullmq';
import { jobOptionsFrom, loadConfig } from '../src/config';
import { launchFleet } from './helpers/processes';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';

/**
 * Configuration as the CLI reads it, run as operators run it (`node bin/fleet.js`, from dist/): what `fleet
 * config` prints, and the job options on what `fleet enqueue` sends. Fleet processes, so `npm test` only
 * (jest.fast.config.js); the same settings are checked in-process by test/config-wiring.test.ts and
 * test/snowflake-credentials.test.ts.
 */
const PASSPHRASE = 'correct horse battery';
const PKCS8_ENCRYPTED = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
  format: 'pem',
  type: 'pkcs8',
  cipher: 'aes-256-cbc',
  passphrase: PASSPHRASE,
}) as string;

describe('fleet config', () => {
  it('prints the login method and file paths, never a key, passphrase or token', async () => {
    const [keyPair, token] = await Promise.all([
      launchFleet(['config'], { env: { SNOWFLAKE_PRIVATE_KEY: PKCS8_ENCRYPTED, SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: PASSPHRASE } }).finished(30_000),
      launchFleet(['config'], { env: { SNOWFLAKE_AUTHENTICATOR: 'OAUTH', SNOWFLAKE_TOKEN: 'oauth-access-token-123456' } }).finished(30_000),
    ]);
    expect({ code: keyPair.code, stderr: keyPair.code === 0 ? '' : keyPair.stderr }).toEqual({ code: 0, stderr: '' });
    const out = keyPair.stdout;
    expect(JSON.parse(out).snowflake.auth).toEqual({ method: 'SNOWFLAKE_JWT', privateKey: '[secret]', passphrase: '[secret]' });
    expect(out).not.toContain(PASSPHRASE);
    expect(out).not.toContain(PKCS8_ENCRYPTED.split('\n')[1]);
    expect(token.code).toBe(0);
    expect(JSON.parse(token.stdout).snowflake.auth).toEqual({ method: 'OAUTH', token: '[secret]' });
  });
});

describe('configuration reaches the jobs the CLI enqueues', () => {
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
