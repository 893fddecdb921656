import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import IORedis, { type Redis } from 'ioredis';
import { type PrivateRedis, startPrivateRedis } from '../src/app/redis-server';
import { QUEUES } from '../src/contracts/queues';
import { type ApiOptions, buildApi } from '../src/http';
import { createProducer, idempotentJobId, type Producer, type ProducerOptions } from '../src/producers';
import { uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';

/**
 * Every answer of the enqueue routes is true through a Redis outage (its own redis-server, stopped and
 * started on the same port): 202 means the job is in Redis or, with `buffered: true`, in the API's buffer;
 * 503 means it never appears; 504 means it may exist, and a retry with the named key never doubles it.
 */
const TOKEN = 'http-outage-token-0123456789';
const auth = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${TOKEN}`, ...extra });

let dir: string;
let server: PrivateRedis | undefined;
let port: number;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-http-outage-'));
  server = await startPrivateRedis({ appendOnly: true, dir });
  port = server.port;
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Api {
  app: FastifyInstance;
  producer: Producer;
  prefix: string;
  post(url: string, payload: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

async function startApi(name: string, producerOpts: Partial<ProducerOptions> = {}, apiOpts: Partial<ApiOptions> = {}): Promise<Api> {
  const redis: Redis = new IORedis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  const prefix = uniquePrefix(name);
  const producer = createProducer({ connection: redis, prefix, onError: () => undefined, ...producerOpts });
  const app = await buildApi({
    producer,
    queues: [producer.queue(QUEUES.embeddings), producer.queue(QUEUES.deals), producer.queue(QUEUES.workflows)],
    tokens: [TOKEN],
    redisTimeoutMs: 300,
    ...apiOpts,
  });
  await waitUntil('the API connection to be ready', () => redis.status === 'ready');
  return {
    app,
    producer,
    prefix,
    post: (url, payload, headers = {}) => app.inject({ method: 'POST', url, headers: auth(headers), payload: payload as Record<string, unknown> }),
    async close() {
      await app.close();
      await producer.close({ timeoutMs: 1_000 }).catch(() => undefined);
      redis.disconnect();
    },
  };
}

async function redisDown(api: Api): Promise<void> {
  await server?.stop();
  server = undefined;
  await waitUntil('the API producer to see Redis gone', () => !api.producer.stats().connected);
}
async function redisUp(): Promise<void> {
  server = await startPrivateRedis({ appendOnly: true, dir, port });
}
async function jobExists(prefix: string, queue: string, id: string): Promise<boolean> {
  const r = new IORedis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1 });
  try {
    return (await r.exists(`${prefix}:${queue}:${id}`)) === 1;
  } finally {
    r.disconnect();
  }
}

describe('http api through a Redis outage', () => {
  let api: Api | undefined;
  afterEach(async () => {
    if (!server) await redisUp();
    await api?.close();
    api = undefined;
  });

  it('202 with buffered: true while Redis is down; the jobs appear once it is back; a retry with the named key doubles nothing', async () => {
    api = await startApi('http-buffered');
    await redisDown(api);
    const embed = await api.post('/v1/embeddings', { texts: ['one', 'two'] });
    expect(embed.statusCode).toBe(202);
    const key = embed.headers['idempotency-key'] as string;
    expect(embed.json()).toEqual({
      queue: 'embeddings',
      idempotencyKey: key,
      tenant: 'default',
      buffered: true,
      jobs: [0, 1].map((i) => ({ id: idempotentJobId('embeddings', `${key}#${i}`), state: 'buffered', href: expect.any(String) })),
    });
    const deals = await api.post('/v1/deals/insights', { dealIds: ['D-1'] }, { 'idempotency-key': 'deals-7' });
    expect(deals.statusCode).toBe(202);
    expect(deals.json()).toMatchObject({ idempotencyKey: 'deals-7', buffered: true, jobs: [{ id: idempotentJobId('deals', 'deals-7'), state: 'buffered' }] });
    const wf = await api.post('/v1/workflows', { question: 'Which deals are at risk?' });
    expect(wf.statusCode).toBe(202);
    expect(wf.json()).toMatchObject({ state: 'buffered', buffered: true, idempotencyKey: wf.headers['idempotency-key'] });
    expect(api.producer.stats().bufferedJobs).toBe(4);
    // Looking them up says where they are (this process), not "never existed", and needs no Redis.
    const lookup = await api.app.inject({ method: 'GET', url: embed.json().jobs[0].href, headers: auth() });
    expect({ status: lookup.statusCode, body: lookup.json() }).toMatchObject({ status: 200, body: { id: embed.json().jobs[0].id, state: 'buffered' } });
    const wfLookup = await api.app.inject({ method: 'GET', url: wf.json().href, headers: auth() });
    expect({ status: wfLookup.statusCode, body: wfLookup.json() }).toMatchObject({ status: 200, body: { id: wf.json().id, state: 'buffered' } });

    await redisUp();
    await waitUntil('the buffer to flush', () => api!.producer.stats().bufferedJobs === 0 && api!.producer.stats().flushedJobs === 4);
    for (const j of embed.json().jobs) expect(await jobExists(api.prefix, 'embeddings', j.id)).toBe(true);
    expect(await jobExists(api.prefix, 'deals', deals.json().jobs[0].id)).toBe(true);
    expect(await api.producer.queue('workflows').getJobState(wf.json().id)).toBe('waiting-children');
    expect((await api.app.inject({ method: 'GET', url: embed.json().jobs[0].href, headers: auth() })).json().state).toBe('waiting');

    // The client never saw a "done": it retries with the key it was given, and gets the same jobs.
    const retry = await api.post('/v1/embeddings', { texts: ['one', 'two'] }, { 'idempotency-key': key });
    expect(retry.statusCode).toBe(202);
    expect(retry.json()).toMatchObject({ buffered: false, jobs: embed.json().jobs.map((j: { id: string }) => ({ id: j.id, state: 'queued' })) });
    expect(await api.producer.queue('embeddings').count()).toBe(2);
  });

  it('503 when the buffer is full or off: the body says nothing was enqueued, and the job never appears', async () => {
    api = await startApi('http-full', { buffer: { maxJobs: 1 } });
    await redisDown(api);
    expect((await api.post('/v1/embeddings', { text: 'fits' })).statusCode).toBe(202);
    const full = await api.post('/v1/embeddings', { text: 'does not fit' });
    expect(full.statusCode).toBe(503);
    expect(full.headers['retry-after']).toBe('5');
    expect(full.json().error).toEqual({
      code: 'buffer_full',
      message: expect.stringMatching(/buffer is full \(maxJobs 1\); 1 job was not enqueued; no job will appear from this request/),
    });
    const refusedId = idempotentJobId('embeddings', full.headers['idempotency-key'] as string);
    await redisUp();
    await waitUntil('the buffer to flush', () => api!.producer.stats().flushedJobs === 1);
    expect(await api.producer.queue('embeddings').count()).toBe(1);
    expect(await jobExists(api.prefix, 'embeddings', refusedId)).toBe(false);
  });

  it('503 redis_unavailable at once with buffering off, naming where Redis was', async () => {
    api = await startApi('http-off', { buffer: false });
    await redisDown(api);
    const res = await api.post('/v1/deals/insights', { dealIds: ['D-1'] }, { 'idempotency-key': 'off-1' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['idempotency-key']).toBe('off-1');
    expect(res.json().error.code).toBe('redis_unavailable');
    expect(res.json().error.message).toContain(`Redis is unreachable at redis://127.0.0.1:${port}`);
    await redisUp();
    await waitUntil('the producer to reconnect', () => api!.producer.stats().connected);
    expect(await jobExists(api.prefix, 'deals', idempotentJobId('deals', 'off-1'))).toBe(false);
  });

  it('504 when the add was sent but no answer came: the job may exist, and a retry with the named key does not double it', async () => {
    api = await startApi('http-unknown', {}, { maxBacklog: Infinity });
    const admin = new IORedis(`redis://127.0.0.1:${port}`);
    try {
      // Paused, not down: the connection stays ready, so the add is written and its reply is what is missing.
      await admin.call('CLIENT', 'PAUSE', '1500', 'WRITE');
      const res = await api.post('/v1/embeddings', { text: 'sent into a pause' });
      expect(res.statusCode).toBe(504);
      const key = res.headers['idempotency-key'] as string;
      expect(res.json().error).toEqual({
        code: 'enqueue_outcome_unknown',
        message: expect.stringContaining(`may or may not have been enqueued. Retry with the same Idempotency-Key (${key})`),
      });
      await waitUntil('the paused add to land', () => jobExists(api!.prefix, 'embeddings', idempotentJobId('embeddings', key)), { timeoutMs: 10_000 });
      const retry = await api.post('/v1/embeddings', { text: 'sent into a pause' }, { 'idempotency-key': key });
      expect(retry.statusCode).toBe(202);
      expect(retry.json().jobs[0].id).toBe(idempotentJobId('embeddings', key));
      expect(await api.producer.queue('embeddings').count()).toBe(1);
    } finally {
      admin.disconnect();
    }
  });
});
