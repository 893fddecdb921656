import { ARRAY, arrayValue, DOUBLE, type DuckDBConnection, DuckDBScalarFunction, type DuckDBValue, type DuckDBVector, FLOAT, VARCHAR } from '@duckdb/node-api';
import { sentimentScore, summarizeText } from './cortex-stand-ins';
import { DIALECT_MACROS, registerDialectFunctions } from './dialect/functions';
import { EMBEDDER_DIMS, embedText } from './embedder';

/**
 * Models accepted by the local `EMBED_TEXT_768`. Every one of them is served by the same LOCAL STAND-IN
 * (`embedder.ts`); the list exists so that a typo in a model name fails here as it would
 * in Snowflake instead of silently working.
 */
export const EMBED_768_MODELS: ReadonlySet<string> = new Set(['e5-base-v2', 'snowflake-arctic-embed-m', 'snowflake-arctic-embed-m-v1.5']);

/** Called with the number of texts each time the embedding function runs (for server stats). */
export type EmbedCounter = (texts: number) => void;

// Implementation names in DuckDB's system catalog; the Snowflake names are macros over these.
const EMBED_IMPL = 'fleet_local_embed_text_768';
const SENTIMENT_IMPL = 'fleet_local_sentiment';
const SUMMARIZE_IMPL = 'fleet_local_summarize';

function stringColumnMap<T extends number | string>(
  input: { rowCount: number; getColumnVector(i: number): DuckDBVector },
  output: DuckDBVector,
  fn: (s: string) => T,
): void {
  const texts = input.getColumnVector(0);
  for (let r = 0; r < input.rowCount; r++) {
    const s = texts.getItem(r);
    output.setItem(r, typeof s === 'string' ? fn(s) : null);
  }
  output.flush();
}

/**
 * Registers the Cortex functions the fleet uses, under their Snowflake names:
 * `SNOWFLAKE.CORTEX.EMBED_TEXT_768(model, text)` → `FLOAT[768]` (sent to the driver as a VECTOR),
 * `SNOWFLAKE.CORTEX.SENTIMENT(text)` → DOUBLE in [-1, 1], `SNOWFLAKE.CORTEX.SUMMARIZE(text)` → VARCHAR,
 * plus `VECTOR_COSINE_SIMILARITY`, `VECTOR_INNER_PRODUCT` and `VECTOR_L2_DISTANCE`.
 *
 * The implementations are JS scalar functions (DuckDB calls them once per chunk of up to 2048 rows, on
 * the JS thread); the dotted Snowflake names are macros in an attached in-memory catalog `snowflake` with
 * a schema `cortex`, which is how `SNOWFLAKE.CORTEX.X(...)` resolves in DuckDB without rewriting SQL.
 * Scalar functions live in DuckDB's system catalog, so registering them on one connection serves all.
 */
