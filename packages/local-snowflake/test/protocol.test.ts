import type snowflake from 'snowflake-sdk';
import { type LocalWarehouse, startLocalWarehouse } from '../src';
import { type Bind, connect, destroy, exec, failure, type Row } from './helpers/driver';
import { waitUntil } from './helpers/wait';

/**
 * The protocol as the driver uses it beyond one statement per request: asynchronous execution
 * (`asyncExec`, status polling, results by query id), multi-statement requests, `SYSTEM$WAIT` and
 * cancellation that interrupts for real, and the session's query history read back over SQL.
 */

type Statement = snowflake.RowStatement & { hasNext?: () => boolean; NextResult?: () => void };

/** Runs a multi-statement request and collects every statement's rows, walking them as the driver's users do. */
function execMulti(
  conn: snowflake.Connection,
  sqlText: string,
  binds: Bind[] = [],
  parameters?: Record<string, unknown>,
): Promise<Array<{ sql: string; rows: Row[] }>> {
  return new Promise((resolve, reject) => {
    const results: Array<{ sql: string; rows: Row[] }> = [];
    conn.execute({
      sqlText,
      binds: binds as never,
      parameters,
      complete: (err: unknown, stmt: snowflake.RowStatement, rows?: unknown[]) => {
        if (err) return reject(err);
        results.push({ sql: stmt.getSqlText(), rows: (rows ?? []) as Row[] });
        const multi = stmt as Statement;
        if (multi.hasNext?.()) multi.NextResult!();
        else resolve(results);
      },
    } as never);
  });
}

