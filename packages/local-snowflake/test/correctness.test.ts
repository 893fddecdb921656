import { randomUUID } from 'node:crypto';
import snowflake from 'snowflake-sdk';
import { type LocalWarehouse, startLocalWarehouse } from '../src';
import { connect, destroy, exec, failure, httpLogin, type Row } from './helpers/driver';

/**
 * What the server sends back, checked through the real driver: values, statuses, tokens, request ids
 * and session parameters as Snowflake sends them (each case here was once wrong).
 */

async function rawQuery(wh: LocalWarehouse, token: string, sqlText: string, requestId = randomUUID()): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${wh.url}/queries/v1/query-request?requestId=${requestId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${token}"` },
    body: JSON.stringify({ sqlText }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe('correctness: what the server sends back', () => {
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

  describe('values', () => {
    it('sends a timestamp before 1970 as one signed number of seconds (-1.75 s is "-1.750000000")', async () => {
      const { token } = await httpLogin(wh.url);
      const { body } = await rawQuery(wh, token, "SELECT '1969-12-31 23:59:58.25'::TIMESTAMP AS T, '1969-12-31 23:59:59.999999'::TIMESTAMP AS U");
      expect(body.data.rowset).toEqual([['-1.750000000', '-0.000001000']]);
      const [row] = await exec(conn, "SELECT '1969-12-31 23:59:58.25'::TIMESTAMP AS T, '1901-02-03 04:05:06.789'::TIMESTAMP AS OLD");
      expect((row.T as Date).getTime()).toBe(-1750);
      expect((row.OLD as Date).toISOString()).toBe('1901-02-03T04:05:06.789Z');
    });

    it('keeps integers inside a VARIANT column numbers after a round trip through a table', async () => {
      await exec(conn, 'CREATE TABLE VARIANT_ROUND_TRIP (V VARIANT)');
      await exec(conn, `INSERT INTO VARIANT_ROUND_TRIP SELECT PARSE_JSON('{"a":1,"b":[2,3.5],"c":"x","d":{"e":-7,"f":null,"g":true}}')`);
      const [row] = await exec(conn, 'SELECT V FROM VARIANT_ROUND_TRIP');
      expect(row.V).toEqual({ a: 1, b: [2, 3.5], c: 'x', d: { e: -7, f: null, g: true } });
    });

    it('binds :2 without :1 to the second value, and refuses a bind that was not sent', async () => {
      expect(await exec(conn, 'SELECT :2 AS X', ['a', 'b'])).toEqual([{ X: 'b' }]);
      expect(await exec(conn, 'SELECT :3 AS C, :1 AS A', ['a', 'b', 'c'])).toEqual([{ C: 'c', A: 'a' }]);
      const err = await failure(exec(conn, 'SELECT :2 AS X', ['a']));
      expect(err.code).toBe('002049');
    });
  });

  describe('column names', () => {
    it('keeps duplicate column names as written, where DuckDB renames them (a, a_1…)', async () => {
      const sqlText = "SELECT * FROM (SELECT 'a' AS key, 1 AS foo, 'a1' AS key_1, 2 AS foo, 'a2' AS key_3, 3 AS foo_3, 'a3' AS key, 4 AS foo) AS t";
      const run = (rowMode: string) =>
        new Promise<{ names: string[]; rows: Row[] }>((resolve, reject) =>
          conn.execute({
            sqlText,
            rowMode,
            complete: (err: unknown, stmt: snowflake.RowStatement, rows?: unknown[]) =>
              err ? reject(err) : resolve({ names: (stmt.getColumns() ?? []).map((c) => c.getName()), rows: rows as Row[] }),
          } as never),
        );
      expect((await run('array')).names).toEqual(['KEY', 'FOO', 'KEY_1', 'FOO', 'KEY_3', 'FOO_3', 'KEY', 'FOO']);
      const { rows } = await run('object_with_renamed_duplicated_columns');
      // The driver's own renaming of duplicates, as it does for Snowflake's names.
      expect(rows).toEqual([{ KEY: 'a', FOO: 1, KEY_1: 'a1', FOO_2: 2, KEY_3: 'a2', FOO_3: 3, KEY_2: 'a3', FOO_4: 4 }]);
    });
  });

  describe('DDL status messages name the object, as Snowflake does', () => {
    it('reports CREATE and DROP of tables, views and schemas', async () => {
      expect(await exec(conn, 'CREATE TABLE ddl_t (x INT)')).toEqual([{ status: 'Table DDL_T successfully created.' }]);
      expect(await exec(conn, 'CREATE TABLE IF NOT EXISTS ddl_t (x INT)')).toEqual([{ status: 'DDL_T already exists, statement succeeded.' }]);
      expect(await exec(conn, 'CREATE OR REPLACE TABLE "Mixed" (x INT)')).toEqual([{ status: 'Table Mixed successfully created.' }]);
      expect(await exec(conn, 'CREATE VIEW ddl_v AS SELECT * FROM ddl_t')).toEqual([{ status: 'View DDL_V successfully created.' }]);
      expect(await exec(conn, 'DROP VIEW ddl_v')).toEqual([{ status: 'DDL_V successfully dropped.' }]);
      expect(await exec(conn, 'DROP TABLE ddl_t')).toEqual([{ status: 'DDL_T successfully dropped.' }]);
      expect(await exec(conn, 'DROP TABLE IF EXISTS ddl_t')).toEqual([{ status: 'Drop statement executed successfully (DDL_T already dropped).' }]);
      expect(await exec(conn, 'CREATE SCHEMA ddl_s')).toEqual([{ status: 'Schema DDL_S successfully created.' }]);
      // comments before the name, a qualified name, and a quoted part with a doubled quote
      expect(await exec(conn, 'CREATE TABLE IF NOT EXISTS /* c */ ddl_s."Q""T" (x INT)')).toEqual([{ status: 'Table Q"T successfully created.' }]);
      expect(await exec(conn, "ALTER SESSION SET QUERY_TAG = 'ddl'")).toEqual([{ status: 'Statement executed successfully.' }]);
    });
  });

  describe('session tokens', () => {
    it('answers a token it never issued with HTTP 401 and 390104, which the driver reports as an invalid token', async () => {
      const { status, body } = await rawQuery(wh, 'ver:1-hint:session-not-a-token', 'SELECT 1');
      expect(status).toBe(401);
      expect(body).toMatchObject({ success: false, code: '390104' });

      // The driver's own way in with a session token it was given (as in its testStatement.js).
      const bad = snowflake.createConnection({ account: 'local', accessUrl: wh.url, sessionToken: 'invalid token' } as snowflake.ConnectionOptions);
      const err = await failure(exec(bad, 'SELECT 1 AS ONE'));
      expect(err.code).toBe(401004); // ERR_SF_RESPONSE_INVALID_TOKEN
      expect(bad.isUp()).toBe(true); // an invalid token fails the call, not the connection
    });

    it('still answers a token of a session that ended with 390111 (session gone)', async () => {
      const { token } = await httpLogin(wh.url);
      await fetch(`${wh.url}/session?delete=true`, { method: 'POST', headers: { authorization: `Snowflake Token="${token}"` } });
      const { status, body } = await rawQuery(wh, token, 'SELECT 1');
      expect(status).toBe(200);
      expect(body).toMatchObject({ success: false, code: '390111' });
    });
  });

  describe('request ids', () => {
    it('de-duplicates a requestId within its session only, as Snowflake does', async () => {
      await exec(conn, 'CREATE TABLE REQUEST_ID_T (S TEXT)');
      const other = await connect(wh.url);
      try {
        const requestId = randomUUID();
        await exec(conn, "INSERT INTO REQUEST_ID_T VALUES ('first')", [], { requestId });
        await exec(conn, "INSERT INTO REQUEST_ID_T VALUES ('first')", [], { requestId }); // a retry: replayed
        await exec(other, "INSERT INTO REQUEST_ID_T VALUES ('other')", [], { requestId }); // another session: runs
        expect(await exec(conn, 'SELECT S, count(*) AS N FROM REQUEST_ID_T GROUP BY S ORDER BY S')).toEqual([
          { S: 'first', N: 1 },
          { S: 'other', N: 1 },
        ]);
      } finally {
        await destroy(other);
      }
    });
  });

  describe('session parameters are echoed in every reply, so the driver applies them', () => {
    it('applies jsTreatIntegerAsBigInt sent at login, and JS_TREAT_INTEGER_AS_BIGINT set and unset with ALTER SESSION', async () => {
      // The driver's big integers are `big-integer` objects, exact where a number would round.
      const big = await connect(wh.url, { jsTreatIntegerAsBigInt: true });
      try {
        const [row] = await exec(big, 'SELECT 9007199254740993 AS N');
        expect(typeof row.N).toBe('object');
        expect(String(row.N)).toBe('9007199254740993');
      } finally {
        await destroy(big);
      }
      const own = await connect(wh.url);
      try {
        await exec(own, 'ALTER SESSION SET JS_TREAT_INTEGER_AS_BIGINT = TRUE');
        const [row] = await exec(own, 'SELECT 1 AS N');
        expect(typeof row.N).toBe('object');
        expect(String(row.N)).toBe('1');
        await exec(own, 'ALTER SESSION UNSET JS_TREAT_INTEGER_AS_BIGINT');
        expect(await exec(own, 'SELECT 1 AS N')).toEqual([{ N: 1 }]);
      } finally {
        await destroy(own);
      }
    });

    it('applies TIMEZONE and the output formats set with ALTER SESSION', async () => {
      const own = await connect(wh.url);
      try {
        const sql = "SELECT '2024-01-02 00:00:00+00'::TIMESTAMPTZ AS TS, '2024-03-04'::DATE AS D";
        const asText = { fetchAsString: ['Date'] };
        expect(await exec(own, sql, [], asText)).toEqual([{ TS: '2024-01-02 00:00:00.000 +0000', D: '2024-03-04' }]);
        await exec(own, "ALTER SESSION SET TIMEZONE = 'America/New_York', DATE_OUTPUT_FORMAT = 'DD/MM/YYYY'");
        expect(await exec(own, sql, [], asText)).toEqual([{ TS: '2024-01-01 19:00:00.000 -0500', D: '04/03/2024' }]);
      } finally {
        await destroy(own);
      }
    });

    it('runs each statement in the session’s TIMEZONE (TIMESTAMP_LTZ conversions), and only that session’s', async () => {
      const la = await connect(wh.url);
      try {
        await exec(la, "ALTER SESSION SET TIMEZONE = 'America/Los_Angeles'");
        // DuckDB's own constructor, so that only the session's zone is under test (not the dialect's casts).
        const sql = "SELECT make_timestamptz(2021, 12, 22, 9, 43, 44.0) AS TS, current_setting('TimeZone') AS ZONE";
        const [inLa] = await exec(la, sql);
        expect([(inLa.TS as Date).toISOString(), inLa.ZONE]).toEqual(['2021-12-22T17:43:44.000Z', 'America/Los_Angeles']);
        const [elsewhere] = await exec(conn, sql);
        expect([(elsewhere.TS as Date).toISOString(), elsewhere.ZONE]).toEqual(['2021-12-22T09:43:44.000Z', 'UTC']);
        const err = await failure(exec(la, "ALTER SESSION SET TIMEZONE = 'Mars/Olympus_Mons'").then(() => exec(la, sql)));
        expect(err.message).toMatch(/Mars\/Olympus_Mons/);
      } finally {
        await destroy(la);
      }
    });

    it('keeps the QUERY_TAG sent at login (the connection’s queryTag) for every statement', async () => {
      const tagged = await connect(wh.url, { queryTag: 'nightly-load' });
      try {
        await exec(tagged, 'SELECT 42 AS ANSWER');
        const [entry] = wh.queryHistory({ queryTag: 'nightly-load', limit: 1 });
        expect(entry.queryText).toBe('SELECT 42 AS ANSWER');
      } finally {
        await destroy(tagged);
      }
    });
  });
});
