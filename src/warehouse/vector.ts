import { WarehouseResultError } from './errors';

/**
 * Parses a vector cell as the driver hands it over. Real Snowflake's `VECTOR(FLOAT, 768)` arrives from
 * snowflake-sdk 3.x as a raw string (`"[0.1,-0.2,...]"`); an ARRAY column arrives parsed; both are accepted.
 */
export function parseVector(cell: unknown, dims: number): Float32Array {
  let values: ArrayLike<unknown>;
  if (typeof cell === 'string') {
    try {
      values = JSON.parse(cell) as unknown[];
    } catch {
      throw new WarehouseResultError(`vector cell is not a JSON array: ${cell.slice(0, 40)}`);
    }
  } else if (Array.isArray(cell) || cell instanceof Float32Array || cell instanceof Float64Array) {
    values = cell;
  } else {
    throw new WarehouseResultError(`vector cell has unexpected type ${cell === null ? 'null' : typeof cell}`);
  }
  if (!values || typeof values.length !== 'number' || values.length !== dims) {
    throw new WarehouseResultError(`vector has ${values?.length} dimensions, expected ${dims}`);
  }
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new WarehouseResultError(`vector component ${i} is not a finite number`);
    out[i] = v;
  }
  return out;
}
