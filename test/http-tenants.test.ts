import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUES, type QueueName } from '../src/contracts/queues';
import { type ProductionApi, startProductionApi } from './helpers/api';
import { testRedis, uniquePrefix } from './helpers/redis';

/**
 * The tenant of an HTTP enqueue (the `X-Fleet-Tenant` header or the body's `tenant`) on the API wired as
 * `fleet api` wires it, with per-tenant limits read from the configuration variables (`TENANT_POLICIES`): the
 * tenant reaches the job data in Redis, bad or conflicting tenants are 400s, a tenant over its limits gets a
 * 429 `tenant_limit` with Retry-After (and nothing is enqueued) while other tenants carry on, and the OpenAPI
 * document says all of it.
 */

const TOKEN = 'tenant-token-0123456789abcdef';
/** `capped`: at most 2 unfinished jobs per queue; `slow`: 0.1 jobs/s, so a burst of one job (RATE_WINDOW_S 10). */
const POLICIES = { capped: { maxQueued: 2 }, slow: { ratePerS: 0.1 } };
const ENQUEUE_ROUTES = ['/v1/embeddings', '/v1/deals/insights', '/v1/workflows'] as const;

let redis: Redis;
let prefix: string;
let api: ProductionApi;
const queues = new Map<QueueName, Queue>();

beforeAll(async () => {
  redis = testRedis();
  prefix = uniquePrefix('http-tenants');
  api = await startProductionApi({ prefix, token: TOKEN, env: { TENANT_POLICIES: JSON.stringify(POLICIES) } });
});
afterAll(async () => {
  await api.close();
  await Promise.all([...queues.values()].map((q) => q.close()));
  await redis.quit();
});

const queue = (name: QueueName): Queue => {
  let q = queues.get(name);
  if (!q) {
    q = new Queue(name, { connection: redis, prefix });
    queues.set(name, q);
  }
  return q;
};
const jobCount = async (name: QueueName) => (await queue(name).getJobs(['waiting', 'prioritized', 'waiting-children', 'active'])).length;
const jobData = async (name: QueueName, id: string) => (await queue(name).getJob(id))?.data as Record<string, unknown> | undefined;

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await api.call('POST', path, body, headers);
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

/** A valid body for each enqueue route. */
const bodyFor = (path: (typeof ENQUEUE_ROUTES)[number], n: number, extra: Record<string, unknown> = {}) =>
  path === '/v1/embeddings'
    ? { text: `note ${n}`, ...extra }
    : path === '/v1/deals/insights'
      ? { dealIds: [`D-${n}`], ...extra }
      : { question: `Which deals are at risk (${n})?`, ...extra };

