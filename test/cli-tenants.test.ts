import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUES, type QueueName } from '../src/contracts/queues';
import { launchFleet } from './helpers/processes';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';

/**
 * `fleet enqueue … --tenant <name>` and `fleet workflow … --tenant <name>` run as users run them (the built CLI,
 * `node bin/fleet.js`), with the per-tenant limits read from the environment as in production: the tenant is
 * on the job in Redis; a tenant over its limit exits 75 (EX_TEMPFAIL) with one line saying which limit and
 * when to retry, and nothing is enqueued; a bad tenant is a usage error (exit 2) found before Redis is asked.
 */

let redis: Redis;
beforeAll(() => {
  redis = testRedis();
});
afterAll(() => redis.quit());

const fleet = (args: string[], prefix: string, env: Record<string, string> = {}) =>
  launchFleet(args, { env: { REDIS_URL: testRedisUrl(), FLEET_QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn', ...env } }).finished(45_000);

async function jobsOf(prefix: string, name: QueueName) {
  const q = new Queue(name, { connection: redis, prefix });
  try {
    return await q.getJobs(['waiting', 'prioritized', 'waiting-children']);
  } finally {
    await q.close();
  }
}

/** The job id a `fleet enqueue … --no-wait` names on stderr (`enqueued embeddings/j-…`). */
const enqueuedId = (stderr: string) => /^enqueued \w+\/(\S+)$/m.exec(stderr)?.[1];

describe('fleet enqueue --tenant', () => {
  it('puts the tenant on the job (embed, deals, workflow)', async () => {
    const prefix = uniquePrefix('cli-tenant');
    const embed = await fleet(['enqueue', 'embed', '--no-wait', '--tenant', 'team-a', 'renewal', 'is', 'at', 'risk'], prefix);
    expect({ code: embed.code, stderr: embed.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^enqueued embeddings\/j-/) });
    const deals = await fleet(['enqueue', 'deals', '--no-wait', '--tenant', 'team.b:eu/1', 'D-1', 'D-2'], prefix);
    expect({ code: deals.code, stderr: deals.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^enqueued deals\/j-/) });

    const [embedJob] = await jobsOf(prefix, QUEUES.embeddings);
    expect(embedJob.id).toBe(enqueuedId(embed.stderr));
    expect(embedJob.data).toMatchObject({ text: 'renewal is at risk', tenant: 'team-a' });
    const [dealJob] = await jobsOf(prefix, QUEUES.deals);
    expect(dealJob.id).toBe(enqueuedId(deals.stderr));
    expect(dealJob.data).toMatchObject({ dealIds: ['D-1', 'D-2'], tenant: 'team.b:eu/1' });

    // No workers run here: the workflow starts, carries its tenant, and the wait for its report times out (exit 1).
    const wf = await fleet(['workflow', '--tenant', 'team-w', '--timeout', '200', 'Which deals are at risk?'], prefix);
    expect(wf.stderr).toMatch(/^workflow \S+ started$/m);
    expect(wf.code).toBe(1);
    const [root] = await jobsOf(prefix, QUEUES.workflows);
    expect(root.data).toMatchObject({ question: 'Which deals are at risk?', tenant: 'team-w' });
  });

  it('a tenant over TENANT_MAX_QUEUED exits 75 with one line naming the limit, and nothing is enqueued; another tenant still enqueues', async () => {
    const prefix = uniquePrefix('cli-tenant-full');
    const env = { TENANT_MAX_QUEUED: '1' };
    const first = await fleet(['enqueue', 'embed', '--no-wait', '--tenant', 'full', 'first'], prefix, env);
    expect(first.code).toBe(0);
    const refused = await fleet(['enqueue', 'embed', '--no-wait', '--tenant', 'full', 'second'], prefix, env);
    expect({ code: refused.code, stdout: refused.stdout, stderr: refused.stderr.trim().split('\n') }).toEqual({
      code: 75,
      stdout: '',
      stderr: [
        'fleet: tenant "full" is at its limit of 1 unfinished job(s) in embeddings (it has 1; TENANT_MAX_QUEUED or TENANT_POLICIES); nothing was enqueued, retry once some of its jobs have finished',
      ],
    });
    const other = await fleet(['enqueue', 'embed', '--no-wait', '--tenant', 'other', 'third'], prefix, env);
    expect(other.code).toBe(0);
    expect((await jobsOf(prefix, QUEUES.embeddings)).map((j) => j.data.text).sort()).toEqual(['first', 'third']);
  });

  it('a tenant over its rate (TENANT_POLICIES) exits 75 saying when to retry', async () => {
    const prefix = uniquePrefix('cli-tenant-rate');
    const env = { TENANT_POLICIES: JSON.stringify({ slow: { ratePerS: 0.1 } }) };
    expect((await fleet(['enqueue', 'deals', '--no-wait', '--tenant', 'slow', 'D-1'], prefix, env)).code).toBe(0);
    const refused = await fleet(['enqueue', 'deals', '--no-wait', '--tenant', 'slow', 'D-2'], prefix, env);
    expect(refused.code).toBe(75);
    expect(refused.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^fleet: tenant "slow" is over its rate limit of 0\.1 job\(s\)\/s in deals \(TENANT_RATE_PER_S or TENANT_POLICIES\); nothing was enqueued, retry in \d+ s$/,
      ),
    ]);
    // One job's token comes back 10 s after the first enqueue: less the time the second CLI took to start.
    const retryS = Number(/retry in (\d+) s/.exec(refused.stderr)![1]);
    expect(retryS).toBeGreaterThanOrEqual(1);
    expect(retryS).toBeLessThanOrEqual(10);
    expect((await jobsOf(prefix, QUEUES.deals)).map((j) => j.data.dealIds)).toEqual([['D-1']]);
  });

  it.each([
    ['enqueue embed', ['enqueue', 'embed', '--no-wait', '--tenant', 'bad tenant', 'text']],
    ['enqueue deals', ['enqueue', 'deals', '--no-wait', '--tenant', '-x', 'D-1']],
    ['workflow', ['workflow', '--tenant', '', 'Which deals are at risk?']],
  ])('%s with an invalid --tenant exits 2 naming it, before asking Redis', async (_name, args) => {
    // Nothing listens at this Redis: the usage error comes first.
    const run = await fleet(args, uniquePrefix('cli-tenant-bad'), { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^fleet enqueue: invalid input: --tenant: must be 1-128 letters, digits/)]);
  });

  it('the help names --tenant and exit code 75', async () => {
    for (const args of [
      ['enqueue', 'embed', '--help'],
      ['enqueue', 'deals', '--help'],
      ['workflow', '--help'],
    ]) {
      const help = await fleet(args, 'unused');
      expect({ args, code: help.code }).toEqual({ args, code: 0 });
      expect(help.stdout).toMatch(/--tenant <name>/);
      expect(help.stdout).toMatch(/75 +the tenant is over its queued or rate limit/);
    }
  });
});
