import type { LocalWarehouse } from 'local-snowflake';
import { CircuitBreaker, type WarehouseCallEvent, WarehousePool } from '../src/pool';
import { CircuitOpenError, WarehouseError, WarehouseTimeoutError } from '../src/warehouse/errors';
import { embedTexts } from '../src/warehouse/queries/embed-texts';
import { getDeals } from '../src/warehouse/queries/get-deals';
import { waitUntil } from './helpers/wait';
import { connectorFor, pooledClient, startTestWarehouse } from './helpers/warehouse';

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse();
});
afterAll(() => server.close());
afterEach(() => {
  server.setFault({ mode: 'none' });
  server.setLatency({ loginMs: 0, queryMs: 0 });
});

describe('warehouse pool over the real snowflake-sdk driver', () => {
  it('round-trips bound values and reports SQL errors as non-transient WarehouseErrors', async () => {
    const { pool, warehouse } = pooledClient(server);
    try {
      const rows = await warehouse.query('SELECT ? AS S, ? AS N, ? AS Z', ["héllo 'quoted'", 42, null]);
      expect(rows).toEqual([{ S: "héllo 'quoted'", N: 42, Z: null }]);
      const err = await warehouse.query('SELECT * FROM NO_SUCH_TABLE').catch((e) => e);
      expect(err).toBeInstanceOf(WarehouseError);
      expect(err.transient).toBe(false);
      expect(err.code).toBeTruthy();
    } finally {
      await pool.close();
    }
  });

  it('close() does not wait out a slow login: it abandons it after a second, and the late session is logged out', async () => {
    server.setLatency({ loginMs: 2_500 });
    // The server is shared by the file's tests: its counters are compared with what they were before.
    const loginsBefore = server.stats().logins;
    const pool = new WarehousePool({ connector: connectorFor(server), min: 1, max: 2 });
    // min 1: the pool starts a login at once; it is still in flight when the pool closes, and close() returns
    // before it completes (the login takes 2.5 s, the grace is 1 s).
    await pool.close();
    expect(server.stats().logins - loginsBefore).toBe(0);
    // The login completes after close() returned; the pool logs that session out instead of leaving it open.
    await waitUntil('the late login to complete', () => server.stats().logins > loginsBefore, { timeoutMs: 5_000 });
    await waitUntil('its session to be logged out', () => server.stats().activeSessions === 0, { timeoutMs: 5_000 });
  });

  it('refuses a wrong password with Snowflake code 390100, not retried', async () => {
    const err = await connectorFor(server, 'wrong')
      .open()
      .catch((e) => e);
    expect(err).toBeInstanceOf(WarehouseError);
    expect(err.code).toBe('390100');
    expect(err.transient).toBe(false);
  });

  it('reuses sessions: a busy pool logs in once per session and sends no heartbeat per query', async () => {
    const { pool, warehouse } = pooledClient(server, { max: 4 });
    server.resetStats();
    try {
      await Promise.all(Array.from({ length: 60 }, (_, i) => warehouse.query('SELECT ? AS I', [i])));
      expect(server.stats().logins).toBeLessThanOrEqual(4);
      expect(pool.stats().validations).toBe(0);
      expect(pool.stats().created).toBeLessThanOrEqual(4);
    } finally {
      await pool.close();
    }
  });

  it('replaces sessions the server forgot: validated on borrow after idling', async () => {
    const { pool, warehouse } = pooledClient(server, { max: 2, validateAfterIdleMs: 0 });
    const failed: unknown[] = [];
    try {
      await warehouse.query('SELECT 1 AS X');
      server.forgetSessions();
      const rows = await warehouse.query('SELECT 2 AS X');
      expect(rows).toEqual([{ X: 2 }]);
      expect(pool.stats().validationFailures).toBeGreaterThanOrEqual(1);
      expect(pool.stats().created).toBeGreaterThanOrEqual(2);
      expect(failed).toEqual([]);
    } finally {
      await pool.close();
    }
  });

  it('replaces sessions the server forgot: a recently used session fails once and the call is retried on a new one', async () => {
    const attempts: boolean[] = [];
    const { pool, warehouse } = pooledClient(server, { max: 1, validateAfterIdleMs: 60_000 }, { onCall: (e) => attempts.push(e.ok) });
    try {
      await warehouse.query('SELECT 1 AS X');
      server.forgetSessions();
      await expect(warehouse.query('SELECT 3 AS X')).resolves.toEqual([{ X: 3 }]);
      expect(attempts).toEqual([true, false, true]);
      expect(pool.stats().created).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('recycles sessions older than maxLifetimeMs', async () => {
    let now = Date.now();
    const { pool, warehouse } = pooledClient(server, { max: 1, maxLifetimeMs: 60_000, now: () => now });
    try {
      await warehouse.query('SELECT 1 AS X');
      now += 61_000;
      await warehouse.query('SELECT 1 AS X');
      expect(pool.stats().recycled).toBe(1);
      expect(pool.stats().created).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('gives every call its own deadline', async () => {
    const { pool, warehouse } = pooledClient(server, {}, { retries: 0 });
    try {
      server.setLatency({ queryMs: 3_000 });
      const t = Date.now();
      const err = await warehouse.query('SELECT 1 AS X', [], { timeoutMs: 300 }).catch((e) => e);
      expect(err).toBeInstanceOf(WarehouseTimeoutError);
      expect(Date.now() - t).toBeLessThan(2_500);
    } finally {
      server.setLatency({ queryMs: 0 });
      await pool.close();
    }
  });

  it('opens the circuit after repeated transient failures and fails fast while it is open', async () => {
    const breaker = new CircuitBreaker({ threshold: 2, resetMs: 60_000 });
    const { pool, warehouse } = pooledClient(server, { max: 1 }, { retries: 0, breaker, timeoutMs: 300 });
    try {
      server.setLatency({ queryMs: 2_000 });
      await expect(warehouse.query('SELECT 1 AS X')).rejects.toBeInstanceOf(WarehouseTimeoutError);
      await expect(warehouse.query('SELECT 1 AS X')).rejects.toBeInstanceOf(WarehouseTimeoutError);
      server.setLatency({ queryMs: 0 });
      const before = server.stats().queries;
      await expect(warehouse.query('SELECT 1 AS X')).rejects.toBeInstanceOf(CircuitOpenError);
      expect(server.stats().queries).toBe(before);
      expect(breaker.state).toBe('open');
    } finally {
      await pool.close();
    }
  });

  it("names each statement by Snowflake's query id: the call's onQueryId, every attempt's event, a failed statement's error", async () => {
    const events: WarehouseCallEvent[] = [];
    const { pool, warehouse } = pooledClient(server, {}, { onCall: (e) => events.push(e) });
    try {
      const told: string[] = [];
      const tag = { queue: 'embeddings', batchId: 'emb-qid-1', jobs: 1 };
      expect(await warehouse.query('SELECT ? AS S', ['named'], { tag, onQueryId: (id) => told.push(id) })).toEqual([{ S: 'named' }]);
      const [ran] = server.queryHistory({ limit: 1 });
      expect(ran).toMatchObject({ status: 'SUCCESS', queryText: expect.stringContaining('SELECT') });
      expect(told).toEqual([ran.queryId]);
      expect(events.at(-1)).toMatchObject({ ok: true, attempt: 0, queryId: ran.queryId });

      const err = await warehouse.query('SELECT * FROM NO_SUCH_TABLE', [], { onQueryId: (id) => told.push(id) }).catch((e: unknown) => e);
      const [failed] = server.queryHistory({ limit: 1 });
      expect(failed.status).toBe('FAILED_WITH_ERROR');
      expect(err).toBeInstanceOf(WarehouseError);
      expect((err as WarehouseError).queryId).toBe(failed.queryId);
      expect(events.at(-1)).toMatchObject({ ok: false, queryId: failed.queryId });
      expect(told).toEqual([ran.queryId]); // only a call that answered names its statement there
    } finally {
      await pool.close();
    }
  });

  it('rejects bad pool options with the option name', () => {
    expect(() => pooledClient(server, { min: 5, max: 2 })).toThrow(/min/);
    expect(() => pooledClient(server, { acquireTimeoutMs: 0 })).toThrow(/acquireTimeoutMs/);
  });
});

describe('queries', () => {
  it('embeds a batch of 500 texts in one statement, every text bound', async () => {
    const { pool, warehouse } = pooledClient(server);
    try {
      server.resetStats();
      const texts = Array.from({ length: 500 }, (_, i) => `call note ${i} about pricing and renewal`);
      const vectors = await embedTexts(warehouse, texts, 'e5-base-v2');
      expect(vectors).toHaveLength(500);
      expect(vectors.every((v) => v.length === 768)).toBe(true);
      expect(server.stats().queries).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('embeds hostile texts as text and leaves the tables intact', async () => {
    const { pool, warehouse } = pooledClient(server);
    try {
      const count = async () => Number((await warehouse.query<{ N: unknown }>('SELECT COUNT(*) AS N FROM DEALS'))[0].N);
      const before = await count();
      const hostile = [
        "'); DROP TABLE deals; --",
        '$$ DROP TABLE DEALS $$',
        "\\'; DELETE FROM DEALS; --",
        '?, ?); --',
        ':1 :2',
        'مرحبا \u202Eevil\u202C',
        '🔥 emoji 🚀',
      ];
      const vectors = await embedTexts(warehouse, hostile, 'e5-base-v2');
      expect(vectors).toHaveLength(hostile.length);
      const again = await embedTexts(warehouse, [hostile[0]], 'e5-base-v2');
      expect(Array.from(again[0])).toEqual(Array.from(vectors[0]));
      expect(await count()).toBe(before);
    } finally {
      await pool.close();
    }
  });

  it('reads many deals with one IN (...) statement and leaves unknown ids out', async () => {
    const { pool, warehouse } = pooledClient(server);
    try {
      server.resetStats();
      const deals = await getDeals(warehouse, ['D-1', 'D-2', 'D-404404', "D-1' OR '1'='1"]);
      expect([...deals.keys()].sort()).toEqual(['D-1', 'D-2']);
      expect(server.stats().queries).toBe(1);
      expect(deals.get('D-1')).toMatchObject({ ID: 'D-1', STAGE: expect.any(String) });
    } finally {
      await pool.close();
    }
  });
});
