import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { LocalWarehouse, QueryHistoryEntry } from 'local-snowflake';
import { JOB_LOOKUP_PAGE, parentBatchId } from '../src/contracts/batch-log';
import { QUEUES } from '../src/contracts/queues';
import { buildApi } from '../src/http';
import type { PooledWarehouse, WarehouseCallEvent } from '../src/pool';
import { createProducer, type Producer } from '../src/producers';
import { startIndexedDealWorker, startIndexedEmbeddingWorker } from './helpers/lookup-workers';
import { testRedis, uniquePrefix } from './helpers/redis';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';

/**
 * Batch records an operator can trust (issue #19): the record of a served batch names the Snowflake query id
 * of the statement whose rows answered it, and a batch whose call failed its jobs is found like a served one
 * (outcome, error, query id, timing, its jobs). Real driver, local warehouse, Redis and BullMQ; the
 * warehouse fails statements for real (`poison` and `chunk-error` faults).
 */
const TOKEN = 'lookup-batches-token-0123456789';
const ADMIN = { username: 'ops', password: 'admin-password-1' };
const basic = `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}`;

interface BatchBody {
  batchId: string;
  outcome: 'ok' | 'failed' | null;
  error: string | null;
  queryId: string | null;
  parent: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  size: number | null;
  jobsServed: number | null;
  jobs: { id: string }[];
  total: number;
}
interface FoundJobBody {
  id: string;
  state: string;
  batch: string | null;
  batches: { batchId: string; size: number; outcome: 'served' | 'failed' }[];
  failedReason?: string;
}

/** The QUERY_TAG of a statement the fleet sent, parsed. */
const tagOf = (e: QueryHistoryEntry) => {
  try {
    return JSON.parse(e.queryTag) as { batch?: string; attempt?: number; op?: string };
  } catch {
    return {};
  }
};

