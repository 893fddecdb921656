import { type Job, Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { QUEUES } from '../src/contracts/queues';
import { buildApi } from '../src/http';
import { createProducer } from '../src/producers';
import { testRedis, uniquePrefix } from './helpers/redis';

const TOKEN = 'board-api-token-0123456789';
const VIEWER_TOKEN = 'board-viewer-token-0123456789';
const ADMIN = { username: 'ops', password: 'admin-password-1' };
const VIEWER = { username: 'viewer', password: 'viewer-password-1' };
const basic = (c: { username: string; password: string }) => ({ authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('Bull Board: authentication and the read-only viewer', () => {
  const redis = testRedis();
  const workerConnection = testRedis();
  const prefix = uniquePrefix('http-board');
  const producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });
  let app: FastifyInstance;
  let completedId: string;
  let failedId: string;

  beforeAll(async () => {
    app = await buildApi({
      producer,
      queues: [producer.queue(QUEUES.embeddings), producer.queue(QUEUES.deals)],
      tokens: [TOKEN],
      board: { admin: ADMIN, viewer: VIEWER, viewerTokens: [VIEWER_TOKEN] },
    });
    // A stand-in for the fleet's embedding worker: same log line and result shape.
    const worker = new Worker(
      QUEUES.embeddings,
      async (job: Job) => {
        if (job.data.text === 'fail me') throw new Error('warehouse said no');
        await job.log('served by batch emb-board-1 (1 texts)');
        return { model: job.data.model, dims: 768, vector: '', batch: { batchId: 'emb-board-1', size: 1 }, cached: false };
      },
      { connection: workerConnection, prefix },
    );
    try {
      const ok = await producer.embed('complete me');
      const bad = await producer.embed('fail me');
      await ok.result({ timeoutMs: 10_000 });
      await bad.result({ timeoutMs: 10_000 }).catch(() => undefined);
      completedId = ok.id;
      failedId = bad.id;
    } finally {
      // Closed whatever happened: a worker left running reconnects forever and keeps jest from exiting.
      await worker.close();
    }
  });

  afterAll(async () => {
    await app.close();
    await producer.close();
    await redis.quit();
    await workerConnection.quit();
  });

  const state = (id: string) =>
    producer
      .queue(QUEUES.embeddings)
      .getJob(id)
      .then((j) => j!.getState());

  it.each([
    ['the page', '/admin/queues'],
    ['a job page', '/admin/queues/queue/embeddings/1'],
    ['the board API', '/admin/queues/api/queues'],
    ['a static file', '/admin/queues/static/favicon-32x32.png'],
    ['the read-only page', '/admin/queues-readonly'],
    ['the read-only API', '/admin/queues-readonly/api/queues'],
  ])('%s needs credentials: 401 with a Basic challenge', async (_name, url) => {
    const res = await app.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Basic realm="warehouse-fleet board"/);
  });

  it('wrong passwords and unknown tokens are refused', async () => {
    for (const headers of [
      basic({ username: 'ops', password: 'wrong-password' }),
      basic({ username: 'viewer', password: ADMIN.password }),
      bearer('nope-nope-nope-nope-nope'),
      { authorization: 'Basic !!!' },
    ]) {
      expect((await app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers })).statusCode).toBe(401);
    }
  });

  it('the admin (Basic) and API clients (bearer token) see the full board with every queue', async () => {
    const page = await app.inject({ method: 'GET', url: '/admin/queues', headers: basic(ADMIN) });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('/admin/queues');
    for (const headers of [basic(ADMIN), bearer(TOKEN)]) {
      const res = await app.inject({ method: 'GET', url: '/admin/queues/api/queues?activeQueue=embeddings&status=completed&page=1', headers });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.queues.map((q: { name: string }) => q.name).sort()).toEqual(['deals', 'embeddings']);
      const embeddings = body.queues.find((q: { name: string }) => q.name === 'embeddings');
      expect(embeddings.readOnlyMode).toBe(false);
      expect(embeddings.counts).toMatchObject({ completed: 1, failed: 1 });
    }
  });

  it("a job's page data shows the batch that served it (job log and result)", async () => {
    const logs = await app.inject({ method: 'GET', url: `/admin/queues/api/queues/embeddings/${completedId}/logs`, headers: basic(ADMIN) });
    expect(logs.json()).toEqual(['served by batch emb-board-1 (1 texts)']);
    const job = await app.inject({ method: 'GET', url: `/admin/queues/api/queues/embeddings/${completedId}`, headers: basic(ADMIN) });
    expect(job.json().job.returnValue.batch).toEqual({ batchId: 'emb-board-1', size: 1 });
  });

  it('a viewer opening the full board is sent to the read-only board', async () => {
    for (const headers of [basic(VIEWER), bearer(VIEWER_TOKEN)]) {
      const res = await app.inject({ method: 'GET', url: '/admin/queues/queue/embeddings', headers });
      expect(res.statusCode).toBe(302);
      expect(res.headers.location).toBe('/admin/queues-readonly/queue/embeddings');
    }
    const page = await app.inject({ method: 'GET', url: '/admin/queues-readonly', headers: basic(VIEWER) });
    expect(page.statusCode).toBe(200);
    const api = await app.inject({
      method: 'GET',
      url: '/admin/queues-readonly/api/queues?activeQueue=embeddings&status=failed&page=1',
      headers: basic(VIEWER),
    });
    expect(api.statusCode).toBe(200);
    expect(api.json().queues.every((q: { readOnlyMode: boolean }) => q.readOnlyMode)).toBe(true);
    const logs = await app.inject({ method: 'GET', url: `/admin/queues-readonly/api/queues/embeddings/${completedId}/logs`, headers: bearer(VIEWER_TOKEN) });
    expect(logs.json()).toEqual(['served by batch emb-board-1 (1 texts)']);
  });

  it('a viewer cannot retry, remove, pause or empty anything, on either board', async () => {
    const attempts: [string, string][] = [
      ['PUT', `/api/queues/embeddings/${failedId}/retry`],
      ['PUT', `/api/queues/embeddings/${failedId}/clean`],
      ['PUT', '/api/queues/embeddings/retry/failed'],
      ['PUT', '/api/queues/embeddings/clean/completed'],
      ['PUT', '/api/queues/embeddings/pause'],
      ['PUT', '/api/queues/embeddings/empty'],
      ['POST', '/api/queues/embeddings/add'],
    ];
    for (const headers of [basic(VIEWER), bearer(VIEWER_TOKEN)]) {
      for (const [method, path] of attempts) {
        for (const base of ['/admin/queues-readonly', '/admin/queues']) {
          const res = await app.inject({
            method: method as 'PUT',
            url: `${base}${path}`,
            headers: { ...headers, 'content-type': 'application/json' },
            payload: {},
          });
          expect({ url: `${method} ${base}${path}`, status: res.statusCode }).toEqual({ url: `${method} ${base}${path}`, status: 403 });
        }
      }
    }
    expect(await state(failedId)).toBe('failed');
    expect(await state(completedId)).toBe('completed');
    expect(await producer.queue(QUEUES.embeddings).isPaused()).toBe(false);
    expect(await producer.queue(QUEUES.embeddings).count()).toBe(0);
  });

  it('the read-only board refuses changes by itself too (Bull Board readOnlyMode), even for an admin', async () => {
    // Our guard refuses every change on the read-only mount, whoever asks...
    const res = await app.inject({ method: 'PUT', url: `/admin/queues-readonly/api/queues/embeddings/${failedId}/retry`, headers: basic(ADMIN) });
    expect(res.statusCode).toBe(403);
    // ...and below it Bull Board refuses too: the same request to a board of readOnlyMode queues, with no guard, is a 405.
    const { createBullBoard } = await import('@bull-board/api');
    const { BullMQAdapter } = await import('@bull-board/api/bullMQAdapter');
    const { nativeRequire } = await import('../src/runtime/native-require');
    const { FastifyAdapter } = nativeRequire<typeof import('@bull-board/fastify')>('@bull-board/fastify');
    const { fastify } = nativeRequire<typeof import('fastify')>('fastify');
    const bare = fastify();
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath('/ro');
    createBullBoard({ queues: [new BullMQAdapter(producer.queue(QUEUES.embeddings), { readOnlyMode: true })], serverAdapter: serverAdapter as never });
    await bare.register(serverAdapter.registerPlugin() as never, { prefix: '/ro' });
    try {
      const direct = await bare.inject({ method: 'PUT', url: `/ro/api/queues/embeddings/${failedId}/retry` });
      expect(direct.statusCode).toBe(405);
    } finally {
      await bare.close();
    }
    expect(await state(failedId)).toBe('failed');
  });

  it('the admin can retry a failed job', async () => {
    const res = await app.inject({ method: 'PUT', url: `/admin/queues/api/queues/embeddings/${failedId}/retry`, headers: basic(ADMIN) });
    expect(res.statusCode).toBe(204);
    expect(await state(failedId)).toBe('waiting');
  });
});
