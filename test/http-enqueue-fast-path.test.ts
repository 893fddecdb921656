import { QUEUES } from '../src/contracts/queues';
import { buildApi, createAuthenticator } from '../src/http';
import { createProducer } from '../src/producers';
import { testRedis, uniquePrefix } from './helpers/redis';

const TOKEN = 'test-token-0123456789abcdef';

/**
 * The enqueue route hands the producer bodies it has validated, and the producer builds the job payloads
 * without parsing them again: the jobs in Redis must be exactly those a library call makes (same JSON,
 * key order included, defaults applied, ISO timestamps converted).
 */
describe('POST /v1/embeddings fast path (payloads built from the validated body)', () => {
  const redis = testRedis();
  const prefix = uniquePrefix('enqueue-fast-path');
  const producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });

  afterAll(async () => {
    await producer.close();
    await redis.quit();
  });

  const cases: { name: string; body: Record<string, unknown>; library: [string | string[], Record<string, unknown>] }[] = [
    { name: 'one text, default model', body: { text: 'renewal at risk' }, library: ['renewal at risk', {}] },
    {
      name: 'one text, a model and an index target with an ISO timestamp',
      body: { text: 'pricing', model: 'e5-base-v2', index: { namespace: 'notes', id: 'n-1', ts: '2026-12-07T10:00:00Z' } },
      library: ['pricing', { model: 'e5-base-v2', index: { namespace: 'notes', id: 'n-1', ts: '2026-12-07T10:00:00Z' } }],
    },
    {
      name: 'one text for a tenant (body field)',
      body: { text: 'a tenant note', tenant: 'team-a' },
      library: ['a tenant note', { tenant: 'team-a' }],
    },
    {
      name: 'several texts with one target each',
      body: {
        texts: ['a note', 'another note'],
        index: [
          { namespace: 'notes', id: 'n-2' },
          { namespace: 'notes', id: 'n-3', tenant: 't-1' },
        ],
      },
      library: [
        ['a note', 'another note'],
        {
          index: [
            { namespace: 'notes', id: 'n-2' },
            { namespace: 'notes', id: 'n-3', tenant: 't-1' },
          ],
        },
      ],
    },
  ];

  it.each(cases)('$name: the same job data as producer.embed', async ({ body, library }) => {
    const app = await buildApi({ producer, queues: [producer.queue(QUEUES.embeddings)], tokens: [TOKEN], board: false, docs: false });
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${TOKEN}` }, payload: body });
      expect(res.statusCode).toBe(202);
      const viaHttp = await Promise.all(
        (res.json() as { jobs: { id: string }[] }).jobs.map(async (j) => (await producer.queue(QUEUES.embeddings).getJob(j.id))!.data),
      );
      const handles = [await producer.embed(library[0] as never, { ...library[1], trace: {} })].flat();
      const viaLibrary = await Promise.all(handles.map(async (h) => (await producer.queue(QUEUES.embeddings).getJob(h.id))!.data));
      expect(viaHttp.map((d) => JSON.stringify(d))).toEqual(viaLibrary.map((d) => JSON.stringify(d)));
    } finally {
      await app.close();
    }
  });
});

describe('createAuthenticator: proven tokens are remembered', () => {
  it('answers a valid token the same on every call, and a wrong one is still refused after it', () => {
    const auth = createAuthenticator({ tokens: [TOKEN, 'second-token-0123456789'], viewerTokens: ['viewer-token-0123456789'] });
    const first = auth.authenticate(`Bearer ${TOKEN}`);
    expect(first).toEqual({ role: 'admin', via: 'api-token', name: 'token#0' });
    expect(auth.authenticate(`Bearer ${TOKEN}`)).toEqual(first);
    expect(auth.authenticate('Bearer viewer-token-0123456789')).toEqual({ role: 'viewer', via: 'viewer-token', name: 'viewer-token#0' });
    expect(auth.authenticate('Bearer viewer-token-0123456789')).toEqual({ role: 'viewer', via: 'viewer-token', name: 'viewer-token#0' });
    expect(auth.authenticate('Bearer second-token-0123456789')).toEqual({ role: 'admin', via: 'api-token', name: 'token#1' });
    expect(auth.authenticate(`Bearer ${TOKEN}x`)).toBeUndefined();
    expect(auth.authenticate(`Bearer ${TOKEN.slice(0, -1)}`)).toBeUndefined();
    expect(auth.authenticate(`Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`)).toBeUndefined();
  });
});
