import { readdirSync } from 'node:fs';
import path from 'node:path';
import { analyzeTexts } from '../src/warehouse/queries/analyze-texts';
import { collectSource } from '../src/warehouse/queries/collect-source';
import { embedTexts } from '../src/warehouse/queries/embed-texts';
import { getDeals } from '../src/warehouse/queries/get-deals';
import { placeholders } from '../src/warehouse/queries/placeholders';
import { countSourceRows, readSourceTexts } from '../src/warehouse/queries/read-source-texts';
import type { BindValue, Row, Warehouse } from '../src/warehouse/types';

/**
 * User text reaches SQL only as a bound parameter. Every query function is called with a hostile value in
 * each argument a caller controls, against a warehouse that records what it is sent: the statement's text
 * never contains the value, the binds carry it, and there is one bind per `?`. A table or source name
 * outside a query's own map is refused before anything is sent. (test/hostile-input.test.ts sends such
 * values through the API, the library and the CLI to the local warehouse and checks its tables after.)
 */
const QUERIES = path.join(__dirname, '..', 'src', 'warehouse', 'queries');

/** A value no statement text may contain: each is marked `LEAK_<tag>`, so a leak names its argument. */
const hostile = (tag: string) => `x'); DROP TABLE DEALS; -- LEAK_${tag} ? :1 "q" $$`;

interface Statement {
  sql: string;
  binds: readonly BindValue[];
}

/** A warehouse that records each statement and answers with no rows. */
function recordingWarehouse(): { warehouse: Warehouse; statements: Statement[] } {
  const statements: Statement[] = [];
  const warehouse: Warehouse = {
    async query<R extends Row = Row>(sql: string, binds: readonly BindValue[] = []) {
      statements.push({ sql, binds });
      return [] as R[];
    },
    async each(sql, binds) {
      statements.push({ sql, binds });
      return 0;
    },
  };
  return { warehouse, statements };
}

interface Case {
  /** `function (variant)` */
  name: string;
  call: (warehouse: Warehouse) => Promise<unknown>;
  /** The caller's values: each must arrive as a bind, none in the text. */
  values: (string | number)[];
}

const analyzeKinds = ['calls', 'deals'] as const;
const collectSources = ['hubspot', 'gong', 'slack', 'linear'] as const;
const indexSources = ['calls', 'messages', 'deals'] as const;

/** Every query function, each with every table/source it can read. */
const CASES: Record<string, Case[]> = {
  analyzeTexts: analyzeKinds.map((kind) => ({
    name: `analyzeTexts (${kind})`,
    values: [hostile('id-a'), hostile('id-b')],
    call: (w) => analyzeTexts(w, kind, [hostile('id-a'), hostile('id-b'), hostile('id-a')]),
  })),
  collectSource: collectSources.map((source) => ({
    name: `collectSource (${source})`,
    values: [hostile('pattern-1'), hostile('from-1'), hostile('to-1'), 123_456.5, hostile('pattern-2'), 7_777],
    call: (w) =>
      collectSource(
        w,
        source,
        [
          { pattern: hostile('pattern-1'), minAmount: 123_456.5, from: hostile('from-1'), to: hostile('to-1') },
          { pattern: hostile('pattern-2'), minAmount: 0, from: '2024-01-01', to: '2024-12-31' },
        ],
        7_777,
      ),
  })),
  embedTexts: [
    {
      name: 'embedTexts',
      values: [hostile('model'), hostile('text-1'), hostile('text-2')],
      // No rows come back, so it fails after sending (no vector for text #0): the statement is what is checked.
      call: (w) => embedTexts(w, [hostile('text-1'), hostile('text-2')], hostile('model')),
    },
  ],
  getDeals: [{ name: 'getDeals', values: [hostile('deal-1'), hostile('deal-2')], call: (w) => getDeals(w, [hostile('deal-1'), hostile('deal-2')]) }],
  countSourceRows: indexSources.map((source) => ({ name: `countSourceRows (${source})`, values: [], call: (w) => countSourceRows(w, source) })),
  readSourceTexts: indexSources.map((source) => ({
    name: `readSourceTexts (${source})`,
    values: [hostile('after-id'), 4_321],
    call: (w) => readSourceTexts(w, source, hostile('after-id'), 4_321),
  })),
};

describe('security: no user value is spliced into SQL', () => {
  it('every query function in src/warehouse/queries is exercised below', () => {
    const exported = readdirSync(QUERIES)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => Object.entries(require(path.join(QUERIES, f)) as Record<string, unknown>))
      .filter(([name, value]) => typeof value === 'function' && name !== 'placeholders')
      .map(([name]) => name);
    expect(exported.sort()).toEqual(Object.keys(CASES).sort());
  });

  it.each(
    Object.values(CASES)
      .flat()
      .map((c) => [c.name, c] as const),
  )("%s sends the caller's values as binds only, one per placeholder", async (_name, c) => {
    const { warehouse, statements } = recordingWarehouse();
    await c.call(warehouse).catch(() => undefined);
    expect(statements).toHaveLength(1);
    const [{ sql, binds }] = statements;
    for (const value of c.values) expect(binds).toContain(value);
    expect(sql.match(/LEAK_[\w-]+/g) ?? []).toEqual([]);
    expect(sql).not.toContain('DROP TABLE');
    expect(sql.split('?').length - 1).toBe(binds.length);
  });

  it.each([
    ['analyzeTexts', (w: Warehouse) => analyzeTexts(w, 'calls; DROP TABLE DEALS' as never, ['D-1'])],
    [
      'collectSource',
      (w: Warehouse) => collectSource(w, 'hubspot; DROP TABLE DEALS' as never, [{ pattern: '%', minAmount: 0, from: '2024-01-01', to: '2024-12-31' }], 5),
    ],
    ['countSourceRows', (w: Warehouse) => countSourceRows(w, 'DEALS; DROP TABLE DEALS' as never)],
    ['readSourceTexts', (w: Warehouse) => readSourceTexts(w, 'DEALS; DROP TABLE DEALS' as never, '', 10)],
  ] as const)('%s refuses a table it does not know before sending anything', async (_name, call) => {
    const { warehouse, statements } = recordingWarehouse();
    await expect(call(warehouse)).rejects.toThrow();
    expect(statements).toEqual([]);
  });

  it('placeholders: only the count depends on the input', () => {
    expect(placeholders(3)).toBe('?, ?, ?');
    expect(placeholders(2, '(?, ?)')).toBe('(?, ?), (?, ?)');
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => placeholders(bad)).toThrow(/placeholder count must be a positive integer/);
  });
});
