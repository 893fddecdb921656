import crypto from 'node:crypto';
import { type Job, Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import IORedis, { type Redis } from 'ioredis';
import { closeRedis } from '../src/app/redis';
import { startPrivateRedis } from '../src/app/redis-server';
import { ResultTimeoutError, ValidationError } from '../src/contracts/errors';
import { QUEUES } from '../src/contracts/queues';
import { type ApiOptions, buildApi, createAuthenticator } from '../src/http';
import { createProducer, idempotentJobId, type Producer } from '../src/producers';
import { testRedis, uniquePrefix } from './helpers/redis';

const TOKEN = 'test-token-0123456789abcdef';
const auth = (token = TOKEN) => ({ authorization: `Bearer ${token}` });

interface TestApi {
  app: FastifyInstance;
  producer: Producer;
  prefix: string;
  close(): Promise<void>;
}

// Once in six full-suite runs a test here failed with ioredis' "Connection is closed": a command of an
// earlier test's connection rejected after that test quit it, and jest blamed the running test. Not
// reproduced in isolation (3 of 3 runs pass); a deterministic failure still fails after the retry.
jest.retryTimes(1, { logErrorsBeforeRetry: true });

async function startTestApi(name: string, opts: Partial<ApiOptions> = {}): Promise<TestApi> {
  const redis: Redis = testRedis();
  const prefix = uniquePrefix(name);
  const producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });
  const app = await buildApi({ producer, queues: [producer.queue(QUEUES.embeddings), producer.queue(QUEUES.deals)], tokens: [TOKEN], ...opts });
  return {
    app,
    producer,
    prefix,
    async close() {
      await app.close();
      await producer.close();
      // A test that never used Redis may close before the connection is ready: QUIT then fails with
      // "Connection is closed" (closeRedis drops a connection that is not ready).
      await closeRedis(redis);
    },
  };
}

/** Stands in for the fleet's embedding worker: same log line and result shape; texts starting "fail" fail. */
function startStubWorker(prefix: string): { worker: Worker; close(): Promise<void> } {
  const connection = testRedis();
  let n = 0;
  const worker = new Worker(
    QUEUES.embeddings,
    async (job: Job) => {
      if (String(job.data.text).startsWith('fail')) throw new Error('warehouse said no');
      const batch = { batchId: `emb-test-${++n}`, size: 1 };
      await job.log(`served by batch ${batch.batchId} (${batch.size} texts)`);
      return { model: job.data.model, dims: 768, vector: Buffer.alloc(16).toString('base64'), batch, cached: false };
    },
    { connection, prefix, concurrency: 10 },
  );
  return {
    worker,
    async close() {
      await worker.close();
      await connection.quit();
    },
  };
}

