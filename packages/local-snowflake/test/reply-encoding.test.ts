import { encodeQueryReply } from '../src/protocol';
import type { EncodedResult, RowTypeEntry } from '../src/result-encoding';
import type { Session } from '../src/sessions';
import { formatNumberVector, VECTOR_DECIMALS } from '../src/vector-format';

// Only the fields a reply reads; the rest of a session does not reach the encoder.
const session = { database: 'FLEET', schema: 'PUBLIC', warehouse: 'LOCAL_WH', role: 'FLEET_ROLE', settings: new Map() } as unknown as Session;

const column = (name: string, type: string): RowTypeEntry => ({
  name,
  database: '',
  schema: '',
  table: '',
  nullable: true,
  type,
  length: null,
  byteLength: null,
  precision: null,
  scale: null,
  collation: null,
});

/** What the reply should say: the same result written by plain JSON.stringify, byte cells as their text. */
function expected(result: EncodedResult) {
  return result.rowset.map((row) => row.map((c) => (Buffer.isBuffer(c) ? c.toString('latin1') : c)));
}

describe('encodeQueryReply (local warehouse query replies as bytes)', () => {
  it('writes string, null and byte cells so that JSON.parse reads back the same rowset', () => {
    const hostile = 'quote " backslash \\ newline \n tab \t nul \u0000 unicode héllo 日本 😀 lone \ud800 end';
    const result: EncodedResult = {
      rowtype: [column('I', 'fixed'), column('T', 'text'), column('V', 'vector')],
      rowset: [
        ['0', hostile, formatNumberVector([0.5, -0.25, 0])],
        ['1', null, null],
        ['2', '', formatNumberVector(new Float32Array([1e-8, -1e-8, 0.1234567]))],
      ],
    };
    const bytes = encodeQueryReply(session, 'q-1', result, 4096, 7);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    const reply = JSON.parse(bytes.toString('utf8'));
    expect(reply.success).toBe(true);
    expect(reply.code).toBeNull();
    expect(reply.data.rowset).toEqual(expected(result));
    // JSON.stringify escapes the lone surrogate, so it survives the trip as the same code unit.
    expect(reply.data.rowset[0][1]).toBe(hostile);
    expect(reply.data.rowset[0][2]).toBe('[0.5,-0.25,0.0]');
    expect(reply.data.returned).toBe(3);
    expect(reply.data.total).toBe(3);
    expect(reply.data.queryId).toBe('q-1');
    expect(reply.data.numberOfBinds).toBe(7);
    expect(reply.data.statementTypeId).toBe(4096);
    expect(reply.data.queryResultFormat).toBe('json');
    expect(reply.data.rowtype.map((c: RowTypeEntry) => c.name)).toEqual(['I', 'T', 'V']);
    expect(reply.data.finalDatabaseName).toBe('FLEET');
  });

  it('keeps every non-ASCII character of a string cell intact in UTF-8', () => {
    const text = 'héllo wörld — 日本語 😀';
    const result: EncodedResult = { rowtype: [column('T', 'text')], rowset: [[text]] };
    const reply = JSON.parse(encodeQueryReply(session, 'q', result, 4096, 0).toString('utf8'));
    expect(reply.data.rowset).toEqual([[text]]);
  });

  it('writes empty rowsets and rows with only byte cells', () => {
    const none = JSON.parse(encodeQueryReply(session, 'q', { rowtype: [column('V', 'vector')], rowset: [] }, 4096, 0).toString('utf8'));
    expect(none.data.rowset).toEqual([]);
    expect(none.data.returned).toBe(0);
    const result: EncodedResult = { rowtype: [column('A', 'vector'), column('B', 'vector')], rowset: [[formatNumberVector([1]), formatNumberVector([2, 3])]] };
    const reply = JSON.parse(encodeQueryReply(session, 'q', result, 4096, 0).toString('utf8'));
    expect(reply.data.rowset).toEqual([['[1.0]', '[2.0,3.0]']]);
  });
});

describe('formatNumberVector (VECTOR cells as ASCII bytes)', () => {
  it('writes each component within half a unit of the last decimal, and parses back as the same vector', () => {
    const v = new Float32Array(768);
    let seed = 7;
    for (let i = 0; i < v.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      v[i] = (seed / 2 ** 31 - 0.5) * 0.2;
    }
    const bytes = formatNumberVector(v);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    const text = bytes.toString('latin1');
    expect(text).toMatch(/^\[[-0-9.,]+\]$/);
    const back = JSON.parse(text) as number[];
    expect(back).toHaveLength(768);
    const bound = 0.5 * 10 ** -VECTOR_DECIMALS + 1e-15;
    for (let i = 0; i < v.length; i++) expect(Math.abs(back[i] - v[i])).toBeLessThanOrEqual(bound);
  });

  it('returns an exact-length copy, so one result is not changed by formatting the next', () => {
    const a = formatNumberVector([0.25, 0.5]);
    const b = formatNumberVector([0.75, -1, 2, 3, 4]);
    expect(a.toString('latin1')).toBe('[0.25,0.5]');
    expect(b.toString('latin1')).toBe('[0.75,-1.0,2.0,3.0,4.0]');
    expect(a.length).toBe('[0.25,0.5]'.length);
  });

  it('falls back to String(v) for non-finite and very large values, and grows for long vectors', () => {
    expect(formatNumberVector([NaN, Infinity, -Infinity, 1e12, -0]).toString('latin1')).toBe('[NaN,Infinity,-Infinity,1000000000000,0.0]');
    const long = new Array(5000).fill(0.5);
    const text = formatNumberVector(long).toString('latin1');
    expect(JSON.parse(text)).toEqual(long);
  });
});
