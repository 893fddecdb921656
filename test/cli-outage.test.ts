import { freePort } from '../src/app/redis-server';
import { launchFleet } from './helpers/processes';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';

/**
 * The CLI does not buffer (a process that exits cannot hold jobs for later): with Redis unreachable it
 * exits at once with code 69 and one line saying where it looked, and nothing is enqueued. Runs the built
 * CLI (dist/) as a user would.
 */
describe('fleet enqueue: Redis unreachable', () => {
  it.each([
    ['enqueue embed', ['enqueue', 'embed', '--no-wait', 'renewal', 'is', 'at', 'risk']],
    ['enqueue deals', ['enqueue', 'deals', '--no-wait', 'D-1', 'D-2']],
    ['workflow', ['workflow', 'Which deals are at risk?']],
  ])('%s exits 69 with one line naming the Redis it could not reach', async (_name, args) => {
    const port = await freePort(); // nothing listens there
    const run = await launchFleet(args, { env: { REDIS_URL: `redis://127.0.0.1:${port}`, LOG_LEVEL: 'warn' } }).finished(30_000);
    expect({ code: run.code, stderr: run.stderr.trim() }).toEqual({
      code: 69,
      stderr: `fleet: Redis is unreachable at redis://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}); nothing was enqueued`,
    });
    expect(run.stdout).toBe('');
  });

  it('with Redis up the same command enqueues (the check is not a false alarm)', async () => {
    const prefix = uniquePrefix('cli-outage');
    const run = await launchFleet(['enqueue', 'deals', '--no-wait', 'D-1'], { env: { REDIS_URL: testRedisUrl(), FLEET_QUEUE_PREFIX: prefix } }).finished(
      30_000,
    );
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^enqueued deals\/j-/) });
    const redis = testRedis();
    try {
      expect(await redis.llen(`${prefix}:deals:wait`)).toBe(1);
    } finally {
      redis.disconnect();
    }
  });
});