describe('batch records: the query id of the statement, and batches whose jobs failed', () => {
  let server: LocalWarehouse;
  let warehouse: PooledWarehouse;
  let redis: Redis;
  let once: Producer;
  let retrying: Producer;
  let queue: Queue;
  let dealsQueue: Queue;
  let app: FastifyInstance;
  const calls: WarehouseCallEvent[] = [];
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    server = await startTestWarehouse();
    cleanup.push(() => server.close());
    const client = pooledClient(server, { max: 2 }, { retries: 2, retryBaseMs: 20, onCall: (e) => calls.push(e) });
    warehouse = client.warehouse;
    cleanup.push(() => client.pool.close());
    redis = testRedis();
    cleanup.push(() => redis.quit());
    const prefix = uniquePrefix('lookup-batches');
    once = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });
    cleanup.push(() => once.close());
    retrying = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 2, backoff: { type: 'fixed', delay: 1_000 } } });
    cleanup.push(() => retrying.close());
    queue = once.queue(QUEUES.embeddings);
    // A window long enough that the jobs of one enqueue share a batch.
    const worker = startIndexedEmbeddingWorker(warehouse, prefix, { retentionS: 3_600, maxWaitMs: 200 });
    cleanup.push(() => worker.close());
    dealsQueue = once.queue(QUEUES.deals);
    const dealWorker = startIndexedDealWorker(warehouse, prefix, { retentionS: 3_600, maxWaitMs: 200 });
    cleanup.push(() => dealWorker.close());
    app = await buildApi({
      producer: once,
      queues: [queue, dealsQueue],
      tokens: [TOKEN],
      board: { admin: ADMIN, viewer: { username: 'v', password: 'viewer-password-1' } },
    });
    cleanup.push(() => app.close());
  }, 60_000);

  afterEach(() => server.setFault({ mode: 'none' }));

  afterAll(async () => {
    for (const q of [queue, dealsQueue]) await q.obliterate({ force: true }).catch(() => undefined);
    for (const release of cleanup.reverse()) await release().catch(() => undefined);
  });

  const get = async <T>(url: string) => {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${TOKEN}` } });
    expect({ url, status: res.statusCode }).toEqual({ url, status: 200 });
    return res.json() as T;
  };
  const batchView = (id: string) => get<BatchBody>(`/v1/batches/${encodeURIComponent(id)}`);
  const jobsOfBatch = async (id: string) => (await get<{ jobs: FoundJobBody[] }>(`/v1/jobs?queue=embeddings&batch=${encodeURIComponent(id)}&limit=100`)).jobs;
  const jobById = async (id: string) => (await get<{ jobs: FoundJobBody[] }>(`/v1/jobs?queue=embeddings&id=${encodeURIComponent(id)}`)).jobs[0];
  /** The statements the warehouse ran for a batch (every attempt), oldest first. */
  const statementsOf = (batchId: string) =>
    server
      .queryHistory()
      .filter((e) => tagOf(e).batch === batchId)
      .reverse();
  const failedRowBatch = async (jobId: string, q = queue) => {
    const { logs } = await q.getJobLogs(jobId);
    const m = logs.map((l) => /^failed in batch (\S+) \(/.exec(l)).find(Boolean);
    return m?.[1];
  };
  const rootOf = (id: string) => {
    let root = id;
    for (let p = parentBatchId(root); p; p = parentBatchId(root)) root = p;
    return root;
  };

  it('a served batch records the query id of its statement: the one the warehouse reports, in QUERY_HISTORY too', async () => {
    const handles = await once.embed(['query id one', 'query id two', 'query id three']);
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    const batchId = results[0].batch!.batchId;
    const view = await batchView(batchId);
    expect(view).toMatchObject({ batchId, outcome: 'ok', error: null, queryId: expect.any(String) });
    // The warehouse ran one statement for the batch, under that id, and it succeeded.
    const statements = statementsOf(batchId);
    expect(statements.map((e) => [e.queryId, e.status])).toEqual([[view.queryId, 'SUCCESS']]);
    // Found by its tag over SQL, as an operator would (the local warehouse reads no `:batch` path), the same id.
    const rows = await warehouse.query<{ QUERY_ID: string; EXECUTION_STATUS: string }>(
      'SELECT QUERY_ID, EXECUTION_STATUS FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 10000)) WHERE QUERY_TAG LIKE ?',
      [`%"batch":"${batchId}"%`],
    );
    expect(rows).toEqual([{ QUERY_ID: view.queryId, EXECUTION_STATUS: 'SUCCESS' }]);
    // The pool's call event names it too.
    expect(calls.filter((c) => c.queryId === view.queryId).map((c) => [c.label, c.ok])).toEqual([['embed_texts', true]]);
    // The page shows it.
    const page = await app.inject({ method: 'GET', url: `${JOB_LOOKUP_PAGE}?batch=${encodeURIComponent(batchId)}`, headers: { authorization: basic } });
    expect(page.body).toContain(`<code id="batch-query-id">${view.queryId}</code>`);
  });

  it('a batch whose statement was retried records the attempt whose rows answered the jobs', async () => {
    // The first result chunk download fails for good (410): the statement ran, its rows never arrived; the
    // pool sends it again, and that attempt answers. Vectors are ~9 KB each: 120 of them are chunked.
    server.setFault({ mode: 'chunk-error', status: 410, times: 1 });
    const texts = Array.from({ length: 120 }, (_, i) => `retried statement ${i}: renewal pricing and the security review`);
    const results = await Promise.all((await once.embed(texts)).map((h) => h.result({ timeoutMs: 30_000 })));
    const batches = [...new Set(results.map((r) => r.batch!.batchId))];
    const retried = batches.filter((b) => statementsOf(b).length > 1);
    expect(retried).toHaveLength(1);
    const [first, second] = statementsOf(retried[0]);
    expect([tagOf(first).attempt, tagOf(second).attempt]).toEqual([undefined, 1]);
    const view = await batchView(retried[0]);
    expect(view).toMatchObject({ outcome: 'ok', queryId: second.queryId });
    expect(view.queryId).not.toBe(first.queryId);
    // Both attempts are in the pool's call events, each with its own statement.
    expect(calls.filter((c) => c.queryId === first.queryId).map((c) => [c.attempt, c.ok])).toEqual([[0, false]]);
    expect(calls.filter((c) => c.queryId === second.queryId).map((c) => [c.attempt, c.ok])).toEqual([[1, true]]);
  });

  it('a batch whose jobs all failed is found: outcome failed, its error, query id, timing and its jobs', async () => {
    server.setFault({ mode: 'poison', pattern: 'POISON-LOOKUP' });
    // Three distinct poisonous texts, one of them asked twice: the batch fails, is bisected, every half fails.
    const texts = ['POISON-LOOKUP one', 'POISON-LOOKUP one', 'POISON-LOOKUP two', 'POISON-LOOKUP three'];
    const handles = await once.embed(texts);
    const settled = await Promise.allSettled(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    const ids = handles.map((h) => h.id);

    // Each job's log names the batch that failed it; the identical texts shared one.
    const leaves = await Promise.all(ids.map((id) => failedRowBatch(id)));
    expect(leaves.every(Boolean)).toBe(true);
    expect(leaves[0]).toBe(leaves[1]);
    const root = rootOf(leaves[0]!);
    expect(leaves.map((l) => rootOf(l!))).toEqual([root, root, root, root]);

    // The batch they were sent in: failed, with the warehouse's error and its statement's query id.
    const view = await batchView(root);
    const [statement] = statementsOf(root);
    expect(statement.status).toBe('FAILED_WITH_ERROR');
    expect(view).toMatchObject({ batchId: root, outcome: 'failed', queryId: statement.queryId, size: 3, jobsServed: 4, total: 4, parent: null });
    expect(view.error).toMatch(/poison pattern 'POISON-LOOKUP'/);
    expect(view.durationMs).toEqual(expect.any(Number));
    expect(Date.parse(view.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(view.startedAt!));
    expect(view.jobs.map((j) => j.id).sort()).toEqual([...ids].sort());

    // The smallest batch that failed the two identical texts: its own statement, its two jobs, found by `batch=`.
    const leaf = await batchView(leaves[0]!);
    const [leafStatement] = statementsOf(leaves[0]!);
    expect(leaf).toMatchObject({ outcome: 'failed', queryId: leafStatement.queryId, size: 1, jobsServed: 2, parent: parentBatchId(leaves[0]!) });
    expect(leafStatement.status).toBe('FAILED_WITH_ERROR');
    const found = await jobsOfBatch(leaves[0]!);
    expect(found.map((j) => j.id).sort()).toEqual(ids.slice(0, 2).sort());
    for (const j of found) {
      expect(j).toMatchObject({ state: 'failed', batch: null, batches: [{ batchId: leaves[0], size: 1, outcome: 'failed' }] });
      expect(j.failedReason).toMatch(/POISON-LOOKUP/);
    }
    expect((await jobsOfBatch(root)).map((j) => j.id).sort()).toEqual([...ids].sort());

    // The page shows the failed batch with its jobs.
    const page = await app.inject({ method: 'GET', url: `${JOB_LOOKUP_PAGE}?batch=${encodeURIComponent(root)}`, headers: { authorization: basic } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('id="batch-outcome">failed<');
    expect(page.body).toContain(`<code id="batch-query-id">${statement.queryId}</code>`);
    for (const id of ids) expect(page.body).toContain(`data-job="${id}"`);
  });

  it('a job that failed in one batch and was served by another on its retry names both, and both find it', async () => {
    server.setFault({ mode: 'poison', pattern: 'POISON-RETRY' });
    const [handle] = await retrying.embed(['POISON-RETRY renewal is at risk']);
    // The first attempt fails; the warehouse accepts the text again before the retry (1 s later).
    let failedIn: string | undefined;
    for (const deadline = Date.now() + 20_000; !failedIn && Date.now() < deadline; ) {
      failedIn = await failedRowBatch(handle.id);
      if (!failedIn) await new Promise((r) => setTimeout(r, 20));
    }
    expect(failedIn).toEqual(expect.any(String));
    server.setFault({ mode: 'none' });
    const result = await handle.result({ timeoutMs: 30_000 });
    const servedBy = result.batch!.batchId;
    expect(servedBy).not.toBe(failedIn);

    const job = await jobById(handle.id);
    expect(job).toMatchObject({
      state: 'completed',
      batch: servedBy,
      batches: [
        { batchId: failedIn, size: 1, outcome: 'failed' },
        { batchId: servedBy, size: 1, outcome: 'served' },
      ],
    });
    expect((await jobsOfBatch(failedIn!)).map((j) => j.id)).toEqual([handle.id]);
    expect((await jobsOfBatch(servedBy)).map((j) => j.id)).toEqual([handle.id]);
    const [failedStatement] = statementsOf(failedIn!);
    const [servedStatement] = statementsOf(servedBy);
    expect(await batchView(failedIn!)).toMatchObject({ outcome: 'failed', queryId: failedStatement.queryId, jobs: [{ id: handle.id }] });
    expect(await batchView(servedBy)).toMatchObject({ outcome: 'ok', queryId: servedStatement.queryId, jobs: [{ id: handle.id }] });
    // The page lists both batches of the job, the failed one marked.
    const page = await app.inject({ method: 'GET', url: `${JOB_LOOKUP_PAGE}?queue=embeddings&by=id&q=${handle.id}`, headers: { authorization: basic } });
    expect(page.body).toContain(`>${failedIn}</a> <span class="batch-failed">failed</span>`);
    expect(page.body).toContain(`>${servedBy}</a>`);
  });

  it('a deals job fails with the batch that failed one of its ids: that batch and the one it was split from find it', async () => {
    server.setFault({ mode: 'poison', pattern: 'POISON' });
    // One statement for both ids fails; bisected, D-1 is read alone and D-POISON-9 fails alone.
    const handle = await once.dealInsights(['D-1', 'D-POISON-9']);
    await expect(handle.result({ timeoutMs: 30_000 })).rejects.toThrow(/POISON/);
    const leaf = await failedRowBatch(handle.id, dealsQueue);
    expect(leaf).toMatch(/^deals-.+\.2$/);
    const root = parentBatchId(leaf!)!;
    const { logs } = await dealsQueue.getJobLogs(handle.id);
    expect(logs).toEqual([`failed in batch ${leaf} (1 ids) · ${JOB_LOOKUP_PAGE}?batch=${encodeURIComponent(leaf!)}`]);
    const [leafStatement] = statementsOf(leaf!);
    expect(await get<BatchBody>(`/v1/batches/${encodeURIComponent(leaf!)}?queue=deals`)).toMatchObject({
      outcome: 'failed',
      queryId: leafStatement.queryId,
      parent: root,
      jobs: [{ id: handle.id }],
    });
    expect(await get<BatchBody>(`/v1/batches/${encodeURIComponent(root)}?queue=deals`)).toMatchObject({
      outcome: 'failed',
      size: 2,
      jobs: [{ id: handle.id }],
    });
    const found = (await get<{ jobs: FoundJobBody[] }>(`/v1/jobs?queue=deals&batch=${encodeURIComponent(root)}`)).jobs;
    expect(found).toMatchObject([{ id: handle.id, state: 'failed', batch: null, batches: [{ batchId: leaf, outcome: 'failed' }] }]);
  });
});
