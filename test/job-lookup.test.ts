import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { type RunningFleet, startFleet } from '../src/app/fleet';
import { loadConfig } from '../src/config';
import { JOB_LOOKUP_PAGE, lookupKeys, textHash } from '../src/contracts/batch-log';
import type { EmbeddingResult } from '../src/contracts/embedding';
import { QUEUES } from '../src/contracts/queues';
import { buildApi } from '../src/http';
import { createProducer, type Producer } from '../src/producers';
import { createLogger } from '../src/telemetry';
import { startIndexedEmbeddingWorker } from './helpers/lookup-workers';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';

/**
 * Jobs an operator can find (issue #19): the fleet's embedding worker runs real batches on the local
 * warehouse, its job log writer indexes them, and GET /v1/jobs, GET /v1/batches/:id and the /admin/jobs
 * page find them by id, idempotency key, batch and text.
 */
const TOKEN = 'lookup-token-0123456789abcdef';
const ADMIN = { username: 'ops', password: 'admin-password-1' };
const VIEWER = { username: 'viewer', password: 'viewer-password-1' };
const RETENTION_S = 3_600;
const auth = () => ({ authorization: `Bearer ${TOKEN}` });
const basic = (c: { username: string; password: string }) => ({ authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` });

describe('job lookup: GET /v1/jobs, GET /v1/batches/:id and the /admin/jobs page', () => {
  let server: LocalWarehouse;
  let redis: Redis;
  let producer: Producer;
  let app: FastifyInstance;
  let prefix: string;
  const cleanup: (() => Promise<unknown>)[] = [];
  /** Job id → its result, for every job the tests enqueued. */
  const results = new Map<string, EmbeddingResult>();
  let listIds: string[];
  let singleId: string;
  let acmeIds: string[];
  const LIST_TEXTS = ['renewal is at risk', 'pricing call went well', 'champion left the company', 'legal review stalled', 'budget approved'];

  beforeAll(async () => {
    server = await startTestWarehouse();
    cleanup.push(() => server.close());
    const { pool, warehouse } = pooledClient(server, { max: 2 });
    cleanup.push(() => pool.close());
    redis = testRedis();
    cleanup.push(() => redis.quit());
    prefix = uniquePrefix('lookup');
    producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });
    cleanup.push(() => producer.close());
    const worker = startIndexedEmbeddingWorker(warehouse, prefix, { retentionS: RETENTION_S });
    cleanup.push(() => worker.close());
    app = await buildApi({
      producer,
      queues: [producer.queue(QUEUES.embeddings), producer.queue(QUEUES.deals)],
      tokens: [TOKEN],
      board: { admin: ADMIN, viewer: VIEWER },
    });
    cleanup.push(() => app.close());

    const list = await producer.embed(LIST_TEXTS, { idempotencyKey: 'lookup-list' });
    const single = await producer.embed('renewal is at risk', { idempotencyKey: 'lookup-single' });
    const tenants = await producer.embed(['acme call one', 'acme call two', 'globex call'], {
      index: [
        { namespace: 'calls', id: 'c-1', tenant: 'acme' },
        { namespace: 'calls', id: 'c-2', tenant: 'acme' },
        { namespace: 'calls', id: 'c-3', tenant: 'globex' },
      ],
    });
    acmeIds = tenants.slice(0, 2).map((h) => h.id);
    for (const h of [...list, single, ...tenants]) results.set(h.id, await h.result({ timeoutMs: 30_000 }));
    listIds = list.map((h) => h.id);
    singleId = single.id;
  }, 120_000);

  afterAll(async () => {
    await producer
      .queue(QUEUES.embeddings)
      .obliterate({ force: true })
      .catch(() => undefined);
    for (const release of cleanup.reverse()) await release().catch(() => undefined);
  });

  const get = async (url: string, headers: Record<string, string> = auth()) => app.inject({ method: 'GET', url, headers });
  const batchOf = (id: string) => results.get(id)!.batch!.batchId;
  /** Every page of a lookup, following nextCursor. */
  const allPages = async (url: string) => {
    const ids: string[] = [];
    let pages = 0;
    for (let cursor: string | null = ''; cursor !== null; pages++) {
      const res = await get(`${url}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode).toBe(200);
      const body = res.json() as { jobs: { id: string }[]; nextCursor: string | null };
      ids.push(...body.jobs.map((j) => j.id));
      cursor = body.nextCursor;
    }
    return { ids, pages };
  };

  it('by id: the job, its state and the batch that served it', async () => {
    const res = await get(`/v1/jobs?queue=embeddings&id=${singleId}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      queue: 'embeddings',
      by: 'id',
      nextCursor: null,
      jobs: [{ id: singleId, state: 'completed', batch: batchOf(singleId), href: `/v1/jobs/embeddings/${singleId}` }],
    });
    expect((await get('/v1/jobs?queue=embeddings&id=no-such-job')).json().jobs).toEqual([]);
  });

  it('by idempotency key: the one job of a single text, and every job of a list, page by page', async () => {
    const single = (await get('/v1/jobs?queue=embeddings&idempotencyKey=lookup-single')).json();
    expect(single.jobs.map((j: { id: string }) => j.id)).toEqual([singleId]);
    const { ids, pages } = await allPages('/v1/jobs?queue=embeddings&idempotencyKey=lookup-list&limit=2');
    expect(ids).toEqual(listIds);
    expect(pages).toBeGreaterThanOrEqual(3);
    // The same key in another queue names other jobs.
    expect((await get('/v1/jobs?queue=deals&idempotencyKey=lookup-list')).json().jobs).toEqual([]);
  });

  it('by batch: exactly the jobs the batch served, across pages without repeats', async () => {
    const batch = batchOf(listIds[0]);
    const expected = [...results.keys()].filter((id) => batchOf(id) === batch).sort();
    const { ids } = await allPages(`/v1/jobs?queue=embeddings&batch=${encodeURIComponent(batch)}&limit=1`);
    expect([...ids].sort()).toEqual(expected);
    expect(new Set(ids).size).toBe(ids.length);
    const first = (await get(`/v1/jobs?queue=embeddings&batch=${encodeURIComponent(batch)}`)).json();
    for (const j of first.jobs) expect(j).toMatchObject({ state: 'completed', batch });
  });

  it('by text or its hash: every job with that exact text, in any batch; another text finds none of them', async () => {
    const text = 'renewal is at risk';
    const expected = [listIds[0], singleId].sort();
    const byText = (await get(`/v1/jobs?queue=embeddings&text=${encodeURIComponent(text)}`)).json();
    expect(byText.jobs.map((j: { id: string }) => j.id).sort()).toEqual(expected);
    const byHash = (await get(`/v1/jobs?queue=embeddings&textHash=${textHash(text)}`)).json();
    expect(byHash.jobs.map((j: { id: string }) => j.id).sort()).toEqual(expected);
    expect((await get(`/v1/jobs?queue=embeddings&text=${encodeURIComponent('renewal is at risk!')}`)).json().jobs).toEqual([]);
    // the text never becomes a key: only its hash does
    expect(await redis.exists(lookupKeys.text(`${prefix}:embeddings`, textHash(text)))).toBe(1);
    expect(await redis.keys(`${prefix}:embeddings:fleet:*renewal*`)).toEqual([]);
  });

  it("by tenant: the jobs that carry it (their index target's tenant), hashed in the key", async () => {
    const { ids } = await allPages('/v1/jobs?queue=embeddings&tenant=acme&limit=1');
    expect([...ids].sort()).toEqual([...acmeIds].sort());
    expect((await get('/v1/jobs?queue=embeddings&tenant=initech')).json().jobs).toEqual([]);
    expect(await redis.keys(`${prefix}:embeddings:fleet:*acme*`)).toEqual([]);
  });

  it('GET /v1/batches/:id: its jobs, QUERY_TAG, timing and outcome', async () => {
    const batch = batchOf(listIds[0]);
    const expected = [...results.keys()].filter((id) => batchOf(id) === batch).sort();
    const res = await get(`/v1/batches/${encodeURIComponent(batch)}`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      batchId: batch,
      queues: ['embeddings'],
      name: 'emb',
      outcome: 'ok',
      error: null,
      size: results.get(listIds[0])!.batch!.size,
      jobsServed: expected.length,
      queryTag: { queue: 'embeddings', batchId: batch },
      total: expected.length,
      nextCursor: null,
    });
    expect(body.jobs.map((j: { id: string }) => j.id).sort()).toEqual(expected);
    // The tag counts the jobs of the statement when it was sent; a job of the same text that joined it in flight
    // is served (jobsServed) but was not in the tag.
    expect(body.queryTag.jobs).toBeGreaterThanOrEqual(1);
    expect(body.queryTag.jobs).toBeLessThanOrEqual(expected.length);
    expect(body.durationMs).toEqual(expect.any(Number));
    expect(Date.parse(body.finishedAt)).toBeGreaterThanOrEqual(Date.parse(body.startedAt));
    // `queue` narrows it; pages follow the cursor
    const page = (await get(`/v1/batches/${encodeURIComponent(batch)}?queue=embeddings&limit=1`)).json();
    expect(page.jobs).toHaveLength(1);
    expect(page.nextCursor).toBe(expected.length > 1 ? '1' : null);
    expect((await get(`/v1/batches/${encodeURIComponent(batch)}?queue=deals`)).statusCode).toBe(404);
    const missing = await get('/v1/batches/emb-000000-999999');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('batch_not_found');
  });

  it('the indexes expire with the jobs: TTL equal to the retention the writer was given', async () => {
    const queueKey = `${prefix}:embeddings`;
    const batch = batchOf(listIds[0]);
    for (const key of [lookupKeys.batch(queueKey, batch), lookupKeys.batchJobs(queueKey, batch), lookupKeys.text(queueKey, textHash(LIST_TEXTS[1]))]) {
      const ttl = await redis.ttl(key);
      expect({ key, ok: ttl > RETENTION_S - 60 && ttl <= RETENTION_S }).toEqual({ key, ok: true });
    }
  });

  it("a job's log row names its batch with a link to the lookup page (Bull Board's Logs tab)", async () => {
    const logs = await producer.queue(QUEUES.embeddings).getJobLogs(singleId);
    const batch = batchOf(singleId);
    expect(logs.logs).toEqual([expect.stringContaining(`served by batch ${batch} (`)]);
    expect(logs.logs[0]).toContain(`${JOB_LOOKUP_PAGE}?batch=${encodeURIComponent(batch)}`);
  });

  it.each([
    ['no lookup', '/v1/jobs?queue=embeddings', 'query', /exactly one of/],
    ['two lookups', '/v1/jobs?queue=embeddings&id=a&batch=emb-1-2', 'batch', /exactly one of/],
    ['no queue', '/v1/jobs?id=a', 'queue', /./],
    ['a batch id with a space', '/v1/jobs?queue=embeddings&batch=emb%201', 'batch', /batch id/],
    ['a short text hash', '/v1/jobs?queue=embeddings&textHash=abc', 'textHash', /43 characters/],
    ['an empty text', '/v1/jobs?queue=embeddings&text=%20', 'text', /empty/],
    ['a tenant with a space', '/v1/jobs?queue=embeddings&tenant=ac%20me', 'tenant', /letters, digits/],
    ['limit 0', '/v1/jobs?queue=embeddings&id=a&limit=0', 'limit', /1 to 100/],
    ['limit 101', '/v1/jobs?queue=embeddings&id=a&limit=101', 'limit', /1 to 100/],
    ['a cursor that is no cursor', '/v1/jobs?queue=embeddings&id=a&cursor=abc', 'cursor', /nextCursor/],
    ['an unknown parameter', '/v1/jobs?queue=embeddings&id=a&state=failed', 'state', /unknown field/],
    ['a bad batch id', '/v1/batches/emb:1', 'id', /batch id/],
  ])('400 for %s', async (_name, url, path, message) => {
    const res = await get(url);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues).toEqual(expect.arrayContaining([{ path, message: expect.stringMatching(message) }]));
  });

  it('404 for a queue the API does not know', async () => {
    const res = await get('/v1/jobs?queue=nope&id=a');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('unknown_queue');
  });

  it('401 without the bearer token, and board credentials do not open /v1', async () => {
    for (const url of [`/v1/jobs?queue=embeddings&id=${singleId}`, `/v1/batches/${encodeURIComponent(batchOf(singleId))}`]) {
      expect((await get(url, {})).statusCode).toBe(401);
      expect((await get(url, { authorization: 'Bearer not-the-token-0123456789' })).statusCode).toBe(401);
      expect((await get(url, basic(ADMIN))).statusCode).toBe(401);
    }
  });

  it('the page: refused without board credentials; admins and viewers find jobs and open batches', async () => {
    const refused = await get(`${JOB_LOOKUP_PAGE}?by=id&q=${singleId}`, {});
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['www-authenticate']).toMatch(/^Basic/);
    expect((await get(JOB_LOOKUP_PAGE, basic({ ...ADMIN, password: 'wrong-password' }))).statusCode).toBe(401);
    for (const who of [ADMIN, VIEWER]) {
      const found = await get(`${JOB_LOOKUP_PAGE}?queue=embeddings&by=idempotencyKey&q=lookup-single`, basic(who));
      expect(found.statusCode).toBe(200);
      expect(found.headers['content-type']).toMatch(/^text\/html/);
      expect(found.body).toContain(`data-job="${singleId}"`);
      const batch = batchOf(singleId);
      expect(found.body).toContain(`href="${JOB_LOOKUP_PAGE}?batch=${encodeURIComponent(batch)}&amp;queue=embeddings"`);
      const opened = await get(`${JOB_LOOKUP_PAGE}?batch=${encodeURIComponent(batch)}`, basic(who));
      expect(opened.statusCode).toBe(200);
      for (const id of [...results.keys()].filter((id) => batchOf(id) === batch)) expect(opened.body).toContain(`data-job="${id}"`);
      expect(opened.body).toContain('id="batch-outcome">ok<');
    }
    // bad input is a 400 page naming the field, with the text escaped
    const bad = await get(`${JOB_LOOKUP_PAGE}?queue=embeddings&by=textHash&q=${encodeURIComponent('<script>x</script>')}`, basic(ADMIN));
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('textHash: must be 43 characters');
    expect(bad.body).not.toContain('<script>x');
    expect((await get(`${JOB_LOOKUP_PAGE}?batch=emb-000000-999999`, basic(ADMIN))).statusCode).toBe(404);
  });

  it('documents GET /v1/jobs and GET /v1/batches/{id}, and not the page', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(doc.paths['/v1/jobs'].get.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths['/v1/batches/{id}'].get.responses).toHaveProperty('404');
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/admin'))).toBe(false);
  });
});

describe('job lookup in a fleet wired as `fleet up` wires it (roles, API, config)', () => {
  let fleet: RunningFleet;
  let redis: Redis;
  const prefix = uniquePrefix('lookup-fleet');
  const KEEP_COMPLETED_S = 1_800;
  const KEEP_FAILED_S = 5_400;
  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`${fleet.apiUrl}${route}`, {
      method,
      headers: { ...auth(), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    redis = testRedis();
    const config = loadConfig({
      REDIS_URL: testRedisUrl(),
      FLEET_QUEUE_PREFIX: prefix,
      PORT: '0',
      FLEET_API_TOKENS: TOKEN,
      JOB_KEEP_COMPLETED_S: String(KEEP_COMPLETED_S),
      JOB_KEEP_FAILED_S: String(KEEP_FAILED_S),
      LOCAL_WAREHOUSE_LOGIN_LATENCY_MS: '0',
      CACHE_ENABLED: 'false',
      LOG_LEVEL: 'error',
    });
    fleet = await startFleet(config, {
      roles: ['embeddings'],
      embeddedRedis: false,
      embeddedWarehouse: true,
      logger: createLogger({ level: 'error', secrets: config.secrets }),
      api: { host: '127.0.0.1' },
    });
  }, 60_000);

  afterAll(async () => {
    await fleet?.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.unlink(...keys);
    await redis.quit();
  }, 60_000);

  it("the role's batch observer gives the writer each batch: the record, its jobs and the retention from config", async () => {
    const texts = ['fleet renewal is at risk', 'fleet pricing call went well', 'fleet champion left'];
    const enqueued = await fetch(`${fleet.apiUrl}/v1/embeddings?waitMs=20000`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json', 'idempotency-key': 'fleet-lookup-1' },
      body: JSON.stringify({ texts }),
    });
    expect(enqueued.status).toBe(200);
    const jobs = ((await enqueued.json()) as { jobs: { id: string; result: EmbeddingResult }[] }).jobs;
    const found = await call('GET', '/v1/jobs?queue=embeddings&idempotencyKey=fleet-lookup-1');
    expect((found.body.jobs as FoundJobBody[]).map((j) => [j.id, j.state, j.batch])).toEqual(jobs.map((j) => [j.id, 'completed', j.result.batch!.batchId]));

    const batchId = jobs[0].result.batch!.batchId;
    const batch = await call('GET', `/v1/batches/${encodeURIComponent(batchId)}`);
    expect(batch.status).toBe(200);
    expect(batch.body).toMatchObject({ batchId, name: 'emb', outcome: 'ok', queryTag: { queue: 'embeddings', batchId } });
    const inBatch = jobs.filter((j) => j.result.batch!.batchId === batchId).map((j) => j.id);
    expect((batch.body.jobs as { id: string }[]).map((j) => j.id).sort()).toEqual(inBatch.sort());
    // retention: the larger of JOB_KEEP_COMPLETED_S and JOB_KEEP_FAILED_S
    const ttl = await redis.ttl(lookupKeys.batch(`${prefix}:embeddings`, batchId));
    expect(ttl > KEEP_FAILED_S - 60 && ttl <= KEEP_FAILED_S).toBe(true);
    // the row links to the page
    const logs = await redis.lrange(`${prefix}:embeddings:${jobs[0].id}:logs`, 0, -1);
    expect(logs).toEqual([expect.stringMatching(new RegExp(`· ${JOB_LOOKUP_PAGE}\\?batch=${batchId}$`))]);
  }, 60_000);
});

interface FoundJobBody {
  id: string;
  state: string;
  batch: string | null;
}