export async function registerCortexFunctions(conn: DuckDBConnection, onEmbed: EmbedCounter): Promise<void> {
  conn.registerScalarFunction(
    DuckDBScalarFunction.create({
      name: EMBED_IMPL,
      returnType: ARRAY(FLOAT, EMBEDDER_DIMS),
      parameterTypes: [VARCHAR, VARCHAR],
      mainFunction: (info, input, output) => {
        const models = input.getColumnVector(0);
        const texts = input.getColumnVector(1);
        let embedded = 0;
        for (let r = 0; r < input.rowCount; r++) {
          const model = models.getItem(r);
          const text = texts.getItem(r);
          if (typeof model === 'string' && !EMBED_768_MODELS.has(model)) {
            info.setError(`Invalid argument: unknown model '${model.slice(0, 64)}' for EMBED_TEXT_768; ` + `supported: ${[...EMBED_768_MODELS].join(', ')}`);
            return;
          }
          if (typeof text !== 'string' || typeof model !== 'string') {
            output.setItem(r, null);
            continue;
          }
          // setItem only indexes `items`, so the Float32Array goes in as is: copying 768 numbers into a
          // JS array per text doubled the cost of a 500-text batch.
          output.setItem(r, arrayValue(embedText(text) as unknown as DuckDBValue[]));
          embedded++;
        }
        output.flush();
        onEmbed(embedded);
      },
    }),
  );
  conn.registerScalarFunction(
    DuckDBScalarFunction.create({
      name: SENTIMENT_IMPL,
      returnType: DOUBLE,
      parameterTypes: [VARCHAR],
      mainFunction: (_info, input, output) => stringColumnMap(input, output, sentimentScore),
    }),
  );
  conn.registerScalarFunction(
    DuckDBScalarFunction.create({
      name: SUMMARIZE_IMPL,
      returnType: VARCHAR,
      parameterTypes: [VARCHAR],
      mainFunction: (_info, input, output) => stringColumnMap(input, output, summarizeText),
    }),
  );

  registerDialectFunctions(conn);

  await conn.run(`ATTACH IF NOT EXISTS ':memory:' AS snowflake`);
  await conn.run('CREATE SCHEMA IF NOT EXISTS snowflake.cortex');
  const macros = [
    `snowflake.cortex.embed_text_768(model, txt) AS ${EMBED_IMPL}(model, txt)`,
    `snowflake.cortex.sentiment(txt) AS ${SENTIMENT_IMPL}(txt)`,
    `snowflake.cortex.summarize(txt) AS ${SUMMARIZE_IMPL}(txt)`,
    // Snowflake's vector functions, over DuckDB's fixed-size ARRAY functions.
    'snowflake.main.vector_cosine_similarity(a, b) AS array_cosine_similarity(a, b)',
    'snowflake.main.vector_inner_product(a, b) AS array_inner_product(a, b)',
    'snowflake.main.vector_l2_distance(a, b) AS array_distance(a, b)',
    ...SNOWFLAKE_COMPAT_MACROS,
    ...DIALECT_MACROS,
  ];
  for (const m of macros) await conn.run(`CREATE OR REPLACE MACRO ${m}`);
}

const castN = (type: string) => `CAST(n AS ${type})`;

/**
 * Everyday Snowflake functions DuckDB lacks or spells differently, so fleet SQL written for Snowflake
 * (e.g. `LAST_ACTIVITY_AT < DATEADD(day, -30, CURRENT_TIMESTAMP())`) runs unchanged. `sql-rewrite.ts`
 * quotes the bare date part (`day` → `'day'`) so it reaches these macros as text.
 */
const SNOWFLAKE_COMPAT_MACROS = [
  'snowflake.main.iff(c, a, b) AS CASE WHEN c THEN a ELSE b END',
  'snowflake.main.nvl(a, b) AS coalesce(a, b)',
  'snowflake.main.zeroifnull(a) AS coalesce(a, 0)',
  'snowflake.main.to_varchar(a) AS CAST(a AS VARCHAR)',
  'snowflake.main.array_size(a) AS len(a)',
  'snowflake.main.current_timestamp() AS now()',
  "snowflake.main.sysdate() AS timezone('UTC', now())",
  `snowflake.main.dateadd(part, n, ts) AS CASE rtrim(lower(part), 's')
     WHEN 'year' THEN ts + to_years(${castN('INTEGER')}) WHEN 'quarter' THEN ts + to_months(${castN('INTEGER')} * 3)
     WHEN 'month' THEN ts + to_months(${castN('INTEGER')}) WHEN 'week' THEN ts + to_weeks(${castN('INTEGER')})
     WHEN 'day' THEN ts + to_days(${castN('INTEGER')}) WHEN 'hour' THEN ts + to_hours(${castN('BIGINT')})
     WHEN 'minute' THEN ts + to_minutes(${castN('BIGINT')}) WHEN 'second' THEN ts + to_seconds(${castN('DOUBLE')})
     ELSE error('DATEADD: unsupported date part ' || part) END`,
  'snowflake.main.timestampadd(part, n, ts) AS snowflake.main.dateadd(part, n, ts)',
  'snowflake.main.timestampdiff(part, a, b) AS datediff(part, a, b)',
];

/**
 * Per-connection settings: unqualified Snowflake function names (e.g. `VECTOR_COSINE_SIMILARITY`, `IFF`)
 * resolve to the macros above after the database's own schema, and time zone arithmetic is in UTC.
 */
export function connectionSettings(defaultCatalog: string): string[] {
  const quoted = `"${defaultCatalog.replace(/"/g, '""')}"`.replace(/'/g, "''");
  // UTC, like the TIMEZONE session parameter reported to the driver, whatever the machine's zone.
  return [`SET search_path = '${quoted}.main,snowflake.main'`, "SET TimeZone = 'UTC'"];
}
