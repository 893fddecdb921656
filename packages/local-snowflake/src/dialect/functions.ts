import { BIGINT, DOUBLE, type DuckDBConnection, DuckDBScalarFunction, DuckDBVarCharType, VARCHAR } from '@duckdb/node-api';
import { normalizeRelaxedJson } from './relaxed-json';
import { duckTimestampText, parseTimestampText } from './timestamps';

// DuckDB's JSON type is VARCHAR with this alias: a function returning it needs no validating cast,
// so relaxed values (-Infinity, undefined) reach the client as Snowflake sends them.
const JSON_TYPE = DuckDBVarCharType.create('JSON');

const RANDSTR_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** RANDSTR(length, gen): the same `gen` gives the same string, as in Snowflake (not the same characters). */
function randomString(length: number, gen: number): string {
  // mulberry32 over a hash of gen's bits
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, gen);
  let seed = (view.getUint32(0) ^ Math.imul(view.getUint32(4), 0x9e3779b1)) >>> 0;
  let out = '';
  for (let k = 0; k < length; k++) {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out += RANDSTR_ALPHABET[((t ^ (t >>> 14)) >>> 0) % 62];
  }
  return out;
}

/**
 * Registers the JS functions behind the Snowflake functions DuckDB has no equivalent for (RANDSTR,
 * AUTO-format timestamp parsing, relaxed PARSE_JSON). Their Snowflake names are macros in
 * `DIALECT_MACROS`, or the translator renames the call (`dialect/translate.ts`).
 */
export function registerDialectFunctions(conn: DuckDBConnection): void {
  conn.registerScalarFunction(
    DuckDBScalarFunction.create({
      name: 'sf_randstr',
      returnType: VARCHAR,
      parameterTypes: [BIGINT, DOUBLE],
      mainFunction: (info, input, output) => {
        const lengths = input.getColumnVector(0);
        const gens = input.getColumnVector(1);
        for (let r = 0; r < input.rowCount; r++) {
          const length = lengths.getItem(r);
          const gen = gens.getItem(r);
          if (length === null || gen === null) {
            output.setItem(r, null);
            continue;
          }
          const n = Number(length);
          if (n < 0 || n > 16_777_216) {
            info.setError(`Invalid argument: RANDSTR length ${n} must be between 0 and 16777216`);
            return;
          }
          output.setItem(r, randomString(n, Number(gen)));
        }
        output.flush();
      },
    }),
  );
  conn.registerScalarFunction(
    DuckDBScalarFunction.create({
      name: 'sf_timestamp_text',
      returnType: VARCHAR,
      parameterTypes: [VARCHAR, VARCHAR],
      mainFunction: (info, input, output) => {
        const texts = input.getColumnVector(0);
        const kinds = input.getColumnVector(1);
        for (let r = 0; r < input.rowCount; r++) {
          const text = texts.getItem(r);
          if (typeof text !== 'string') {
            output.setItem(r, null);
            continue;
          }
          const parsed = parseTimestampText(text);
          if (!parsed) {
            info.setError(`Timestamp '${text.slice(0, 100)}' is not recognized`);
            return;
          }
          output.setItem(r, duckTimestampText(parsed, kinds.getItem(r) !== 'ntz'));
        }
        output.flush();
      },
    }),
  );
  for (const [name, lenient] of [
    ['sf_parse_json', false],
    ['sf_try_parse_json', true],
  ] as const) {
    conn.registerScalarFunction(
      DuckDBScalarFunction.create({
        name,
        returnType: JSON_TYPE,
        parameterTypes: [VARCHAR],
        mainFunction: (info, input, output) => {
          const texts = input.getColumnVector(0);
          for (let r = 0; r < input.rowCount; r++) {
            const text = texts.getItem(r);
            // Snowflake: PARSE_JSON(NULL) and PARSE_JSON('') are NULL.
            if (typeof text !== 'string' || text.trim() === '') {
              output.setItem(r, null);
              continue;
            }
            try {
              output.setItem(r, normalizeRelaxedJson(text));
            } catch (err) {
              if (lenient) {
                output.setItem(r, null);
                continue;
              }
              info.setError(`${(err as Error).message}\n  File 'json', line 1`);
              return;
            }
          }
          output.flush();
        },
      }),
    );
  }
}

const timestampOf = (kind: 'ntz' | 'ltz' | 'tz', x: string) =>
  `CAST(sf_timestamp_text(CAST(${x} AS VARCHAR), '${kind}') AS ${kind === 'ntz' ? 'TIMESTAMP' : 'TIMESTAMPTZ'})`;

/**
 * Snowflake functions as DuckDB macros, in the `snowflake.main` schema that is on every connection's
 * search path (see `connectionSettings`). Names DuckDB already uses for something else are renamed by
 * the translator (`sf_…`).
 */
export const DIALECT_MACROS: readonly string[] = [
  'snowflake.main.randstr(n, gen) AS sf_randstr(n, gen)',
  `snowflake.main.sf_to_timestamp_ntz(x) AS ${timestampOf('ntz', 'x')}`,
  `snowflake.main.sf_to_timestamp_ltz(x) AS ${timestampOf('ltz', 'x')}`,
  `snowflake.main.sf_to_timestamp_tz(x) AS ${timestampOf('tz', 'x')}`,
  `snowflake.main.to_date(x) AS CAST(${timestampOf('ntz', 'x')} AS DATE)`,
  'snowflake.main.to_time(x) AS CAST(x AS TIME)',
  "snowflake.main.to_binary(x) AS unhex(x), (x, fmt) AS CASE upper(fmt) WHEN 'BASE64' THEN from_base64(x) WHEN 'UTF-8' THEN encode(x) WHEN 'UTF8' THEN encode(x) ELSE unhex(x) END",
  'snowflake.main.to_variant(x) AS to_json(x)',
  'snowflake.main.to_object(x) AS to_json(x)',
  'snowflake.main.to_array(x) AS to_json(x)',
  "snowflake.main.current_version() AS '9.0.0'",
];
