import type snowflake from 'snowflake-sdk';
import { type LocalWarehouse, startLocalWarehouse } from '../src';
import { translateDialect } from '../src/dialect/translate';
import { connect, destroy, failure, type Row } from './helpers/driver';
import { waitUntil } from './helpers/wait';

interface Result {
  rows: Row[];
  columns: Array<{ name: string; type: string; scale: number; precision: number }>;
}

function run(conn: snowflake.Connection, sqlText: string, binds?: unknown[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    conn.execute({
      sqlText,
      binds: binds as never,
      complete: (err, stmt, rows) => {
        if (err) return reject(err);
        const columns = (stmt.getColumns() ?? []).map((c) => ({ name: c.getName(), type: c.getType(), scale: c.getScale(), precision: c.getPrecision() }));
        resolve({ rows: (rows ?? []) as Row[], columns });
      },
    });
  });
}

describe('Snowflake dialect through the real driver', () => {
  let wh: LocalWarehouse;
  let conn: snowflake.Connection;

  beforeAll(async () => {
    wh = await startLocalWarehouse({ deals: 0, loginLatencyMs: 0 });
    conn = await connect(wh.url, { database: 'TESTDB', schema: 'TESTSCHEMA' });
  });

  afterAll(async () => {
    await destroy(conn);
    await wh.close();
  });

  it('maps Snowflake type names in CREATE TABLE and casts, with Snowflake column metadata', async () => {
    await run(
      conn,
      'create or replace table dialect_types(n number, d number(10,2), i int, f float, s string, v varchar(40), ' +
        'b binary(5), ts timestamp_ntz(3), ltz timestamp_ltz, tz timestamp_tz(0), dt date, t time(9), ok boolean, ' +
        'var variant, arr array, obj object)',
    );
    await run(
      conn,
      "insert into dialect_types select 12345678901234567890123456789012345678, 12.5, 5000000000, 1.5, 'x', 'y', " +
        "to_binary('616263', 'HEX'), '2024-01-02 03:04:05.678', '2024-01-02 03:04:05', '2024-01-02 03:04:05', '2024-01-02', " +
        "'12:34:56', true, parse_json('{\"k\": 1}'), parse_json('[1, \"a\"]'), parse_json('{\"o\": true}')",
    );
    const { rows, columns } = await run(conn, 'select * from dialect_types');
    const r = rows[0];
    expect(r.N).toBe(1.2345678901234568e37);
    expect(r.D).toBe(12.5);
    expect(r.I).toBe(5000000000);
    expect((r.B as Buffer).toString()).toBe('abc');
    expect((r.TS as Date).toISOString()).toBe('2024-01-02T03:04:05.678Z');
    expect(r.VAR).toEqual({ k: 1 });
    expect(r.ARR).toEqual([1, 'a']);
    expect(r.OBJ).toEqual({ o: true });
    const types = Object.fromEntries(columns.map((c) => [c.name, c.type]));
    expect(types).toMatchObject({
      N: 'fixed',
      D: 'fixed',
      I: 'fixed',
      F: 'real',
      S: 'text',
      V: 'text',
      B: 'binary',
      TS: 'timestamp_ntz',
      LTZ: 'timestamp_ltz',
      DT: 'date',
      T: 'time',
      OK: 'boolean',
      VAR: 'variant',
    });
    expect(columns.find((c) => c.name === 'D')).toMatchObject({ precision: 10, scale: 2 });
    const cast = await run(conn, "select '3.14159'::NUMBER(10,3) as c, CAST('7' AS INTEGER) as k, '2024-05-06'::TIMESTAMP_NTZ as w");
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: NUMBER(10,3) rounds 3.14159 to this, not pi
    expect(cast.rows[0]).toMatchObject({ C: 3.142, K: 7 });
    expect((cast.rows[0].W as Date).toISOString()).toBe('2024-05-06T00:00:00.000Z');
  });

  it('generates rows with TABLE(GENERATOR(ROWCOUNT => n)), SEQ4() and a deterministic RANDSTR', async () => {
    const { rows } = await run(
      conn,
      'select seq4() as s, seq8() as s8, randstr(8, 42) as r, randstr(8, s) as rs from table(generator(rowcount => 5)) order by s',
    );
    expect(rows.map((r) => r.S)).toEqual([0, 1, 2, 3, 4]);
    expect(rows.map((r) => r.S8)).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(rows.map((r) => r.R)).size).toBe(1);
    expect(rows[0].R).toMatch(/^[0-9A-Za-z]{8}$/);
    expect(new Set(rows.map((r) => r.RS)).size).toBe(5);
    const count = await run(conn, 'select count(*) as n from table(generator(rowcount=>1000))');
    expect(count.rows[0].N).toBe(1000);
  });

  it('reads timestamps in Snowflake AUTO formats with TO_DATE, TO_TIME and TO_TIMESTAMP_*', async () => {
    const { rows } = await run(
      conn,
      "select to_date('2012-11-11') as d, to_time('12:34:56.789789789') as t, " +
        "to_timestamp_ntz('Thu, 21 Jan 2016 06:32:44 -0800') as ntz, to_timestamp_ltz('Thu, 21 Jan 2016 06:32:44 -0800') as ltz, " +
        "to_timestamp_tz('2016-01-21 06:32:44.5 +01:00') as tz, to_timestamp(1453300000) as epoch, " +
        "'2021-12-24 09:45:45 -0800'::TIMESTAMP_TZ as lit",
    );
    const r = rows[0];
    expect((r.D as Date).toJSON()).toBe('2012-11-11');
    expect(r.T).toBe('12:34:56');
    expect((r.NTZ as Date).toISOString()).toBe('2016-01-21T06:32:44.000Z'); // the offset is dropped
    expect((r.LTZ as Date).toISOString()).toBe('2016-01-21T14:32:44.000Z'); // the offset is applied
    expect((r.TZ as Date).toISOString()).toBe('2016-01-21T05:32:44.500Z');
    expect((r.EPOCH as Date).toISOString()).toBe('2016-01-20T14:26:40.000Z');
    expect((r.LIT as Date).toISOString()).toBe('2021-12-24T17:45:45.000Z');
    const err = await failure(run(conn, "select to_date('not a date')"));
    expect(err.message).toMatch(/is not recognized/);
  });

  it('selects FROM VALUES without parentheses, naming the columns COLUMN1…n', async () => {
    const plain = await run(conn, "select * from values (1, 'a'), (2, 'b') order by column1");
    expect(plain.rows).toEqual([
      { COLUMN1: 1, COLUMN2: 'a' },
      { COLUMN1: 2, COLUMN2: 'b' },
    ]);
    const bound = await run(conn, 'select column2 as x from values (?, ?), (?, ?) v where column1 = 2', [1, 'a', 2, 'b']);
    expect(bound.rows).toEqual([{ X: 'b' }]);
    const named = await run(conn, 'select y from values (1, 2) as t(x, y)');
    expect(named.rows).toEqual([{ Y: 2 }]);
  });

  it('accepts TRUNCATE TABLE IF EXISTS for a missing and an existing table', async () => {
    await run(conn, 'truncate table if exists dialect_never_created');
    await run(conn, 'create or replace table dialect_trunc(a int)');
    await run(conn, 'insert into dialect_trunc values (1), (2)');
    await run(conn, 'truncate table if exists dialect_trunc;');
    expect((await run(conn, 'select count(*) as n from dialect_trunc')).rows[0].N).toBe(0);
    const err = await failure(run(conn, 'truncate table dialect_never_created'));
    expect(err.message).toMatch(/does not exist/);
  });

  it('flattens JSON with TABLE(FLATTEN(…)) and reads v:a.b[0] paths', async () => {
    const { rows } = await run(conn, 'select index, value:a as a, value:b.c[1] as c from table(flatten(input => parse_json(?))) order by index', [
      '[{"a": 1, "b": {"c": [5, 6]}}, {"a": "x"}]',
    ]);
    expect(rows).toEqual([
      { INDEX: 0, A: 1, C: 6 },
      { INDEX: 1, A: 'x', C: null },
    ]);
    await run(conn, 'create or replace table dialect_json(cola varchar, colb varchar)');
    const ins = await run(conn, 'insert into dialect_json(cola, colb) select value:s1, value:s2 from table(flatten(parse_json(?)))', [
      JSON.stringify([{ s1: 'p', s2: 'q' }, { s1: 'r' }]),
    ]);
    expect(ins.rows[0]['number of rows inserted']).toBe(2);
    const obj = await run(conn, 'select key, value from table(flatten(parse_json(\'{"k": [1]}\')))');
    expect(obj.rows).toEqual([{ KEY: 'k', VALUE: [1] }]);
  });

  it("parses Snowflake's relaxed JSON in PARSE_JSON; TRY_PARSE_JSON gives NULL for bad text", async () => {
    const { rows } = await run(
      conn,
      "select parse_json('{a : 1 , b :[1 , 2 , 3, -Infinity, undefined], c : {a : 1}, \\'d\\': \\'e\\'}') as v, try_parse_json('{oops') as bad",
    );
    expect(rows[0].V).toEqual({ a: 1, b: [1, 2, 3, -Infinity, undefined], c: { a: 1 }, d: 'e' });
    expect(rows[0].BAD).toBeNull();
    const err = await failure(run(conn, "select parse_json('{oops')"));
    expect(err.message).toMatch(/Error parsing JSON/);
  });

  it('returns structured OBJECT, ARRAY and MAP columns with their fields', async () => {
    const { rows, columns } = await run(
      conn,
      "select {'s': 'a', 'n': 2, 'b': true, 'f': 1.5}::OBJECT(s VARCHAR, n INT, b BOOLEAN, f FLOAT) as o, " +
        'array_construct(1, 2, 3)::ARRAY(INTEGER) as a, ' +
        "{'x': '1', 'y': '2'}::MAP(VARCHAR, INTEGER) as m, " +
        "array_construct({'k': 'v'})::ARRAY(OBJECT(k VARCHAR)) as nested",
    );
    const r = rows[0];
    expect(r.O).toEqual({ s: 'a', n: 2, b: true, f: 1.5 });
    expect(r.A).toEqual([1, 2, 3]);
    expect(r.M).toEqual(
      new Map([
        ['x', 1],
        ['y', 2],
      ]),
    );
    expect(r.NESTED).toEqual([{ k: 'v' }]);
    expect(columns.map((c) => c.type)).toEqual(['object', 'array', 'map', 'array']);
  });

  it('gives CONCAT Snowflake NULL semantics', async () => {
    const { rows } = await run(conn, "select concat('a', null, 'b') as n, concat('a', ?, 1) as s", ['-']);
    expect(rows[0]).toEqual({ N: null, S: 'a-1' });
  });

  it('names unaliased expression columns by their upper-cased text, as Snowflake does', async () => {
    await run(conn, 'create or replace table dialect_names(a int)');
    await run(conn, 'insert into dialect_names values (1), (2)');
    const { columns } = await run(conn, 'select 1+1, count(*), max(a), a from dialect_names group by a limit 1');
    expect(columns.map((c) => c.name)).toEqual(['1+1', 'COUNT(*)', 'MAX(A)', 'A']);
  });

  it("resolves names qualified with the connection's database and schema", async () => {
    await run(conn, 'create or replace table TESTDB.TESTSCHEMA.dialect_qualified(a int)');
    await run(conn, 'insert into testdb.testschema.dialect_qualified values (7)');
    expect((await run(conn, 'select a from TESTSCHEMA.dialect_qualified')).rows).toEqual([{ A: 7 }]);
    expect((await run(conn, 'select a from dialect_qualified')).rows).toEqual([{ A: 7 }]);
    // One database: a connection without a database (or with another) reaches the same tables.
    const bare = await connect(wh.url);
    try {
      expect((await run(bare, 'select a from TESTDB.TESTSCHEMA.dialect_qualified')).rows).toEqual([{ A: 7 }]);
      expect((await run(bare, "select snowflake.cortex.sentiment('great') > 0 as p")).rows).toEqual([{ P: true }]);
    } finally {
      await destroy(bare);
    }
  });

  it('runs TABLE(GENERATOR(TIMELIMIT => s)) until its time is up, or until the statement is canceled', async () => {
    const short = await run(conn, 'select count(*) > 1000 as many from table(generator(timelimit => 0.2))');
    expect(short.rows[0].MANY).toBe(true);
    const sqlText = 'select count(*) as n from table(generator(timelimit => 3600))';
    let complete!: (err: unknown) => void;
    const done = new Promise<unknown>((resolve) => {
      complete = resolve;
    });
    const stmt = conn.execute({ sqlText, complete: (err) => complete(err) });
    await waitUntil('the generator to run', () => wh.queryHistory({ status: 'RUNNING' }).some((e) => e.queryText === sqlText));
    await new Promise<void>((resolve, reject) => stmt.cancel((err) => (err ? reject(err) : resolve())));
    expect(((await done) as { code?: string })?.code).toBe('000604');
    expect(wh.queryHistory({ limit: 20 }).find((e) => e.queryText === sqlText)).toMatchObject({ status: 'ABORTED' });
  });

  it('reads timestamp text without an offset in the session time zone; text with one keeps it', async () => {
    const la = await connect(wh.url);
    try {
      await run(la, "alter session set timezone = 'America/Los_Angeles'");
      const { rows } = await run(la, "select '2024-01-01 00:00:00'::timestamp_ltz as wall, '2024-01-01 00:00:00 +01:00'::timestamp_ltz as offset_given");
      expect([(rows[0].WALL as Date).toISOString(), (rows[0].OFFSET_GIVEN as Date).toISOString()]).toEqual([
        '2024-01-01T08:00:00.000Z',
        '2023-12-31T23:00:00.000Z',
      ]);
    } finally {
      await destroy(la);
    }
  });

  it("reads {'x':1} as an object literal, and :1 after other tokens as a bind", async () => {
    const literal = await run(conn, "select {'x':1, 'y' :2} as o");
    expect(literal.rows[0].O).toEqual({ x: 1, y: 2 });
    const bound = await run(conn, "select 'a' || :1 as s, :2 as t", ['b', 'c']);
    expect(bound.rows[0]).toMatchObject({ S: 'ab', T: 'c' });
  });

  it('never rewrites string literals, quoted identifiers or comments', async () => {
    const text = 'number(38,0) table(generator(rowcount=>1)) from values (1) concat(null) v:a ?';
    const { rows } = await run(conn, `select '${text}' as "timestamp_ltz", /* truncate table if exists x */ 'x' as "VALUES"`);
    expect(rows[0]).toEqual({ timestamp_ltz: text, VALUES: 'x' });
  });
});

describe('translateDialect', () => {
  it('keeps literals, identifiers, comments and binds as written, and binds in order', () => {
    const sql = 'select \'a::number\', "x:y", ? -- number\n from t where c = :1 and d::number > ?';
    const out = translateDialect(sql).sql;
    expect(out).toContain("'a::number'");
    expect(out).toContain('"x:y"');
    expect(out).toContain('-- number\n');
    expect(out).toContain('d::DECIMAL(38, 0) > ?');
    expect(out.match(/\?|:1/g)).toEqual(['?', ':1', '?']);
  });
});
