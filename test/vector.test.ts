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

  it('reads a VECTOR string into the same float32 values JSON.parse would give, in every number format', () => {
    // deterministic pseudo-random components at several magnitudes, printed the ways a warehouse might
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31 - 0.5;
    };
    const formats: ((x: number) => string)[] = [
      (x) => x.toFixed(7),
      String,
      (x) => x.toExponential(6),
      (x) => String(Math.fround(x)),
      (x) => x.toPrecision(17),
    ];
    for (const [f, format] of formats.entries()) {
      for (const scale of [1e-9, 1e-3, 0.3, 1e3]) {
        const text = `[${Array.from({ length: 768 }, () => format(rand() * scale)).join(',')}]`;
        expect({ f, scale, v: parseVector(text, 768) }).toEqual({ f, scale, v: Float32Array.from(JSON.parse(text)) });
      }
    }
    // what the fast reader does not take goes through JSON.parse, with its errors
    expect(Array.from(parseVector('[ 1, 2e0 ,-3 ]', 3))).toEqual([1, 2, -3]);
    for (const bad of ['[1,,2]', '[NaN,1,2]', '[1,2,3,4]', '[1,2', '[-,1,2]', '[1e,1,2]']) expect(() => parseVector(bad, 3)).toThrow(WarehouseResultError);
  });
});
