/**
 * Issue #9, hostile input, over the HTTP API (fastify, `inject`) and the producer library (`createProducer`):
 * the one list of cases is in test/helpers/hostile-input.ts, with what a refused and an accepted case must
 * get. The CLI runs the same list in test/cli-hostile-input.test.ts (a process per case: `npm test` only).
 * At the end the queues hold exactly the jobs of the accepted cases.
 */
import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../src/contracts/errors';
import { QUEUES } from '../src/contracts/queues';
import { buildApi } from '../src/http';
import type { JobHandle, SearchRequestInput } from '../src/producers';
import { applicable, CASES, fields, type HttpInput, hostileInputRun, type LibraryInput, SURFACES, TOKEN } from './helpers/hostile-input';

let app: FastifyInstance | undefined;
// Declared before the run's own afterAll (hooks run in the order declared): the API closes before its producer.
afterAll(() => app?.close());
const hostile = hostileInputRun(['http', 'library']);

beforeAll(async () => {
  const { producer } = hostile;
  app = await buildApi({
    producer,
    queues: [producer.queue(QUEUES.embeddings), producer.queue(QUEUES.deals), producer.queue(QUEUES.search)],
    tokens: [TOKEN],
    board: false,
    // What `fleet api` does without a co-located search role (src/app/api-role.ts): hand the body to
    // producer.search, which validates it before anything is enqueued.
    search: async (body, ctx) => {
      const handle = await producer.search((body ?? {}) as SearchRequestInput, { trace: ctx.trace });
      return { queue: handle.queue, id: handle.id };
    },
  });
});

// ---- the list itself ----------------------------------------------------------------------------------
describe('the hostile list', () => {
  it('covers every item of issue #9, each surface either sends an input or says why it cannot', () => {
    const names = CASES.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of CASES) {
      for (const s of SURFACES) {
        const input = c[s];
        if ('na' in input) expect(input.na.length).toBeGreaterThan(10);
      }
      if (c.verdict === 'refused') expect((c.http as HttpInput).message ?? c.message).toBeInstanceOf(RegExp);
      if (c.verdict === 'accepted') expect(c.queue).toBeDefined();
    }
    const cli = CASES.filter((c) => !('na' in c.cli));
    expect(cli.length).toBeLessThanOrEqual(16); // each spawn costs about a second
  });
});

// ---- surface 1: HTTP ----------------------------------------------------------------------------------
describe('hostile input over HTTP (fastify, real Redis)', () => {
  it.each(applicable('http'))('%s', async (name, c) => {
    const h = c.http as HttpInput;
    const headers: Record<string, string> = { ...h.headers };
    if (h.auth === 'wrong') headers.authorization = `Bearer ${TOKEN.replace(/.$/, 'X')}`;
    else if (h.auth !== 'none') headers.authorization = `Bearer ${TOKEN}`;
    let payload: string | undefined;
    if (h.raw !== undefined) {
      payload = h.raw;
      headers['content-type'] = h.contentType ?? 'application/json';
    } else if (h.json !== undefined) {
      payload = JSON.stringify(h.json);
      headers['content-type'] = 'application/json';
    }
    const res = await app!.inject({ method: h.method ?? 'POST', url: h.url, headers, ...(payload !== undefined ? { payload } : {}) });
    const body = res.json();
    expect({ status: res.statusCode, body }).toMatchObject({ status: h.status });

    if (c.verdict === 'accepted') {
      await hostile.recordAccepted(
        c,
        'http',
        body.jobs.map((j: { id: string }) => j.id),
        h.jobIds,
      );
      hostile.note(name, 'http', `${res.statusCode} (${body.jobs.length} job${body.jobs.length > 1 ? 's' : ''})`);
      return;
    }
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(body.error.message).toMatch(h.message ?? c.message!);
    const named = fields(h.field ?? c.field);
    for (const f of named) {
      const issue = body.error.issues?.find((i: { path: string }) => i.path === f);
      expect({ field: f, issue }).toEqual({ field: f, issue: { path: f, message: expect.stringMatching(h.message ?? c.message!) } });
    }
    expect(res.body).not.toMatch(/\bat .+\.[jt]s:\d+/); // no stack in the body
    hostile.note(name, 'http', `${res.statusCode} ${body.error.code}${named.length ? ` ${named[0]}${named.length > 1 ? ` +${named.length - 1}` : ''}` : ''}`);
  });
});

// ---- surface 2: the producer library ------------------------------------------------------------------
describe('hostile input through the producer library', () => {
  let probe: JobHandle<unknown>;
  beforeAll(async () => {
    // A real job whose result() is asked for with hostile timeouts (it is embedded like the others).
    const text = 'a job whose result() is awaited with hostile timeouts';
    probe = await hostile.producer.embed(text);
    hostile.enqueued.push({ queue: QUEUES.embeddings, id: probe.id, via: 'library: result() probe', text });
  });

  it.each(applicable('library'))('%s', async (name, c) => {
    const l = c.library as LibraryInput;
    const outcome = await l.call(hostile.producer, { probe }).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    if (c.verdict === 'accepted') {
      if (!outcome.ok) throw outcome.error;
      const handles = (Array.isArray(outcome.value) ? outcome.value : [outcome.value]) as JobHandle<unknown>[];
      expect(handles.every((hd) => hd.queue === c.queue)).toBe(true);
      await hostile.recordAccepted(
        c,
        'library',
        handles.map((hd) => hd.id),
        l.jobIds,
      );
      hostile.note(name, 'library', `enqueued (${handles.length} job${handles.length > 1 ? 's' : ''})`);
      return;
    }
    expect(outcome.ok).toBe(false);
    const err = (outcome as { error: ValidationError }).error;
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toMatch(l.message ?? c.message!);
    const named = fields(l.field ?? c.field);
    expect(named.length).toBeGreaterThan(0);
    for (const f of named) expect(err.issues).toContainEqual({ path: f, message: expect.stringMatching(l.message ?? c.message!) });
    hostile.note(name, 'library', `ValidationError ${named[0]}${named.length > 1 ? ` +${named.length - 1}` : ''}`);
  });
});

hostile.describeAfterwards();