describe('protocol: async execution, multi-statement requests, waits, cancellation, query history', () => {
  let wh: LocalWarehouse;
  let conn: snowflake.Connection;

  beforeAll(async () => {
    wh = await startLocalWarehouse({ deals: 0, loginLatencyMs: 0 });
    conn = await connect(wh.url);
  });

  afterAll(async () => {
    await destroy(conn);
    await wh.close();
  });

  describe('asyncExec', () => {
    it('answers at once with a query id, reports RUNNING, then serves the result by query id', async () => {
      const started = Date.now();
      const queryId = await new Promise<string>((resolve, reject) =>
        conn.execute({
          sqlText: "CALL SYSTEM$WAIT(1, 'SECONDS')",
          asyncExec: true,
          complete: (err: unknown, stmt: snowflake.RowStatement) => (err ? reject(err) : resolve(stmt.getQueryId())),
        } as never),
      );
      expect(Date.now() - started).toBeLessThan(900);
      expect(String(await conn.getQueryStatus(queryId))).toBe('RUNNING');
      expect(conn.isStillRunning((await conn.getQueryStatus(queryId)) as never)).toBe(true);

      const stmt = await conn.getResultsFromQueryId({ queryId } as never);
      const rows = await new Promise<Row[]>((resolve, reject) => {
        const out: Row[] = [];
        stmt
          .streamRows()
          .on('data', (r: Row) => out.push(r))
          .on('end', () => resolve(out))
          .on('error', reject);
      });
      expect(rows).toEqual([{ SYSTEM$WAIT: 'waited 1 seconds' }]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(String(await conn.getQueryStatus(queryId))).toBe('SUCCESS');
    });

    it('reports a failed statement as FAILED_WITH_ERROR and refuses its result', async () => {
      const queryId = await new Promise<string>((resolve, reject) =>
        conn.execute({
          sqlText: 'SELECT * FROM NO_SUCH_TABLE',
          asyncExec: true,
          complete: (err: unknown, stmt: snowflake.RowStatement) => (err ? reject(err) : resolve(stmt.getQueryId())),
        } as never),
      );
      await waitUntil('the statement to fail', async () => !conn.isStillRunning((await conn.getQueryStatus(queryId)) as never));
      expect(String(await conn.getQueryStatus(queryId))).toBe('FAILED_WITH_ERROR');
      const err = await failure(conn.getQueryStatusThrowIfError(queryId));
      expect(err.name).toBe('OperationFailedError');
      expect(err.message).toContain('NO_SUCH_TABLE');
      expect((await failure(conn.getResultsFromQueryId({ queryId } as never))).name).toBe('OperationFailedError');
    });
  });

  describe('multi-statement requests', () => {
    it('refuses several statements unless MULTI_STATEMENT_COUNT allows them', async () => {
      const err = await failure(exec(conn, 'SELECT 1; SELECT 2'));
      expect(err.code).toBe('000008');
      expect(err.message).toBe('Actual statement count 2 did not match the desired statement count 1.');
      const wrongCount = await failure(execMulti(conn, 'SELECT 1; SELECT 2; SELECT 3', [], { MULTI_STATEMENT_COUNT: 2 }));
      expect(wrongCount.message).toBe('Actual statement count 3 did not match the desired statement count 2.');
    });

    it('runs each statement as a child query, with ? binds numbered across the request', async () => {
      const results = await execMulti(conn, 'SELECT ? AS A; SELECT ? AS B, 3 AS C; SELECT ? AS D', [1, 2, 4], { MULTI_STATEMENT_COUNT: 3 });
      expect(results).toEqual([
        { sql: 'SELECT ? AS A', rows: [{ A: 1 }] },
        { sql: ' SELECT ? AS B, 3 AS C', rows: [{ B: 2, C: 3 }] },
        { sql: ' SELECT ? AS D', rows: [{ D: 4 }] },
      ]);
    });

    it('takes any number of statements with ALTER SESSION SET MULTI_STATEMENT_COUNT = 0, and stops at the first failure', async () => {
      const own = await connect(wh.url);
      try {
        await exec(own, 'ALTER SESSION SET MULTI_STATEMENT_COUNT = 0');
        const results = await execMulti(own, 'CREATE TABLE MULTI_T (X INT); INSERT INTO MULTI_T VALUES (1), (2); SELECT sum(X) AS S FROM MULTI_T');
        expect(results.map((r) => r.rows)).toEqual([[{ status: 'Table MULTI_T successfully created.' }], [{ 'number of rows inserted': 2 }], [{ S: 3 }]]);
        const err = await failure(execMulti(own, 'INSERT INTO MULTI_T VALUES (3); SELECT * FROM NO_SUCH_TABLE; INSERT INTO MULTI_T VALUES (4)'));
        expect(err.message).toContain('NO_SUCH_TABLE');
        expect(await exec(own, 'SELECT X FROM MULTI_T ORDER BY X')).toEqual([{ X: 1 }, { X: 2 }, { X: 3 }]);
      } finally {
        await destroy(own);
      }
    });
  });

  describe('SYSTEM$WAIT and cancellation', () => {
    it('generates rows for as long as the time limit says', async () => {
      const started = Date.now();
      expect(await exec(conn, 'SELECT count(*) > 1000 AS MANY, min(SEQ) AS FIRST FROM fleet_local_generator_time_limit(0.3)')).toEqual([
        { MANY: true, FIRST: 0 },
      ]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    });

    it('waits as long as asked', async () => {
      const started = Date.now();
      expect(await exec(conn, "SELECT SYSTEM$WAIT(300, 'MILLISECONDS')")).toEqual([{ "SYSTEM$WAIT(300, 'MILLISECONDS')": 'waited 300 milliseconds' }]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    });

    it.each([
      ['a SYSTEM$WAIT', "CALL SYSTEM$WAIT(60, 'SECONDS')"],
      ['a long DuckDB query', 'SELECT count(*) AS N FROM range(200000) a, range(200000) b WHERE a.range + b.range = -1'],
      // What GENERATOR(TIMELIMIT => 3600) runs on (see time-limited-generator.ts).
      ['an hour of the time-limited generator', 'SELECT count(*) AS N FROM fleet_local_generator_time_limit(3600)'],
    ])('interrupts %s when the statement is canceled', async (_what, sqlText) => {
      let complete!: (err: unknown) => void;
      const done = new Promise<unknown>((resolve) => (complete = resolve));
      const stmt = conn.execute({ sqlText, complete: (err) => complete(err) });
      await waitUntil('the statement to run', () => wh.queryHistory({ status: 'RUNNING' }).some((e) => e.queryText === sqlText));
      const started = Date.now();
      await new Promise<void>((resolve, reject) => stmt.cancel((err) => (err ? reject(err) : resolve())));
      const err = (await done) as { code?: string };
      expect(err?.code).toBe('000604');
      expect(Date.now() - started).toBeLessThan(5000);
      const [entry] = wh.queryHistory({ limit: 20 }).filter((e) => e.queryText === sqlText);
      expect(entry).toMatchObject({ status: 'ABORTED', errorCode: '000604' });
    });
  });

  describe('query history over SQL', () => {
    it('serves INFORMATION_SCHEMA.QUERY_HISTORY_BY_SESSION() with the QUERY_TAG in effect, newest first', async () => {
      const tagged = await connect(wh.url, { queryTag: 'Test QUERY_TAG 12345' });
      const other = await connect(wh.url);
      try {
        await exec(tagged, 'SELECT 1 AS FIRST');
        await exec(other, 'SELECT 2 AS ELSEWHERE');
        const rows = await exec(tagged, 'SELECT QUERY_TEXT, QUERY_TAG, EXECUTION_STATUS FROM table(information_schema.query_history_by_session())');
        expect(rows).toEqual([
          {
            QUERY_TEXT: 'SELECT QUERY_TEXT, QUERY_TAG, EXECUTION_STATUS FROM table(information_schema.query_history_by_session())',
            QUERY_TAG: 'Test QUERY_TAG 12345',
            EXECUTION_STATUS: 'RUNNING',
          },
          { QUERY_TEXT: 'SELECT 1 AS FIRST', QUERY_TAG: 'Test QUERY_TAG 12345', EXECUTION_STATUS: 'SUCCESS' },
        ]);
        const limited = await exec(tagged, 'SELECT QUERY_TEXT FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY_BY_SESSION(RESULT_LIMIT => 1))');
        expect(limited).toHaveLength(1);
      } finally {
        await destroy(tagged);
        await destroy(other);
      }
    });
  });
});
