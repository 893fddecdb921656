import { randomUUID } from 'node:crypto';
import type snowflake from 'snowflake-sdk';
import { type LocalWarehouse, type QueryHistoryEntry, startLocalWarehouse } from '../src';
import { connect as connectTo, destroy, failure, httpLogin, type Row } from './helpers/driver';
import { waitUntil } from './helpers/wait';

const connect = (wh: LocalWarehouse) => connectTo(wh.url);

function exec(conn: snowflake.Connection, sqlText: string, opts: { binds?: unknown[]; parameters?: Record<string, unknown> } = {}): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    conn.execute({
      sqlText,
      binds: opts.binds as snowflake.Binds,
      parameters: opts.parameters,
      complete: (err, _stmt, rows) => (err ? reject(err) : resolve((rows ?? []) as Row[])),
    });
  });
}

/** The history entry of the statement whose SQL text is `sqlText` (unique per test). */
function entryFor(wh: LocalWarehouse, sqlText: string): QueryHistoryEntry {
  const found = wh.queryHistory().filter((e) => e.queryText === sqlText);
  expect(found).toHaveLength(1);
  return found[0];
}

/** Resolves once the statement whose SQL text is `sqlText` is running at the server. */
function running(wh: LocalWarehouse, sqlText: string): Promise<boolean> {
  return waitUntil(`${sqlText} to be running`, () => wh.queryHistory({ status: 'RUNNING' }).some((e) => e.queryText === sqlText), { timeoutMs: 5_000 });
}