describe('http api: authentication', () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi('http-auth');
  });
  afterAll(() => t.close());

  it('refuses a request without a token with 401 and a Bearer challenge', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/embeddings', payload: { text: 'hello' } });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.json()).toEqual({ error: { code: 'unauthorized', message: expect.stringMatching(/missing Authorization/) } });
  });

  it.each([
    ['a wrong token', 'Bearer wrong-token-0123456789abcdef'],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, -1)}`],
    ['the token plus one character', `Bearer ${TOKEN}x`],
    ['an empty bearer', 'Bearer '],
    ['another scheme', `Token ${TOKEN}`],
    ['Basic credentials', `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}`],
  ])('refuses %s with 401', async (_name, header) => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/jobs/embeddings/1', headers: { authorization: header } });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('unauthorized');
  });

  it('accepts the token', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { text: 'hello' } });
    expect(res.statusCode).toBe(202);
  });

  it('compares in constant time: sha256 digests of equal length, every configured token compared, no early exit', () => {
    const tokens = ['a-token-aaaaaaaaaaaaaaaa', 'b-token-bbbbbbbbbbbbbbbb', 'c-token-cccccccccccccccc'];
    const a = createAuthenticator({ tokens });
    const spy = jest.spyOn(crypto, 'timingSafeEqual');
    try {
      for (const candidate of [tokens[0], 'x', 'y'.repeat(10_000)]) {
        spy.mockClear();
        a.authenticate(`Bearer ${candidate}`);
        expect(spy).toHaveBeenCalledTimes(tokens.length);
        for (const [x, y] of spy.mock.calls as [Buffer, Buffer][]) {
          expect(x.length).toBe(32);
          expect(y.length).toBe(32);
        }
      }
    } finally {
      spy.mockRestore();
    }
    expect(a.authenticate(`Bearer ${tokens[2]}`)).toEqual({ role: 'admin', via: 'api-token', name: 'token#2' });
  });

  it('refuses weak options at construction, naming the option but never the secret', async () => {
    expect(() => createAuthenticator({ tokens: ['short'] })).toThrow(/option `tokens\[0\]` must be a string of at least 16 characters/);
    expect(() => createAuthenticator({ tokens: [TOKEN], admin: { username: 'ops', password: 'pw' } })).toThrow(/admin.password/);
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix: uniquePrefix('http-noauth') });
    try {
      await expect(buildApi({ producer, queues: [], tokens: [] })).rejects.toThrow(/`tokens` is empty/);
      const err = await buildApi({ producer, queues: [], tokens: ['secret-but-short'.slice(0, 10)] }).catch((e) => e);
      expect(err.message).not.toContain('secret-but');
    } finally {
      await producer.close();
      await redis.quit();
    }
  });
});

describe('http api: validation names the wrong field', () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi('http-validation');
  });
  afterAll(() => t.close());

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url, headers: { ...auth(), ...headers }, payload: payload as never });

  const cases: [string, string, unknown, string, RegExp][] = [
    ['empty text', '/v1/embeddings', { text: '' }, 'text', /must not be empty/],
    ['whitespace text', '/v1/embeddings', { text: ' \n\t' }, 'text', /must not be empty/],
    ['8,001 characters', '/v1/embeddings', { text: 'x'.repeat(8001) }, 'text', /at most 8000 characters/],
    ['NUL byte', '/v1/embeddings', { text: 'a\u0000b' }, 'text', /NUL/],
    ['text is a number', '/v1/embeddings', { text: 42 }, 'text', /must be a string/],
    ['text is null', '/v1/embeddings', { text: null }, 'text', /must be a string/],
    ['texts is a string', '/v1/embeddings', { texts: 'abc' }, 'texts', /must be an array/],
    ['one bad text in a list', '/v1/embeddings', { texts: ['ok', 'fine', ''] }, 'texts[2]', /must not be empty/],
    ['a number in a list', '/v1/embeddings', { texts: ['ok', 7] }, 'texts[1]', /must be a string/],
    ['empty list', '/v1/embeddings', { texts: [] }, 'texts', /at least one/],
    ['1,001 texts', '/v1/embeddings', { texts: Array.from({ length: 1001 }, (_, i) => `t${i}`) }, 'texts', /at most 1000/],
    ['neither text nor texts', '/v1/embeddings', { model: 'e5-base-v2' }, 'text', /one of `text` or `texts`/],
    ['both text and texts', '/v1/embeddings', { text: 'a', texts: ['b'] }, 'texts', /not both/],
    ['unknown model', '/v1/embeddings', { text: 'a', model: 'gpt-9' }, 'model', /must be one of/],
    ['unknown field', '/v1/embeddings', { text: 'a', txt: 'b' }, 'txt', /unknown field/],
    ['negative priority', '/v1/embeddings', { text: 'a', priority: -1 }, 'priority', /from 1/],
    ['fractional priority', '/v1/embeddings', { text: 'a', priority: 1.5 }, 'priority', /integer/],
    ['priority as a string', '/v1/embeddings', { text: 'a', priority: '1' }, 'priority', /must be a number/],
    ['bad index id', '/v1/embeddings', { text: 'a', index: { namespace: 'calls', id: ' x' } }, 'index.id', /letters, digits/],
    ['index count mismatch', '/v1/embeddings', { texts: ['a', 'b'], index: [{ namespace: 'calls', id: 'c1' }] }, 'index', /one target per text/],
    ['body is an array', '/v1/embeddings', [1, 2], 'body', /must be a JSON object/],
    ['body is a string', '/v1/embeddings', '"text"', 'body', /must be a JSON object/],
    ['no deal ids', '/v1/deals/insights', { dealIds: [] }, 'dealIds', /at least one/],
    ['1,001 deal ids', '/v1/deals/insights', { dealIds: Array.from({ length: 1001 }, (_, i) => `D-${i}`) }, 'dealIds', /at most 1000/],
    ['a number as a deal id', '/v1/deals/insights', { dealIds: ['D-1', 2] }, 'dealIds[1]', /must be a string/],
    ['SQL in a deal id', '/v1/deals/insights', { dealIds: ["D-1'; DROP TABLE deals; --"] }, 'dealIds[0]', /letters, digits/],
    ['duplicate deal ids', '/v1/deals/insights', { dealIds: ['D-1', 'D-1'] }, 'dealIds[1]', /duplicate/],
    ['dealIds is an object', '/v1/deals/insights', { dealIds: { 0: 'D-1' } }, 'dealIds', /must be an array/],
  ];

  it.each(cases)('%s → 400 naming %#', async (_name, url, payload, path, message) => {
    const res = await post(url, payload, { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('invalid_request');
    const issue = error.issues.find((i: { path: string }) => i.path === path);
    expect(issue).toBeDefined();
    expect(issue.message).toMatch(message);
    expect(error.message).toContain(path);
  });

  it('malformed JSON → 400 malformed_json', async () => {
    for (const payload of ['{"text": "a",}', '{"text": ', 'NaN', '{"text": Infinity}', "{'text': 'a'}"]) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { ...auth(), 'content-type': 'application/json' }, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('malformed_json');
    }
  });

  it('empty JSON body → 400; no body → 400 naming the body; text/plain → 415', async () => {
    const empty = await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { ...auth(), 'content-type': 'application/json' }, payload: '' });
    expect(empty.statusCode).toBe(400);
    const none = await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth() });
    expect(none.statusCode).toBe(400);
    expect(none.json().error.issues[0].path).toBe('body');
    const text = await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { ...auth(), 'content-type': 'text/plain' }, payload: 'hello' });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('unsupported_media_type');
  });

  it('a prototype-poisoning body is refused', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/embeddings',
      headers: { ...auth(), 'content-type': 'application/json' },
      payload: '{"text":"a","__proto__":{"admin":true}}',
    });
    expect(res.statusCode).toBe(400);
  });

  it.each([['-1'], ['abc'], ['1.5'], ['99999999']])('?waitMs=%s → 400 naming waitMs', async (v) => {
    const res = await t.app.inject({ method: 'POST', url: `/v1/embeddings?waitMs=${v}`, headers: auth(), payload: { text: 'a' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues[0].path).toBe('waitMs');
  });

  it('an Idempotency-Key over 512 characters → 400 naming the header', async () => {
    const res = await post('/v1/embeddings', { text: 'a' }, { 'idempotency-key': 'k'.repeat(513) });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues[0].path).toBe('Idempotency-Key');
  });

  it('enqueued nothing for any refused request', async () => {
    // only the accepted requests of other tests in this block (none) may be there
    expect(await t.producer.queue('embeddings').count()).toBe(0);
    expect(await t.producer.queue('deals').count()).toBe(0);
  });
});

describe('http api: body size limit', () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi('http-413');
  });
  afterAll(() => t.close());

  it('413 for a body over 1 MiB', async () => {
    const texts = Array.from({ length: 140 }, () => 'x'.repeat(7900)); // ~1.1 MB of valid texts
    const res = await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { texts } });
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toEqual({ code: 'payload_too_large', message: expect.stringContaining('1048576 bytes') });
  });

  it('413 for a body over 16 MB', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/embeddings',
      headers: { ...auth(), 'content-type': 'application/json' },
      payload: `{"text":"${'y'.repeat(17 * 1024 * 1024)}"}`,
    });
    expect(res.statusCode).toBe(413);
  });

  it('a body just under the limit is read (and then validated)', async () => {
    const texts = Array.from({ length: 120 }, (_, i) => `${i} ${'x'.repeat(7900)}`); // ~950 KB
    const res = await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { texts } });
    expect(res.statusCode).toBe(202);
    expect(res.json().jobs).toHaveLength(120);
  });
});

describe('http api: backlog bound', () => {
  it('429 with Retry-After once waiting + prioritized jobs would exceed maxBacklog', async () => {
    const t = await startTestApi('http-429', { maxBacklog: 3, backlog: { cacheMs: 0, retryAfterS: 7 } });
    try {
      for (let i = 0; i < 3; i++) {
        const ok = await t.app.inject({
          method: 'POST',
          url: '/v1/embeddings',
          headers: auth(),
          payload: { text: `t${i}`, ...(i === 2 ? { priority: 5 } : {}) },
        });
        expect(ok.statusCode).toBe(202);
      }
      const refused = await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { text: 'one too many' } });
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['retry-after']).toBe('7');
      expect(refused.json().error).toEqual({ code: 'backlog_full', message: expect.stringMatching(/embeddings has 3 jobs waiting \(bound 3\)/) });
      // the other queue has its own bound
      expect((await t.app.inject({ method: 'POST', url: '/v1/deals/insights', headers: auth(), payload: { dealIds: ['D-1'] } })).statusCode).toBe(202);
      // once a job leaves the backlog, there is room again
      const [waiting] = await t.producer.queue('embeddings').getWaiting(0, 0);
      await waiting.remove();
      expect((await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { text: 'room again' } })).statusCode).toBe(202);
      expect(await t.producer.queue('embeddings').count()).toBe(3);
    } finally {
      await t.close();
    }
  });

  it('a list that would cross the bound is refused whole', async () => {
    const t = await startTestApi('http-429-list', { maxBacklog: 5, backlog: { cacheMs: 0 } });
    try {
      expect((await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { texts: ['a', 'b', 'c', 'd'] } })).statusCode).toBe(202);
      expect((await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { texts: ['e', 'f'] } })).statusCode).toBe(429);
      expect(await t.producer.queue('embeddings').count()).toBe(4);
    } finally {
      await t.close();
    }
  });

  it('counts the backlog once per cache period, not once per request, and counts its own enqueues meanwhile', async () => {
    const t = await startTestApi('http-429-cache', { maxBacklog: 10, backlog: { cacheMs: 60_000 } });
    const queue = t.producer.queue('embeddings');
    const spy = jest.spyOn(queue, 'getJobCounts');
    try {
      const codes = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { text: `c${i}` } }).then((r) => r.statusCode),
        ),
      );
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy).toHaveBeenCalledWith('waiting', 'prioritized');
      expect(codes.filter((c) => c === 202)).toHaveLength(10);
      expect(codes.filter((c) => c === 429)).toHaveLength(2);
    } finally {
      spy.mockRestore();
      await t.close();
    }
  });
});

describe('http api: enqueue, idempotency, job lookup', () => {
  let t: TestApi;
  let worker: ReturnType<typeof startStubWorker> | undefined;
  beforeAll(async () => {
    t = await startTestApi('http-jobs');
  });
  afterAll(async () => {
    await worker?.close();
    await t.close();
  });

  it('POST /v1/embeddings → 202 with job ids, a Location and a waiting job', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { text: 'renewal is at risk', model: 'e5-base-v2' } });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    // No Idempotency-Key sent: the API assigned one, named in the body and the header, and the job id derives from it.
    expect(body).toEqual({
      queue: 'embeddings',
      idempotencyKey: expect.stringMatching(/^[0-9a-f-]{36}$/),
      tenant: 'default',
      buffered: false,
      jobs: [{ id: idempotentJobId('embeddings', body.idempotencyKey), state: 'queued', href: `/v1/jobs/embeddings/${body.jobs[0].id}` }],
    });
    expect(res.headers['idempotency-key']).toBe(body.idempotencyKey);
    expect(res.headers.location).toBe(body.jobs[0].href);
    const job = await t.producer.queue('embeddings').getJob(body.jobs[0].id);
    expect(job!.data).toMatchObject({ text: 'renewal is at risk', model: 'e5-base-v2' });
    const lookup = await t.app.inject({ method: 'GET', url: body.jobs[0].href, headers: auth() });
    expect(lookup.statusCode).toBe(200);
    expect(lookup.json()).toMatchObject({
      queue: 'embeddings',
      id: body.jobs[0].id,
      name: 'embed',
      state: 'waiting',
      attemptsMade: 0,
      result: null,
      batches: [],
    });
  });

  it('a list of texts → one job per text, in order', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/embeddings',
      headers: auth(),
      payload: {
        texts: ['a', 'b', 'c'],
        index: [
          { namespace: 'n', id: '1' },
          { namespace: 'n', id: '2' },
          { namespace: 'n', id: '3' },
        ],
      },
    });
    expect(res.statusCode).toBe(202);
    const ids = res.json().jobs.map((j: { id: string }) => j.id);
    const jobs = await Promise.all(ids.map((id: string) => t.producer.queue('embeddings').getJob(id)));
    expect(jobs.map((j) => j!.data.text)).toEqual(['a', 'b', 'c']);
    expect(jobs[2]!.data.index).toEqual({ namespace: 'n', id: '3' });
  });

  it('Idempotency-Key → the same job for a retried request', async () => {
    const send = (key: string, text = 'same') =>
      t.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { ...auth(), 'idempotency-key': key }, payload: { text } });
    const first = (await send('note-42')).json().jobs[0].id;
    const again = (await send('note-42')).json().jobs[0].id;
    const other = (await send('note-43')).json().jobs[0].id;
    expect(again).toBe(first);
    expect(other).not.toBe(first);
    expect(first).toBe(idempotentJobId('embeddings', 'note-42'));
    expect((await send('note-42')).headers['idempotency-key']).toBe('note-42');
    const deals1 = await t.app.inject({
      method: 'POST',
      url: '/v1/deals/insights',
      headers: { ...auth(), 'idempotency-key': 'k:1' },
      payload: { dealIds: ['D-1', 'D-2'] },
    });
    const deals2 = await t.app.inject({
      method: 'POST',
      url: '/v1/deals/insights',
      headers: { ...auth(), 'idempotency-key': 'k:1' },
      payload: { dealIds: ['D-1', 'D-2'] },
    });
    expect(deals2.json().jobs[0].id).toBe(deals1.json().jobs[0].id);
    const list1 = await t.app.inject({
      method: 'POST',
      url: '/v1/embeddings',
      headers: { ...auth(), 'idempotency-key': 'batch-7' },
      payload: { texts: ['x', 'y'] },
    });
    const list2 = await t.app.inject({
      method: 'POST',
      url: '/v1/embeddings',
      headers: { ...auth(), 'idempotency-key': 'batch-7' },
      payload: { texts: ['x', 'y'] },
    });
    expect(list2.json().jobs.map((j: { id: string }) => j.id)).toEqual(list1.json().jobs.map((j: { id: string }) => j.id));
  });

  it('404 for an unknown queue or job, with a clear message', async () => {
    const q = await t.app.inject({ method: 'GET', url: '/v1/jobs/nope/1', headers: auth() });
    expect(q.statusCode).toBe(404);
    expect(q.json().error).toEqual({ code: 'unknown_queue', message: 'unknown queue "nope"; known queues: embeddings, deals' });
    const j = await t.app.inject({ method: 'GET', url: '/v1/jobs/embeddings/999999', headers: auth() });
    expect(j.statusCode).toBe(404);
    expect(j.json().error.code).toBe('job_not_found');
    expect(j.json().error.message).toMatch(/no job "999999" in queue embeddings/);
    const bad = await t.app.inject({ method: 'GET', url: '/v1/jobs/embeddings/a:b', headers: auth() });
    expect(bad.statusCode).toBe(400);
    const route = await t.app.inject({ method: 'GET', url: '/v1/nothing', headers: auth() });
    expect(route.statusCode).toBe(404);
    expect(route.json().error.code).toBe('not_found');
  });

  it('?waitMs= without a worker → 202 with the job still pending', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/embeddings?waitMs=100', headers: auth(), payload: { text: 'nobody is working' } });
    expect(res.statusCode).toBe(202);
    expect(res.json().jobs[0].state).toBe('pending');
  });

  it('?waitMs= with a worker → 200 with the result; GET shows state, result and the batch that served it', async () => {
    worker = startStubWorker(t.prefix);
    const res = await t.app.inject({ method: 'POST', url: '/v1/embeddings?waitMs=10000', headers: auth(), payload: { text: 'wait for me' } });
    expect(res.statusCode).toBe(200);
    const [entry] = res.json().jobs;
    expect(entry).toMatchObject({ state: 'completed', result: { dims: 768, cached: false, batch: { batchId: expect.stringMatching(/^emb-test-/), size: 1 } } });
    const lookup = (await t.app.inject({ method: 'GET', url: entry.href, headers: auth() })).json();
    expect(lookup).toMatchObject({ state: 'completed', attemptsMade: 1, batches: [entry.result.batch], finishedAt: expect.any(String) });
    expect(lookup.logs).toEqual([`served by batch ${entry.result.batch.batchId} (1 texts)`]);
  });

  it('a failed job: 200 with its failure reason; GET shows it and the attempts', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/embeddings?waitMs=10000', headers: auth(), payload: { text: 'fail please' } });
    expect(res.statusCode).toBe(200);
    const [entry] = res.json().jobs;
    expect(entry).toMatchObject({ state: 'failed', failedReason: expect.stringMatching(/warehouse said no/) });
    const lookup = (await t.app.inject({ method: 'GET', url: entry.href, headers: auth() })).json();
    expect(lookup).toMatchObject({ state: 'failed', failedReason: 'warehouse said no', attemptsMade: 1, attempts: 1 });
  });
});

describe('http api: OpenAPI document and optional routes', () => {
  it('serves the OpenAPI document at /docs/json and a page at /docs', async () => {
    const t = await startTestApi('http-docs');
    try {
      const res = await t.app.inject({ method: 'GET', url: '/docs/json' });
      expect(res.statusCode).toBe(200);
      const doc = res.json();
      expect(doc.openapi).toMatch(/^3\./);
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/embeddings', '/v1/deals/insights', '/v1/jobs/{queue}/{id}', '/healthz', '/readyz']));
      expect(Object.keys(doc.paths).some((p) => p.startsWith('/admin'))).toBe(false);
      const body = doc.paths['/v1/embeddings'].post.requestBody.content['application/json'].schema;
      expect(body.properties.text).toMatchObject({ type: 'string', maxLength: 8000 });
      expect(body.properties.texts).toMatchObject({ type: 'array', maxItems: 1000 });
      expect(doc.paths['/v1/embeddings'].post.security).toEqual([{ bearerAuth: [] }]);
      expect(doc.paths['/v1/embeddings'].post.responses).toHaveProperty('429');
      expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(doc.paths['/v1/search']).toBeUndefined();
      const page = await t.app.inject({ method: 'GET', url: '/docs' });
      expect([200, 302]).toContain(page.statusCode);
      const html =
        page.statusCode === 302
          ? await t.app.inject({ method: 'GET', url: `/docs/${page.headers.location}`.replace('/docs//docs', '/docs').replace('/docs/./', '/docs/') })
          : page;
      expect(html.statusCode).toBe(200);
      expect(html.body).toMatch(/swagger/i);
    } finally {
      await t.close();
    }
  });

  it('registers /v1/search only when a search handler is given; its errors follow the error table', async () => {
    const none = await startTestApi('http-optional-none');
    try {
      expect((await none.app.inject({ method: 'POST', url: '/v1/search', headers: auth(), payload: { text: 'q' } })).statusCode).toBe(404);
    } finally {
      await none.close();
    }
    const t = await startTestApi('http-optional', {
      search: async (body, ctx) => {
        const b = body as { text?: unknown };
        if (typeof b?.text !== 'string') throw new ValidationError([{ path: 'text', message: 'must be a string' }]);
        if (b.text === 'late') throw new ResultTimeoutError('search', 'j-1', 50);
        if (b.text === 'broken') throw new RangeError('query vector has 3 components, the index has 768');
        return { hits: [{ id: 'n/1', namespace: 'n', score: 0.9 }], snapshotVersion: 1, traced: Object.keys(ctx.trace) };
      },
    });
    try {
      const s = await t.app.inject({ method: 'POST', url: '/v1/search', headers: auth(), payload: { text: 'renewal' } });
      expect(s.statusCode).toBe(200);
      expect(s.json().hits).toHaveLength(1);
      const bad = await t.app.inject({ method: 'POST', url: '/v1/search', headers: auth(), payload: { text: 1 } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.issues).toEqual([{ path: 'text', message: 'must be a string' }]);
      const late = await t.app.inject({ method: 'POST', url: '/v1/search', headers: auth(), payload: { text: 'late' } });
      expect([late.statusCode, late.headers['retry-after'], late.json().error.code]).toEqual([503, '5', 'result_timeout']);
      // Not the caller's fault: a 500 naming the request id, the details only in the log.
      const broken = await t.app.inject({ method: 'POST', url: '/v1/search', headers: auth(), payload: { text: 'broken' } });
      expect(broken.statusCode).toBe(500);
      expect(broken.json().error.message).not.toMatch(/components/);
      expect((await t.app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'x' } })).statusCode).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('documents every /v1 route with its request and response bodies', async () => {
    const t = await startTestApi('http-docs-all', { search: async () => ({ hits: [], snapshotVersion: 0 }) });
    try {
      const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json();
      const routes = Object.entries(
        doc.paths as Record<
          string,
          Record<
            string,
            { requestBody?: unknown; parameters?: unknown[]; responses: Record<string, { content?: Record<string, { schema: { properties?: object } }> }> }
          >
        >,
      )
        .filter(([path]) => path.startsWith('/v1/'))
        .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, op })));
      expect(routes.map((r) => r.route).sort()).toEqual([
        'GET /v1/batches/{id}',
        'GET /v1/jobs',
        'GET /v1/jobs/{queue}/{id}',
        'GET /v1/workflows/{id}',
        'POST /v1/deals/insights',
        'POST /v1/deals/invalidate',
        'POST /v1/embeddings',
        'POST /v1/search',
        'POST /v1/workflows',
      ]);
      for (const { route, op } of routes) {
        // POSTs take a body, GETs path parameters; every success and error answer has a schema with fields.
        if (route.startsWith('POST'))
          expect({
            route,
            body:
              Object.keys((op.requestBody as { content: Record<string, { schema: { properties: object } }> }).content['application/json'].schema.properties)
                .length > 0,
          }).toEqual({ route, body: true });
        else expect({ route, params: op.parameters?.length }).toEqual({ route, params: expect.any(Number) });
        const success = Object.keys(op.responses).filter((c) => c.startsWith('2'));
        expect({ route, success: success.length > 0 }).toEqual({ route, success: true });
        for (const [code, answer] of Object.entries(op.responses)) {
          expect({ route, code, fields: Object.keys(answer.content?.['application/json']?.schema.properties ?? {}).length > 0 }).toEqual({
            route,
            code,
            fields: true,
          });
        }
      }
      const search = doc.paths['/v1/search'].post.requestBody.content['application/json'].schema;
      expect(Object.keys(search.properties)).toEqual(expect.arrayContaining(['text', 'vector', 'k', 'namespace']));
      expect(search.properties).not.toHaveProperty('trace');
      expect(doc.paths['/v1/workflows'].post.requestBody.content['application/json'].schema.properties.question).toMatchObject({ type: 'string' });
    } finally {
      await t.close();
    }
  });
});

describe('http api: Redis deadline', () => {
  it('answers 503 with Retry-After when Redis does not answer in time, and recovers after', async () => {
    const redisServer = await startPrivateRedis();
    const redis = new IORedis(redisServer.url, { maxRetriesPerRequest: null });
    const admin = new IORedis(redisServer.url);
    const producer = createProducer({ connection: redis, prefix: uniquePrefix('http-503') });
    const app = await buildApi({ producer, queues: [producer.queue(QUEUES.embeddings)], tokens: [TOKEN], redisTimeoutMs: 300, backlog: { cacheMs: 0 } });
    try {
      expect((await app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { text: 'before' } })).statusCode).toBe(202);
      await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
      const res = await app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { text: 'during' } });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      // Paused before the backlog count came back: the add was never sent, so the 503 is a promise it never appears.
      expect(res.json().error).toEqual({
        code: 'redis_unavailable',
        message: expect.stringMatching(/^Redis did not answer within 300 ms and nothing was enqueued: no job will appear from this request/),
      });
      expect(res.headers['idempotency-key']).toEqual(expect.any(String));
      const lookup = await app.inject({ method: 'GET', url: '/v1/jobs/embeddings/1', headers: auth() });
      expect(lookup.statusCode).toBe(503);
      // The pause ends by itself after 1.5 s; a command on the app's connection is answered once it has.
      await redis.ping();
      expect((await app.inject({ method: 'POST', url: '/v1/embeddings', headers: auth(), payload: { text: 'after' } })).statusCode).toBe(202);
    } finally {
      await app.close();
      await producer.close();
      await redis.quit();
      await admin.quit();
      await redisServer.stop();
    }
  });
});