describe('the tenant of an HTTP enqueue', () => {
  it('the X-Fleet-Tenant header reaches the job data in Redis and is echoed in the 202', async () => {
    const embed = await post('/v1/embeddings', { texts: ['a header tenant', 'another'] }, { 'x-fleet-tenant': 'team-a' });
    expect(embed.status).toBe(202);
    expect(embed.body.tenant).toBe('team-a');
    for (const j of embed.body.jobs) expect(await jobData(QUEUES.embeddings, j.id)).toMatchObject({ text: expect.any(String), tenant: 'team-a' });

    const deals = await post('/v1/deals/insights', { dealIds: ['D-1', 'D-2'] }, { 'X-Fleet-Tenant': 'team.b:eu/1' });
    expect([deals.status, deals.body.tenant]).toEqual([202, 'team.b:eu/1']);
    expect(await jobData(QUEUES.deals, deals.body.jobs[0].id)).toMatchObject({ dealIds: ['D-1', 'D-2'], tenant: 'team.b:eu/1' });

    const wf = await post('/v1/workflows', { question: 'Which deals are at risk?' }, { 'x-fleet-tenant': 'team-c' });
    expect([wf.status, wf.body.tenant]).toEqual([202, 'team-c']);
    expect(await jobData(QUEUES.workflows, wf.body.id)).toMatchObject({ question: 'Which deals are at risk?', tenant: 'team-c' });
  });

  it('the body field `tenant` does the same; the same tenant in both is accepted; neither is the shared `default`', async () => {
    const embed = await post('/v1/embeddings', { text: 'a body tenant', tenant: 'team-d' });
    expect([embed.status, embed.body.tenant]).toEqual([202, 'team-d']);
    expect(await jobData(QUEUES.embeddings, embed.body.jobs[0].id)).toMatchObject({ text: 'a body tenant', tenant: 'team-d' });

    const deals = await post('/v1/deals/insights', { dealIds: ['D-3'], tenant: 'team-d' }, { 'x-fleet-tenant': 'team-d' });
    expect([deals.status, deals.body.tenant]).toEqual([202, 'team-d']);
    expect(await jobData(QUEUES.deals, deals.body.jobs[0].id)).toMatchObject({ tenant: 'team-d' });

    const wf = await post('/v1/workflows', { question: 'Who is at risk?', tenant: 'team-e' });
    expect([wf.status, wf.body.tenant]).toEqual([202, 'team-e']);
    expect(await jobData(QUEUES.workflows, wf.body.id)).toMatchObject({ tenant: 'team-e' });

    const none = await post('/v1/embeddings', { text: 'no tenant' });
    expect([none.status, none.body.tenant]).toEqual([202, 'default']);
    expect(await jobData(QUEUES.embeddings, none.body.jobs[0].id)).not.toHaveProperty('tenant');
  });

  it.each(ENQUEUE_ROUTES)('%s: a header and a body field naming different tenants → 400 naming both, nothing enqueued', async (path) => {
    const q = path === '/v1/embeddings' ? QUEUES.embeddings : path === '/v1/deals/insights' ? QUEUES.deals : QUEUES.workflows;
    const before = await jobCount(q);
    const res = await post(path, bodyFor(path, 1, { tenant: 'from-body' }), { 'x-fleet-tenant': 'from-header' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.issues).toEqual([
      { path: 'X-Fleet-Tenant', message: expect.stringMatching(/"from-header".*"from-body"/) },
      { path: 'tenant', message: expect.stringMatching(/"from-body".*X-Fleet-Tenant.*"from-header"/) },
    ]);
    expect(res.body.error.message).toMatch(/X-Fleet-Tenant/);
    expect(await jobCount(q)).toBe(before);
  });

  const invalid: [string, Record<string, unknown>, Record<string, string>, string][] = [
    ['a header with a space', {}, { 'x-fleet-tenant': 'team a' }, 'X-Fleet-Tenant'],
    ['an empty header', {}, { 'x-fleet-tenant': '' }, 'X-Fleet-Tenant'],
    ['a header of 129 characters', {}, { 'x-fleet-tenant': `t${'x'.repeat(128)}` }, 'X-Fleet-Tenant'],
    ['a body tenant starting with a dash', { tenant: '-team' }, {}, 'tenant'],
    ['a body tenant with a quote', { tenant: "team'; DROP" }, {}, 'tenant'],
    ['an empty body tenant', { tenant: '' }, {}, 'tenant'],
  ];
  it.each(ENQUEUE_ROUTES.flatMap((path) => invalid.map(([name, extra, headers, field]) => [path, name, field, extra, headers] as const)))(
    '%s: %s → 400 naming %s',
    async (path, _name, field, extra, headers) => {
      const res = await post(path, bodyFor(path, 2, extra), headers);
      expect(res.status).toBe(400);
      expect(res.body.error.issues).toEqual([{ path: field, message: expect.stringMatching(/letters, digits/) }]);
    },
  );

  it('a bad header and bad body fields are named together', async () => {
    const res = await post('/v1/embeddings', { text: '', tenant: 5 }, { 'x-fleet-tenant': 'a b' });
    expect(res.status).toBe(400);
    expect(res.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['X-Fleet-Tenant', 'tenant', 'text']);
  });
});

describe('per-tenant limits over HTTP (TENANT_POLICIES)', () => {
  it('a tenant at its maxQueued gets 429 tenant_limit with Retry-After and nothing is enqueued; other tenants and queues still get 202', async () => {
    const ok = await post('/v1/embeddings', { texts: ['c1', 'c2'] }, { 'x-fleet-tenant': 'capped', 'idempotency-key': 'capped-1' });
    expect([ok.status, ok.body.tenant]).toEqual([202, 'capped']);
    const before = await jobCount(QUEUES.embeddings);

    const refused = await post('/v1/embeddings', { text: 'c3', tenant: 'capped' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('idempotency-key')).toEqual(expect.any(String));
    expect(refused.body).toEqual({
      error: {
        code: 'tenant_limit',
        message: expect.stringMatching(/^tenant "capped" has 2 unfinished job\(s\) in embeddings, its limit is 2.*retry once some of its jobs have finished$/),
        tenant: 'capped',
        queue: 'embeddings',
        kind: 'queued',
        limit: 2,
        current: 2,
        retryAfterMs: 1000,
      },
    });
    expect(await jobCount(QUEUES.embeddings)).toBe(before);
    // The refusal is counted, and the tenant's unfinished jobs are on /metrics (read from its lanes at scrape time).
    const exposition = (await (await fetch(`${api.url}/metrics`)).text()).split('\n');
    const sample = (name: string, ...labels: string[]) =>
      exposition
        .find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)))
        ?.split(' ')
        .pop();
    expect(sample('fleet_tenant_rejections_total', 'tenant="capped"', 'kind="queued"', 'queue="embeddings"')).toBe('1');
    expect(sample('fleet_tenant_queued_jobs', 'tenant="capped"', 'lane="slotted"', 'queue="embeddings"')).toBe('2');

    // A retry of the accepted request adds nothing new, so it is not refused: the same jobs.
    const retried = await post('/v1/embeddings', { texts: ['c1', 'c2'] }, { 'x-fleet-tenant': 'capped', 'idempotency-key': 'capped-1' });
    expect(retried.status).toBe(202);
    expect(retried.body.jobs).toEqual(ok.body.jobs);

    // Another tenant on the same queue, and the same tenant on another queue (limits are per queue).
    const other = await post('/v1/embeddings', { text: 'c4' }, { 'x-fleet-tenant': 'uncapped' });
    expect([other.status, other.body.tenant]).toEqual([202, 'uncapped']);
    expect((await post('/v1/deals/insights', { dealIds: ['D-9'], tenant: 'capped' })).status).toBe(202);
    expect(await jobCount(QUEUES.embeddings)).toBe(before + 1);
  });

  it('a tenant over its rate gets 429 tenant_limit kind rate with Retry-After in seconds; other tenants still get 202', async () => {
    const first = await post('/v1/deals/insights', { dealIds: ['D-20'] }, { 'x-fleet-tenant': 'slow' });
    expect(first.status).toBe(202);
    const before = await jobCount(QUEUES.deals);

    const refused = await post('/v1/deals/insights', { dealIds: ['D-21'] }, { 'x-fleet-tenant': 'slow' });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    // 0.1 jobs/s and no token left: up to 10 s until the next job's token (10 s after the first), in whole seconds.
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(10);
    expect(refused.body.error).toEqual({
      code: 'tenant_limit',
      message: expect.stringMatching(/^tenant "slow" is over its rate of 0\.1 job\(s\)\/s in deals/),
      tenant: 'slow',
      queue: 'deals',
      kind: 'rate',
      limit: 0.1,
      current: 0,
      retryAfterMs: expect.any(Number),
    });
    expect(Math.ceil(refused.body.error.retryAfterMs / 1000)).toBe(retryAfter);
    expect(await jobCount(QUEUES.deals)).toBe(before);

    expect((await post('/v1/deals/insights', { dealIds: ['D-22'] }, { 'x-fleet-tenant': 'fast' })).status).toBe(202);
    expect((await post('/v1/deals/insights', { dealIds: ['D-23'] })).status).toBe(202);
    expect(await jobCount(QUEUES.deals)).toBe(before + 2);
  });

  it('the tenant 429 is told apart from the backlog 429 by its code and fields', async () => {
    const capped = await post('/v1/embeddings', { text: 'c5' }, { 'x-fleet-tenant': 'capped' });
    expect(capped.status).toBe(429);
    expect(capped.body.error.code).toBe('tenant_limit');
    expect(capped.body.error.code).not.toBe('backlog_full');
    expect(Object.keys(capped.body.error).sort()).toEqual(['code', 'current', 'kind', 'limit', 'message', 'queue', 'retryAfterMs', 'tenant']);
  });
});

