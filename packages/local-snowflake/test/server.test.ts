import { randomUUID } from 'node:crypto';
import type snowflake from 'snowflake-sdk';
import { type LocalWarehouse, startLocalWarehouse } from '../src';
import { SUMMARY_MAX_CHARS, sentimentScore, summarizeText } from '../src/cortex-stand-ins';
import { embedText } from '../src/embedder';
import { rewriteSql } from '../src/sql-rewrite';
import { connect as connectTo, destroy, failure, httpLogin, type Row } from './helpers/driver';
import { waitUntil } from './helpers/wait';

const connect = (wh: LocalWarehouse, password = 'fleet') => connectTo(wh.url, { password });

type Bind = string | number | boolean | null | Date;

function exec(conn: snowflake.Connection, sqlText: string, binds?: Bind[] | Bind[][], extra: Record<string, unknown> = {}): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    conn.execute({
      sqlText,
      binds: binds as never,
      ...extra,
      complete: (err, _stmt, rows) => (err ? reject(err) : resolve((rows ?? []) as Row[])),
    });
  });
}

function httpQuery(wh: LocalWarehouse, token: string, requestId: string, sqlText: string, bindings?: object): Promise<Response> {
  return fetch(`${wh.url}/queries/v1/query-request?requestId=${requestId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${token}"` },
    body: JSON.stringify({ sqlText, bindings }),
  });
}

