import { decodeVector, encodeVector } from '../src/contracts/vector-codec';
import { WarehouseResultError } from '../src/warehouse/errors';
import { parseVector } from '../src/warehouse/vector';

describe('vectors', () => {
  it('parses a vector cell whether it arrives as a string (VECTOR) or an array (ARRAY)', () => {
    expect(Array.from(parseVector('[0.5,-1,2]', 3))).toEqual([0.5, -1, 2]);
    expect(Array.from(parseVector([0.5, -1, 2], 3))).toEqual([0.5, -1, 2]);
    expect(() => parseVector('[1,2]', 3)).toThrow(WarehouseResultError);
    expect(() => parseVector('not json', 3)).toThrow(/not a JSON array/);
    expect(() => parseVector([1, 'x', 3], 3)).toThrow(/component 1/);
  });

  it('encodes results as base64 little-endian float32 and decodes them exactly', () => {
    const v = new Float32Array(768).map((_, i) => Math.sin(i) / 3);
    const b64 = encodeVector(v);
    expect(Buffer.from(b64, 'base64').length).toBe(768 * 4);
    expect(Buffer.from(b64, 'base64').readFloatLE(4)).toBeCloseTo(Math.sin(1) / 3, 6);
    expect(decodeVector(b64)).toEqual(v);
    expect(() => decodeVector('AAA=')).toThrow(/multiple of 4/);
  });
});