describe('the OpenAPI document of the tenant', () => {
  it('shows the X-Fleet-Tenant header, the `tenant` body field, the echoed tenant and the 429 on every enqueue route', async () => {
    const doc = (await (await fetch(`${api.url}/docs/json`)).json()) as {
      paths: Record<string, { post: { parameters?: { in: string; name: string; schema?: Record<string, unknown> }[]; requestBody: any; responses: any } }>;
    };
    for (const path of ENQUEUE_ROUTES) {
      const op = doc.paths[path].post;
      const header = op.parameters?.find((p) => p.in === 'header' && p.name.toLowerCase() === 'x-fleet-tenant');
      expect({ path, header: header?.schema }).toEqual({ path, header: expect.objectContaining({ type: 'string', pattern: expect.any(String) }) });
      expect({ path, idempotency: op.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key') }).toEqual({ path, idempotency: true });
      const body = op.requestBody.content['application/json'].schema;
      expect({ path, tenant: body.properties.tenant }).toEqual({
        path,
        tenant: expect.objectContaining({ type: 'string', description: expect.stringMatching(/X-Fleet-Tenant/) }),
      });
      const tooMany = op.responses['429'];
      expect({ path, description: tooMany.description }).toEqual({
        path,
        description: expect.stringMatching(/tenant_limit.*Retry-After|Retry-After.*tenant_limit/s),
      });
      const error = tooMany.content['application/json'].schema.properties.error;
      expect({ path, fields: Object.keys(error.properties) }).toEqual({
        path,
        fields: expect.arrayContaining(['code', 'message', 'tenant', 'queue', 'kind', 'limit', 'current', 'retryAfterMs']),
      });
      expect(error.properties.code.enum).toEqual(['backlog_full', 'tenant_limit']);
      expect({ path, echoed: op.responses['202'].content['application/json'].schema.properties.tenant?.type }).toEqual({ path, echoed: 'string' });
    }
  });
});