/** An embed statement as a batching client sends it (warehouse-fleet's embed-texts query): one bound batch. */
function embedStatement(texts: readonly string[]): { sql: string; binds: Bind[] } {
  const binds: Bind[] = ['e5-base-v2'];
  texts.forEach((t, i) => binds.push(i, t));
  const sql = `SELECT t.I AS I, SNOWFLAKE.CORTEX.EMBED_TEXT_768(?, t.TXT) AS V FROM (VALUES ${texts.map(() => '(?, ?)').join(', ')}) AS t(I, TXT)`;
  return { sql, binds };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('local warehouse over the real snowflake-sdk driver (small dataset)', () => {
  let wh: LocalWarehouse;
  let conn: snowflake.Connection;

  beforeAll(async () => {
    wh = await startLocalWarehouse({ deals: 200, loginLatencyMs: 0, anchorDate: '2025-06-30' });
    conn = await connect(wh);
  });

  afterAll(async () => {
    await destroy(conn);
    await wh.close();
  });

  it('round-trips text, numbers, null and dates through binds', async () => {
    const when = new Date('2024-01-02T03:04:05.678Z');
    const [row] = await exec(conn, 'SELECT ? AS T, ? AS N, ? AS R, ? AS Z, ?::TIMESTAMP AS TS, ?::DATE AS D, ? AS B', [
      'héllo wörld',
      42,
      1.5,
      null,
      when,
      '2024-03-04',
      true,
    ]);
    expect(row.T).toBe('héllo wörld');
    expect(row.N).toBe(42);
    expect(row.R).toBe(1.5);
    expect(row.Z).toBeNull();
    expect(row.TS).toBeInstanceOf(Date);
    expect((row.TS as Date).getTime()).toBe(when.getTime());
    expect((row.D as Date).toISOString().slice(0, 10)).toBe('2024-03-04');
    expect(row.B).toBe(true);
  });

  it('reads deals with WHERE ID IN (?, ?, …) and reports upper-case column names', async () => {
    const rows = await exec(conn, 'select id, name, amount, stage, close_date from deals where id in (?, ?, ?) order by id', ['D-1', 'D-2', 'D-999999']);
    expect(rows.map((r) => r.ID)).toEqual(['D-1', 'D-2']);
    expect(Object.keys(rows[0])).toEqual(['ID', 'NAME', 'AMOUNT', 'STAGE', 'CLOSE_DATE']);
    expect(typeof rows[0].AMOUNT).toBe('number');
    expect(rows[0].CLOSE_DATE).toBeInstanceOf(Date);
    const [quoted] = await exec(conn, 'SELECT 1 AS "lowerCase", 2 AS plain');
    expect(quoted).toEqual({ lowerCase: 1, PLAIN: 2 });
  });

  it('accepts :N placeholders and leaves ? inside strings and comments alone', async () => {
    const [row] = await exec(conn, "SELECT '?' AS Q, :2 AS SECOND, :1 AS FIRST, 'it''s' AS S /* ? */ -- ?", ['a', 'b']);
    expect(row).toEqual({ Q: '?', SECOND: 'b', FIRST: 'a', S: "it's" });
  });

  it('refuses a wrong password with Snowflake code 390100', async () => {
    const before = wh.stats().failedLogins;
    const err = await failure(connect(wh, 'not-the-password'));
    expect(String(err.code)).toBe('390100');
    expect(err.message).toBe('Incorrect username or password was specified.');
    expect(wh.stats().failedLogins).toBe(before + 1);
  });

  it('returns SQL errors with code, sqlState and query id (never a 5xx)', async () => {
    const missing = await failure(exec(conn, 'SELECT * FROM NO_SUCH_TABLE'));
    expect(String(missing.code)).toBe('002003');
    expect(missing.sqlState).toBe('42S02');
    expect(missing.message).toMatch(/Object 'NO_SUCH_TABLE' does not exist/);
    expect(missing.data?.queryId).toMatch(/^[0-9a-f-]{36}$/);

    const syntax = await failure(exec(conn, 'SELEC 1'));
    expect(String(syntax.code)).toBe('001003');
    expect(syntax.sqlState).toBe('42000');

    const column = await failure(exec(conn, 'SELECT NO_SUCH_COLUMN FROM DEALS'));
    expect(String(column.code)).toBe('000904');
    expect(column.message).toMatch(/invalid identifier 'NO_SUCH_COLUMN'/);

    const several = await failure(exec(conn, 'SELECT 1; SELECT 2'));
    expect(String(several.code)).toBe('000008');
  });

  it('inserts many rows with one batch-bound (array-bound) statement', async () => {
    await exec(conn, 'CREATE TABLE BATCH_T (ID INTEGER, NAME VARCHAR, SCORE DOUBLE)');
    const rows: Bind[][] = Array.from({ length: 1000 }, (_, i) => [i, `name-${i}`, i % 3 === 0 ? null : i / 2]);
    const before = wh.stats().queries;
    const result = await exec(conn, 'INSERT INTO BATCH_T (ID, NAME, SCORE) VALUES (?, ?, ?)', rows);
    expect(result).toEqual([{ 'number of rows inserted': 1000 }]);
    expect(wh.stats().queries).toBe(before + 1);
    const [agg] = await exec(conn, 'SELECT count(*) AS N, count(SCORE) AS WITH_SCORE, max(NAME) AS MX FROM BATCH_T');
    expect(agg).toEqual({ N: 1000, WITH_SCORE: 666, MX: 'name-999' });
  });

  it('rolls back the whole batch when one row fails', async () => {
    await exec(conn, 'CREATE TABLE BATCH_STRICT (ID INTEGER NOT NULL)');
    const err = await failure(exec(conn, 'INSERT INTO BATCH_STRICT VALUES (?)', [[1], [2], [null]]));
    expect(String(err.code)).toBe('100072');
    expect(await exec(conn, 'SELECT count(*) AS N FROM BATCH_STRICT')).toEqual([{ N: 0 }]);
  });

  it('replays a retried query-request by requestId instead of inserting twice', async () => {
    await exec(conn, 'CREATE TABLE REPLAY_T (V VARCHAR)');
    const { token } = await httpLogin(wh.url);
    const requestId = randomUUID();
    const bindings = { '1': { type: 'TEXT', value: 'once' } };
    const before = wh.stats();
    const first = await (await httpQuery(wh, token, requestId, 'INSERT INTO REPLAY_T VALUES (?)', bindings)).text();
    const second = await (await httpQuery(wh, token, requestId, 'INSERT INTO REPLAY_T VALUES (?)', bindings)).text();
    const after = wh.stats();
    expect(second).toBe(first);
    expect(JSON.parse(first).success).toBe(true);
    expect(after.replayedRequests - before.replayedRequests).toBe(1);
    expect(after.queries - before.queries).toBe(1);
    expect(await exec(conn, 'SELECT count(*) AS N FROM REPLAY_T')).toEqual([{ N: 1 }]);

    // The driver resubmits with the same requestId too; a different id executes again.
    const driverRequestId = randomUUID();
    await exec(conn, 'INSERT INTO REPLAY_T VALUES (?)', ['driver'], { requestId: driverRequestId });
    await exec(conn, 'INSERT INTO REPLAY_T VALUES (?)', ['driver'], { requestId: driverRequestId });
    expect(await exec(conn, "SELECT count(*) AS N FROM REPLAY_T WHERE V = 'driver'")).toEqual([{ N: 1 }]);
  });

  it('answers GET /queries/<id>/result with the stored result', async () => {
    const { token } = await httpLogin(wh.url);
    const reply = (await (await httpQuery(wh, token, randomUUID(), "SELECT 'kept' AS K")).json()) as { data: { queryId: string } };
    const res = await fetch(`${wh.url}/queries/${reply.data.queryId}/result`, { headers: { authorization: `Snowflake Token="${token}"` } });
    const body = (await res.json()) as { success: boolean; data: { rowset: string[][]; returned: number } };
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(body.success).toBe(true);
    expect(body.data.rowset).toEqual([['kept']]);
    expect(body.data.returned).toBe(1);
  });

  it('describes a statement without running it (describeOnly)', async () => {
    await exec(conn, 'CREATE TABLE DESCRIBE_T (V INTEGER)');
    const { token } = await httpLogin(wh.url);
    const res = await fetch(`${wh.url}/queries/v1/query-request?requestId=${randomUUID()}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${token}"` },
      body: JSON.stringify({ sqlText: 'SELECT ID, AMOUNT FROM DEALS WHERE ID = ?', describeOnly: true }),
    });
    const body = (await res.json()) as { data: { rowtype: Array<{ name: string; type: string; scale: number }>; rowset: unknown[] } };
    expect(body.data.rowtype.map((c) => [c.name, c.type, c.scale])).toEqual([
      ['ID', 'text', null],
      ['AMOUNT', 'fixed', 2],
    ]);
    expect(body.data.rowset).toEqual([]);

    await fetch(`${wh.url}/queries/v1/query-request?requestId=${randomUUID()}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${token}"` },
      body: JSON.stringify({ sqlText: 'INSERT INTO DESCRIBE_T VALUES (1)', describeOnly: true }),
    });
    expect(await exec(conn, 'SELECT count(*) AS N FROM DESCRIBE_T')).toEqual([{ N: 0 }]);
  });

  it('forgetSessions() makes the next call fail and the connection unusable, so it must be replaced', async () => {
    const doomed = await connect(wh);
    expect(await exec(doomed, 'SELECT 1 AS ONE')).toEqual([{ ONE: 1 }]);
    wh.forgetSessions();
    expect(wh.stats().activeSessions).toBe(0);
    const err = await failure(exec(doomed, 'SELECT 1 AS ONE'));
    // Snowflake answers 390111 (session gone); the driver then marks the connection terminated and
    // fails the call with its own 407002.
    expect(String(err.code)).toBe('407002');
    expect(doomed.isUp()).toBe(false);
    expect(await doomed.isValidAsync()).toBe(false);

    conn = await connect(wh); // the suite's shared connection was forgotten as well
    expect(await exec(conn, 'SELECT 1 AS ONE')).toEqual([{ ONE: 1 }]);
  });

  it('embeds a batch of 500 bound texts in one query, as 768-d vector strings', async () => {
    const texts = Array.from({ length: 500 }, (_, i) => `Deal ${i}: customer raised concerns about pricing and the renewal timeline`);
    const { sql, binds } = embedStatement(texts);
    await exec(conn, sql, binds); // warm-up (JIT, DuckDB plan caches)
    wh.resetStats();
    const started = performance.now();
    const rows = await exec(conn, sql, binds);
    const elapsed = performance.now() - started;
    const stats = wh.stats();
    expect(stats.queries).toBe(1);
    expect(stats.queriesByKind.embed).toBe(1);
    expect(stats.embeddedTexts).toBe(500);
    expect(rows).toHaveLength(500);
    for (const row of rows) {
      // Like real Snowflake VECTOR(FLOAT, 768) through snowflake-sdk 3.x: a raw "[…]" string.
      expect(typeof row.V).toBe('string');
      const v = JSON.parse(row.V as string) as number[];
      expect(v).toHaveLength(768);
      expect(maxAbsDiff(v, embedText(texts[Number(row.I)]))).toBeLessThan(1e-6);
    }
    // Speed is measured by `fleet bench coalesce`, not asserted here (shared machines are noisy).
    void elapsed;
  });

  it('treats hostile texts as data: embedded as text, stored byte for byte, tables intact', async () => {
    const hostile = [
      "'); DROP TABLE deals; --",
      '$$ SELECT 1 $$',
      "\\'; DELETE FROM DEALS; --",
      'nul\u0000byte',
      'emoji 🎉🔥 and ZWJ 👩‍💻',
      'rtl \u200f\u202eevil\u202c mark',
      '" OR 1=1 --',
      ':1 ? :2 ?',
      '',
    ];
    const [{ N: dealsBefore }] = await exec(conn, 'SELECT count(*) AS N FROM DEALS');
    const { sql, binds } = embedStatement(hostile);
    const rows = await exec(conn, sql, binds);
    expect(rows).toHaveLength(hostile.length);
    for (const row of rows) {
      expect(maxAbsDiff(JSON.parse(row.V as string), embedText(hostile[Number(row.I)]))).toBeLessThan(1e-6);
    }

    await exec(conn, 'CREATE TABLE HOSTILE_T (I INTEGER, T VARCHAR)');
    await exec(
      conn,
      'INSERT INTO HOSTILE_T VALUES (?, ?)',
      hostile.map((t, i) => [i, t]),
    );
    const back = await exec(conn, 'SELECT I, T FROM HOSTILE_T ORDER BY I');
    expect(back.map((r) => r.T)).toEqual(hostile);
    expect(await exec(conn, 'SELECT count(*) AS N FROM DEALS')).toEqual([{ N: dealsBefore }]);
  });

  it('offers SENTIMENT and SUMMARIZE stand-ins and Snowflake vector functions', async () => {
    const [row] = await exec(
      conn,
      'SELECT SNOWFLAKE.CORTEX.SENTIMENT(?) AS POS, SNOWFLAKE.CORTEX.SENTIMENT(?) AS NEG, SNOWFLAKE.CORTEX.SUMMARIZE(?) AS SUMMARY, ' +
        "VECTOR_COSINE_SIMILARITY(SNOWFLAKE.CORTEX.EMBED_TEXT_768('e5-base-v2', ?), SNOWFLAKE.CORTEX.EMBED_TEXT_768('e5-base-v2', ?)) AS SIM, " +
        "'[1,0]'::VECTOR(FLOAT, 2) AS V",
      [
        'They are really excited and the budget is approved.',
        'They are frustrated by delays and mention churn risk.',
        'First sentence. Second one.',
        'renewal pricing',
        'pricing of the renewal',
      ],
    );
    expect(row.POS as number).toBeGreaterThan(0.3);
    expect(row.NEG as number).toBeLessThan(-0.3);
    expect(row.SUMMARY).toBe('First sentence. Second one.');
    expect(row.SIM as number).toBeGreaterThan(0.5);
    expect(row.V).toBe('[1.0,0.0]');
  });

  it('runs everyday Snowflake SQL: DATEADD with a bare date part, CURRENT_TIMESTAMP(), IFF, NVL', async () => {
    const [row] = await exec(
      conn,
      'SELECT count(*) AS N, count(IFF(LAST_ACTIVITY_AT < DATEADD(day, -30, ?::TIMESTAMP), 1, NULL)) AS STALE, ' +
        "NVL(NULL, 'x') AS X, DATEDIFF(day, DATE '2024-01-01', DATE '2024-01-31') AS D, CURRENT_TIMESTAMP() <= CURRENT_TIMESTAMP() AS NOW_OK " +
        'FROM DEALS',
      ['2025-06-30T00:00:00.000Z'],
    );
    expect(row.N).toBe(200);
    expect(row.STALE as number).toBeGreaterThan(0);
    expect(row.STALE as number).toBeLessThan(200);
    expect(row).toMatchObject({ X: 'x', D: 30, NOW_OK: true });
  });

  it('rejects an unknown embedding model like Snowflake does', async () => {
    const err = await failure(exec(conn, "SELECT SNOWFLAKE.CORTEX.EMBED_TEXT_768('no-such-model', 'x') AS V"));
    expect(err.message).toMatch(/unknown model 'no-such-model'/);
  });

  it('supports explicit transactions pinned to the session', async () => {
    await exec(conn, 'CREATE TABLE TX_T (V INTEGER)');
    await exec(conn, 'BEGIN');
    await exec(conn, 'INSERT INTO TX_T VALUES (1)');
    await exec(conn, 'ROLLBACK');
    await exec(conn, 'BEGIN TRANSACTION');
    await exec(conn, 'INSERT INTO TX_T VALUES (2)');
    await exec(conn, 'COMMIT');
    expect(await exec(conn, 'SELECT V FROM TX_T')).toEqual([{ V: 2 }]);
    expect(await exec(conn, "ALTER SESSION SET QUERY_TAG = 'fleet'")).toEqual([{ status: 'Statement executed successfully.' }]);
  });

  it('answers heartbeats, renews tokens and ends sessions on logout', async () => {
    const extra = await connect(wh);
    const before = wh.stats();
    expect(await extra.isValidAsync()).toBe(true);
    expect(wh.stats().heartbeats).toBe(before.heartbeats + 1);
    await destroy(extra);
    expect(wh.stats().activeSessions).toBe(before.activeSessions - 1);

    const { token, masterToken } = await httpLogin(wh.url);
    const renewed = (await (
      await fetch(`${wh.url}/session/token-request`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${masterToken}"` },
        body: JSON.stringify({ requestType: 'RENEW', oldSessionToken: token }),
      })
    ).json()) as { success: boolean; data: { sessionToken: string } };
    expect(renewed.success).toBe(true);
    const ok = (await (await httpQuery(wh, renewed.data.sessionToken, randomUUID(), 'SELECT 1')).json()) as { success: boolean };
    expect(ok.success).toBe(true);
    const stale = (await (await httpQuery(wh, token, randomUUID(), 'SELECT 1')).json()) as { success: boolean; code: string };
    expect(stale).toMatchObject({ success: false, code: '390111' });
  });

  it('overlaps the simulated query latency of concurrent queries', async () => {
    wh.setLatency({ queryMs: 300 });
    try {
      const started = performance.now();
      await Promise.all(Array.from({ length: 6 }, (_, i) => exec(conn, 'SELECT ? AS I', [i])));
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(6 * 300);
    } finally {
      wh.setLatency({ queryMs: 0 });
    }
  });

  it('cancels a running statement through the driver', async () => {
    wh.setLatency({ queryMs: 5000 });
    try {
      const started = performance.now();
      let statement: snowflake.RowStatement | undefined;
      const result = new Promise<Row[]>((resolve, reject) => {
        statement = conn.execute({ sqlText: 'SELECT 1 AS ONE', complete: (err, _s, rows) => (err ? reject(err) : resolve(rows as Row[])) });
      });
      await waitUntil('the statement to be running', () => wh.queryHistory({ status: 'RUNNING' }).some((e) => e.queryText === 'SELECT 1 AS ONE'));
      await new Promise<void>((resolve, reject) => statement!.cancel((err) => (err ? reject(err) : resolve())));
      const err = await failure(result);
      expect(String(err.code)).toBe('000604');
      expect(performance.now() - started).toBeLessThan(4000);
    } finally {
      wh.setLatency({ queryMs: 0 });
    }
  });

  it('injects faults: error, slow and down', async () => {
    wh.setFault({ mode: 'error' });
    try {
      const err = await failure(exec(conn, 'SELECT 1'));
      expect(String(err.code)).toBe('000603');
      expect(err.sqlState).toBe('XX000');
    } finally {
      wh.setFault({ mode: 'none' });
    }
    expect(await exec(conn, 'SELECT 1 AS ONE')).toEqual([{ ONE: 1 }]);

    wh.setFault({ mode: 'slow', slowMs: 250 });
    try {
      const started = performance.now();
      await exec(conn, 'SELECT 1');
      expect(performance.now() - started).toBeGreaterThanOrEqual(240);
    } finally {
      wh.setFault({ mode: 'none' });
    }

    wh.setFault({ mode: 'down' });
    try {
      const { token } = { token: 'irrelevant' };
      await expect(httpQuery(wh, token, randomUUID(), 'SELECT 1')).rejects.toThrow();
      const stats = await fetch(`${wh.url}/fleet/stats`);
      expect(stats.status).toBe(200); // the control endpoints stay up
    } finally {
      wh.setFault({ mode: 'none' });
    }
    expect(() => wh.setFault({ mode: 'sideways' as never })).toThrow(/fault.mode/);
    expect(() => wh.setFault({ mode: 'poison' })).toThrow(/fault.pattern/);
    expect(() => wh.setFault({ mode: 'error', sqlPattern: '(' })).toThrow(/fault.sqlPattern/);
  });

  it('targets faults: errors only for matching SQL, poison only for statements binding the pattern', async () => {
    wh.setFault({ mode: 'error', sqlPattern: 'FROM\\s+SLACK_MESSAGES' });
    try {
      const err = await failure(exec(conn, 'SELECT count(*) AS N FROM\n  SLACK_MESSAGES'));
      expect(String(err.code)).toBe('000603');
      expect(await exec(conn, 'SELECT count(*) AS N FROM DEALS')).toEqual([{ N: 200 }]);
    } finally {
      wh.setFault({ mode: 'none' });
    }

    wh.setFault({ mode: 'poison', pattern: 'POISON-PILL' });
    try {
      const texts = ['fine', 'a POISON-PILL here', 'also fine'];
      const { sql, binds } = embedStatement(texts);
      const err = await failure(exec(conn, sql, binds));
      expect(String(err.code)).toBe('100132');
      expect(err.sqlState).toBe('22000');
      const ok = embedStatement(['fine', 'also fine']);
      expect(await exec(conn, ok.sql, ok.binds)).toHaveLength(2);
      // Array binds are searched too.
      await exec(conn, 'CREATE TABLE POISON_T (T VARCHAR)');
      expect(String((await failure(exec(conn, 'INSERT INTO POISON_T VALUES (?)', [['x'], ['POISON-PILL']]))).code)).toBe('100132');
    } finally {
      wh.setFault({ mode: 'none' });
    }
  });

  it('serves stats as JSON at /fleet/stats and resets them at /fleet/reset-stats', async () => {
    await exec(conn, 'SELECT 1');
    const stats = (await (await fetch(`${wh.url}/fleet/stats`)).json()) as { queries: number; activeSessions: number };
    expect(stats.queries).toBeGreaterThan(0);
    expect(stats.activeSessions).toBeGreaterThan(0);
    expect((await fetch(`${wh.url}/fleet/reset-stats`, { method: 'POST' })).status).toBe(200);
    expect(wh.stats().queries).toBe(0);
  });
});