describe('local warehouse statement parameters and query history (over the real driver)', () => {
  let wh: LocalWarehouse;
  let conn: snowflake.Connection;

  beforeAll(async () => {
    wh = await startLocalWarehouse({ deals: 0, loginLatencyMs: 0 });
    conn = await connect(wh);
  });

  afterAll(async () => {
    await destroy(conn);
    await wh.close();
  });

  afterEach(() => {
    wh.setFault({ mode: 'none' });
  });

  it('records a statement-level QUERY_TAG in the query history, read back by API and over HTTP', async () => {
    const tag = JSON.stringify({ app: 'warehouse-fleet', queue: 'embed', batch: randomUUID() });
    const sql = "SELECT 'tagged' AS T, 42 AS N";
    expect(await exec(conn, sql, { parameters: { QUERY_TAG: tag, SOME_OTHER_PARAMETER: 'ignored' } })).toEqual([{ T: 'tagged', N: 42 }]);

    const [entry] = wh.queryHistory({ queryTag: tag });
    expect(entry).toMatchObject({ queryText: sql, queryTag: tag, status: 'SUCCESS', errorCode: null, rowsProduced: 1, user: 'FLEET', chunkCount: 0 });
    expect(entry.queryId).toMatch(/^[0-9a-f-]{36}$/);
    expect(entry.sessionId).toEqual(expect.any(Number));
    expect(entry.endTime! - entry.startTime).toBe(entry.durationMs);
    expect(entry.bytesInline).toBeGreaterThan(0);

    const res = await fetch(`${wh.url}/fleet/query-history?queryTag=${encodeURIComponent(tag)}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([entry]);
    expect((await fetch(`${wh.url}/fleet/query-history?status=BOGUS`)).status).toBe(400);

    // An untagged statement has an empty tag; the newest entry comes first.
    await exec(conn, 'SELECT 1 AS UNTAGGED');
    const [latest] = wh.queryHistory({ sessionId: entry.sessionId, limit: 1 });
    expect(latest).toMatchObject({ queryText: 'SELECT 1 AS UNTAGGED', queryTag: '' });
  });

  it('keeps a session QUERY_TAG from ALTER SESSION; a statement-level tag wins; UNSET clears it', async () => {
    const session = await connect(wh);
    try {
      expect(await exec(session, "ALTER SESSION SET QUERY_TAG = 'nightly ''load''' TIMEZONE = 'UTC'")).toEqual([
        { status: 'Statement executed successfully.' },
      ]);
      await exec(session, 'SELECT 1 AS SESSION_TAGGED');
      expect(entryFor(wh, 'SELECT 1 AS SESSION_TAGGED').queryTag).toBe("nightly 'load'");

      await exec(session, 'SELECT 2 AS STATEMENT_TAGGED', { parameters: { QUERY_TAG: 'one-off' } });
      expect(entryFor(wh, 'SELECT 2 AS STATEMENT_TAGGED').queryTag).toBe('one-off');
      await exec(session, 'SELECT 3 AS SESSION_AGAIN');
      expect(entryFor(wh, 'SELECT 3 AS SESSION_AGAIN').queryTag).toBe("nightly 'load'");

      // Bound values work too, and other sessions are unaffected.
      await exec(session, 'alter session set query_tag = ?', { binds: ['from-a-bind'] });
      await exec(session, 'SELECT 4 AS BOUND_TAG');
      expect(entryFor(wh, 'SELECT 4 AS BOUND_TAG').queryTag).toBe('from-a-bind');
      await exec(conn, 'SELECT 5 AS OTHER_SESSION');
      expect(entryFor(wh, 'SELECT 5 AS OTHER_SESSION').queryTag).toBe('');

      await exec(session, 'ALTER SESSION UNSET QUERY_TAG');
      await exec(session, 'SELECT 6 AS UNSET_TAG');
      expect(entryFor(wh, 'SELECT 6 AS UNSET_TAG').queryTag).toBe('');
    } finally {
      await destroy(session);
    }
  });

  it('refuses a QUERY_TAG over 2,000 characters (001008) and accepts exactly 2,000', async () => {
    const long = 'x'.repeat(2001);
    const viaStatement = await failure(exec(conn, 'SELECT 1 AS TOO_LONG', { parameters: { QUERY_TAG: long } }));
    expect(String(viaStatement.code)).toBe('001008');
    expect(viaStatement.sqlState).toBe('22023');
    expect(viaStatement.message).toMatch(/invalid value \['x+'\] for parameter 'QUERY_TAG'/);
    expect(entryFor(wh, 'SELECT 1 AS TOO_LONG')).toMatchObject({ status: 'FAILED_WITH_ERROR', errorCode: '001008' });

    const viaSession = await failure(exec(conn, `ALTER SESSION SET QUERY_TAG = '${long}'`));
    expect(String(viaSession.code)).toBe('001008');

    const max = 'y'.repeat(2000);
    await exec(conn, 'SELECT 1 AS LONGEST_TAG', { parameters: { QUERY_TAG: max } });
    expect(entryFor(wh, 'SELECT 1 AS LONGEST_TAG').queryTag).toBe(max);

    // Bad timeouts are refused the same way; a malformed ALTER SESSION is a syntax error.
    expect(String((await failure(exec(conn, "ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = 'abc'"))).code)).toBe('001008');
    expect(String((await failure(exec(conn, 'ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = 604801'))).code)).toBe('001008');
    expect(String((await failure(exec(conn, 'SELECT 1', { parameters: { STATEMENT_TIMEOUT_IN_SECONDS: -1 } }))).code)).toBe('001008');
    expect(String((await failure(exec(conn, 'ALTER SESSION SET QUERY_TAG'))).code)).toBe('001003');
    expect(String((await failure(exec(conn, "ALTER SESSION SET QUERY_TAG = 'no end"))).code)).toBe('001003');
    expect(String((await failure(exec(conn, 'ALTER SESSION SET QUERY_TAG = 1 + 2'))).code)).toBe('001003');
    // a signed literal is one value (refused for its range, not its syntax)
    expect(String((await failure(exec(conn, 'ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = -1'))).code)).toBe('001008');
  });

  it('reads ALTER SESSION literals as Snowflake does: comments, escapes, doubled quotes, $$ strings', async () => {
    await exec(conn, "ALTER SESSION /* why */ SET QUERY_TAG = 'a\\tb''c' -- trailing");
    await exec(conn, 'SELECT 1 AS ESCAPED_TAG');
    expect(entryFor(wh, 'SELECT 1 AS ESCAPED_TAG').queryTag).toBe("a\tb'c");
    await exec(conn, 'ALTER SESSION SET "QUERY_TAG" = $$it\'s$$');
    await exec(conn, 'SELECT 1 AS DOLLAR_TAG');
    expect(entryFor(wh, 'SELECT 1 AS DOLLAR_TAG').queryTag).toBe("it's");
    await exec(conn, 'ALTER SESSION UNSET QUERY_TAG');
  });

  it('cancels a statement at STATEMENT_TIMEOUT_IN_SECONDS with 000630, counting the slow fault', async () => {
    wh.setFault({ mode: 'slow', slowMs: 3000 });
    const sql = 'SELECT 1 AS TIMED_OUT';
    const started = performance.now();
    const err = await failure(exec(conn, sql, { parameters: { STATEMENT_TIMEOUT_IN_SECONDS: 1 } }));
    const elapsed = performance.now() - started;
    expect(String(err.code)).toBe('000630');
    expect(err.sqlState).toBe('57014');
    expect(err.message).toBe('Statement reached its statement or warehouse timeout of 1 second(s) and was canceled.');
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(2500);
    const entry = entryFor(wh, sql);
    expect(entry).toMatchObject({ status: 'ABORTED', errorCode: '000630', statementTimeoutS: 1 });
    expect(entry.durationMs!).toBeLessThan(2000);
    expect(wh.stats().statementTimeouts).toBeGreaterThanOrEqual(1);

    // Without a limit the same statement waits out the fault.
    wh.setFault({ mode: 'slow', slowMs: 300 });
    expect(await exec(conn, 'SELECT 1 AS IN_TIME', { parameters: { STATEMENT_TIMEOUT_IN_SECONDS: 5 } })).toEqual([{ IN_TIME: 1 }]);
  });

  it('interrupts a running DuckDB statement at a session-level timeout; statement-level 0 lifts it', async () => {
    const session = await connect(wh);
    try {
      await exec(session, 'ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = 1');
      const heavy = 'SELECT count(*) AS N FROM range(0, 20000000000) t(i) WHERE hash(i) % 1000 = 7';
      const started = performance.now();
      const err = await failure(exec(session, heavy));
      expect(String(err.code)).toBe('000630');
      expect(performance.now() - started).toBeLessThan(4000);
      expect(entryFor(wh, heavy)).toMatchObject({ status: 'ABORTED', errorCode: '000630', statementTimeoutS: 1 });

      wh.setFault({ mode: 'slow', slowMs: 1500, sqlPattern: 'NO_LIMIT' });
      expect(await exec(session, 'SELECT 2 AS NO_LIMIT', { parameters: { STATEMENT_TIMEOUT_IN_SECONDS: 0 } })).toEqual([{ NO_LIMIT: 2 }]);
      expect(entryFor(wh, 'SELECT 2 AS NO_LIMIT')).toMatchObject({ status: 'SUCCESS', statementTimeoutS: 0 });
    } finally {
      await destroy(session);
    }
  });

  it('cancels at the timeout on the server even when the client went away', async () => {
    // Only the statements are slow, not the logins and logouts around them.
    wh.setFault({ mode: 'slow', slowMs: 3000, sqlPattern: 'ABANDONED' });

    // A raw client that drops its HTTP connection mid-statement.
    const { token } = await httpLogin(wh.url);
    const gone = new AbortController();
    const request = fetch(`${wh.url}/queries/v1/query-request?requestId=${randomUUID()}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${token}"` },
      body: JSON.stringify({ sqlText: 'SELECT 1 AS ABANDONED_RAW', parameters: { STATEMENT_TIMEOUT_IN_SECONDS: 1 } }),
      signal: gone.signal,
    });
    request.catch(() => undefined);
    await running(wh, 'SELECT 1 AS ABANDONED_RAW');
    gone.abort();

    // A driver connection destroyed (logged out) while its statement runs.
    const doomed = await connect(wh);
    const doomedDone = new Promise<void>((resolve) => {
      doomed.execute({ sqlText: 'SELECT 1 AS ABANDONED_DRIVER', parameters: { STATEMENT_TIMEOUT_IN_SECONDS: 1 }, complete: () => resolve() });
    });
    await running(wh, 'SELECT 1 AS ABANDONED_DRIVER');
    await destroy(doomed);

    for (const sql of ['SELECT 1 AS ABANDONED_RAW', 'SELECT 1 AS ABANDONED_DRIVER']) {
      const entry = await waitUntil(
        `${sql} to end`,
        () => {
          const e = entryFor(wh, sql);
          return e.status !== 'RUNNING' && e;
        },
        { timeoutMs: 5_000, everyMs: 50 },
      );
      // Canceled by the server at ~1 s, not run out to the fault's 3 s.
      expect(entry).toMatchObject({ status: 'ABORTED', errorCode: '000630' });
      expect(entry.durationMs!).toBeGreaterThanOrEqual(950);
      expect(entry.durationMs!).toBeLessThan(2000);
    }
    // The driver's own call ends too (with the cancellation), so nothing of it outlives the test.
    await doomedDone;
    const statuses = await (await fetch(`${wh.url}/fleet/query-history?status=ABORTED`)).json();
    expect(statuses).toEqual(expect.arrayContaining([expect.objectContaining({ queryText: 'SELECT 1 AS ABANDONED_RAW', errorCode: '000630' })]));
  });
});