describe('local warehouse lifecycle and options', () => {
  it('rejects bad options with an error naming the option', async () => {
    await expect(startLocalWarehouse({ port: -1 })).rejects.toThrow(/`port`.*-1/);
    await expect(startLocalWarehouse({ deals: 1.5 })).rejects.toThrow(/`deals`/);
    await expect(startLocalWarehouse({ loginLatencyMs: -5 })).rejects.toThrow(/`loginLatencyMs`/);
    await expect(startLocalWarehouse({ user: '' })).rejects.toThrow(/`user`/);
    await expect(startLocalWarehouse({ logger: {} as never })).rejects.toThrow(/`logger`/);
    await expect(startLocalWarehouse({ anchorDate: 'not a date' })).rejects.toThrow(/`anchorDate`/);
  });

  it('shifts times with anchorDate but keeps texts, ids and amounts', async () => {
    const a = await startLocalWarehouse({ deals: 3, loginLatencyMs: 0, anchorDate: '2025-01-01' });
    const b = await startLocalWarehouse({ deals: 3, loginLatencyMs: 0, anchorDate: new Date('2025-01-11T15:00:00Z') });
    const conns = await Promise.all([connect(a), connect(b)]);
    try {
      const sql = 'SELECT ID, NOTES, AMOUNT, CREATED_AT FROM DEALS ORDER BY ID';
      const [ra, rb] = await Promise.all(conns.map((c) => exec(c, sql)));
      expect(rb.map((r) => [r.ID, r.NOTES, r.AMOUNT])).toEqual(ra.map((r) => [r.ID, r.NOTES, r.AMOUNT]));
      ra.forEach((r, i) => expect((rb[i].CREATED_AT as Date).getTime() - (r.CREATED_AT as Date).getTime()).toBe(10 * 86_400_000));
      expect(b.dataset.anchorDate).toBe('2025-01-11');
    } finally {
      await Promise.all(conns.map(destroy));
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('closes idempotently and refuses connections afterwards', async () => {
    const wh = await startLocalWarehouse({ deals: 0, loginLatencyMs: 0 });
    expect(() => wh.setLatency({ queryMs: -1 })).toThrow(/`queryMs`/);
    await Promise.all([wh.close(), wh.close()]);
    await wh.close();
    await expect(fetch(`${wh.url}/fleet/stats`)).rejects.toThrow();
  });
});

describe('local warehouse default dataset', () => {
  it('generates at least 10,000 deals and 50,000 texts, deterministically from the seed', async () => {
    const anchorDate = new Date().toISOString().slice(0, 10); // the default, pinned so all three agree
    const started = performance.now();
    const wh = await startLocalWarehouse({ loginLatencyMs: 0 });
    const startupMs = performance.now() - started;
    const small = await startLocalWarehouse({ deals: 5, loginLatencyMs: 0, anchorDate });
    const other = await startLocalWarehouse({ deals: 5, seed: 7, loginLatencyMs: 0, anchorDate });
    const conns: snowflake.Connection[] = [];
    try {
      const [full, few, different] = await Promise.all([connect(wh), connect(small), connect(other)]);
      conns.push(full, few, different);
      const [counts] = await exec(
        full,
        'SELECT (SELECT count(*) FROM DEALS) AS DEALS, (SELECT count(*) FROM GONG_CALLS) AS CALLS, ' +
          '(SELECT count(*) FROM SLACK_MESSAGES) AS SLACK, (SELECT count(*) FROM LINEAR_ISSUES) AS ISSUES, ' +
          "(SELECT count(*) FROM DEALS WHERE ID = 'D-10000') AS LAST_DEAL",
      );
      expect(counts.DEALS).toBe(10_000);
      expect(counts.LAST_DEAL).toBe(1);
      const texts = (counts.DEALS as number) + (counts.CALLS as number) + (counts.SLACK as number) + (counts.ISSUES as number);
      expect(texts).toBeGreaterThanOrEqual(60_000);
      expect((counts.CALLS as number) + (counts.SLACK as number) + (counts.ISSUES as number)).toBeGreaterThanOrEqual(50_000);
      expect(wh.dataset.deals).toBe(10_000);
      expect(wh.dataset.anchorDate).toBe(anchorDate);
      // The timeline ends at the anchor: history before it, open deals closing after it.
      const [span] = await exec(full, 'SELECT max(LAST_ACTIVITY_AT) <= ?::TIMESTAMP AS HISTORY_BEFORE, max(CLOSE_DATE) > ?::DATE AS OPEN_AFTER FROM DEALS', [
        anchorDate,
        anchorDate,
      ]);
      expect(span).toEqual({ HISTORY_BEFORE: true, OPEN_AFTER: true });

      // Same seed → same first deals whatever the size; another seed → other deals.
      const firstDeals = 'SELECT ID, NAME, NOTES, AMOUNT, CREATED_AT FROM DEALS WHERE ID IN (?, ?, ?) ORDER BY ID';
      const ids = ['D-1', 'D-2', 'D-3'];
      expect(await exec(full, firstDeals, ids)).toEqual(await exec(few, firstDeals, ids));
      expect((await exec(different, firstDeals, ids)).map((r) => r.NOTES)).not.toEqual((await exec(few, firstDeals, ids)).map((r) => r.NOTES));

      // Sentiment follows deal health: closed-lost deals' calls read more negative than closed-won ones.
      const [mood] = await exec(
        full,
        "SELECT avg(CASE WHEN d.STAGE = 'Closed Won' THEN SNOWFLAKE.CORTEX.SENTIMENT(g.TRANSCRIPT) END) AS WON, " +
          "avg(CASE WHEN d.STAGE = 'Closed Lost' THEN SNOWFLAKE.CORTEX.SENTIMENT(g.TRANSCRIPT) END) AS LOST " +
          'FROM GONG_CALLS g JOIN DEALS d ON d.ID = g.DEAL_ID WHERE d.ID IN (SELECT ID FROM DEALS LIMIT 500)',
      );
      expect(mood.WON as number).toBeGreaterThan(mood.LOST as number);
      expect(startupMs).toBeLessThan(15_000); // ~2 s on an idle machine
    } finally {
      await Promise.all(conns.map(destroy));
      await Promise.all([wh.close(), small.close(), other.close()]);
    }
  });
});

describe('SQL rewriting for DuckDB', () => {
  it('numbers ? and :N placeholders outside strings, identifiers, comments and casts', () => {
    const r = rewriteSql(`SELECT ?, '?', "a?", x::INT, :2 -- ?\n/* ? */ FROM t WHERE $$?$$ = ?`);
    // (dialect translation: unaliased expressions get Snowflake's column name, INT is BIGINT; test/dialect.test.ts)
    expect(r.sql).toBe(`SELECT $1, '?', "a?", x::BIGINT AS "X::INT", $2 -- ?\n/* ? */ FROM t WHERE $$?$$ = $2`);
    expect(r.parameterCount).toBe(2);
    expect(r.statementCount).toBe(1);
  });

  it('rewrites VECTOR types, // comments and backslash escapes', () => {
    expect(rewriteSql('SELECT v::VECTOR(FLOAT, 768) AS v, w::vector(int,3) AS w // note').sql).toBe('SELECT v::FLOAT[768] AS v, w::INTEGER[3] AS w -- note');
    expect(rewriteSql("SELECT 'it\\'s'").sql).toBe("SELECT E'it\\'s'");
    expect(rewriteSql("SELECT DATEADD(Day, -30, x) a, DATEDIFF( month ,a,b) b, 'DATEADD(day,'").sql).toBe(
      "SELECT DATEADD('day', -30, x) a, DATEDIFF('month',a,b) b, 'DATEADD(day,'",
    );
  });

  it('counts statements and reads leading keywords', () => {
    expect(rewriteSql('SELECT 1; SELECT 2;').statementCount).toBe(2);
    expect(rewriteSql('  -- only a comment\n ; ').statementCount).toBe(0);
    expect(rewriteSql('alter session set query_tag = ?').leadingWords).toEqual(['ALTER', 'SESSION', 'SET']);
    expect(rewriteSql('(SELECT 1)').leadingWords[0]).toBe('SELECT');
  });
});

describe('Cortex stand-ins', () => {
  it('scores sentiment in [-1, 1] with negation', () => {
    expect(sentimentScore('great call, they love it')).toBeGreaterThan(0.5);
    expect(sentimentScore('not happy at all')).toBeLessThan(0);
    expect(sentimentScore('the meeting is on tuesday')).toBe(0);
    const extreme = sentimentScore('great '.repeat(200));
    expect(extreme).toBeLessThanOrEqual(1);
  });

  it('summarises to the leading sentences within the length bound', () => {
    expect(summarizeText('Short text.')).toBe('Short text.');
    const long = `${'First sentence is here. '.repeat(5)}${'word '.repeat(200)}`;
    expect(summarizeText(long).length).toBeLessThanOrEqual(SUMMARY_MAX_CHARS);
    expect(summarizeText(long)).toMatch(/^First sentence is here\./);
    expect(summarizeText('x'.repeat(1000))).toHaveLength(SUMMARY_MAX_CHARS);
  });
});
