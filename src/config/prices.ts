/**
 * Snowflake's published prices, the defaults of the cost settings. They are list figures from
 * Snowflake's Service Consumption Table; an account's own contract may differ, so every one of them can
 * be overridden by configuration (SNOWFLAKE_WAREHOUSE_CREDITS_PER_HOUR, SNOWFLAKE_CORTEX_CREDITS_PER_MTOKENS,
 * SNOWFLAKE_CREDIT_PRICE_USD).
 */

/** Credits per hour of a running standard warehouse, by size (billed per second, 60 s minimum per resume). */
export const WAREHOUSE_CREDITS_PER_HOUR = {
  XSMALL: 1,
  SMALL: 2,
  MEDIUM: 4,
  LARGE: 8,
  XLARGE: 16,
  XXLARGE: 32,
  XXXLARGE: 64,
  X4LARGE: 128,
  X5LARGE: 256,
  X6LARGE: 512,
} as const;
export type WarehouseSize = keyof typeof WAREHOUSE_CREDITS_PER_HOUR;

/**
 * Cortex credits per million tokens, keyed `FUNCTION` or `FUNCTION:model` (the more specific key wins).
 * EMBED_* functions bill input tokens only; SENTIMENT and SUMMARIZE add a prompt of their own and
 * SUMMARIZE also bills output tokens, so for those two the fleet's input-token figure is a lower bound.
 */
export const CORTEX_CREDITS_PER_MTOKENS: Readonly<Record<string, number>> = {
  'EMBED_TEXT_768:e5-base-v2': 0.03,
  'EMBED_TEXT_768:snowflake-arctic-embed-m': 0.03,
  'EMBED_TEXT_768:snowflake-arctic-embed-m-v1.5': 0.03,
  EMBED_TEXT_768: 0.03,
  SENTIMENT: 0.08,
  SUMMARIZE: 0.1,
};

/** `FUNCTION[:model]=credits` pairs separated by commas (SNOWFLAKE_CORTEX_CREDITS_PER_MTOKENS). */
export const CORTEX_PRICE_LIST = /^[A-Z0-9_]+(:[A-Za-z0-9_.-]+)?=\d+(\.\d+)?(,[A-Z0-9_]+(:[A-Za-z0-9_.-]+)?=\d+(\.\d+)?)*$/;

/** Parses a price list into `{ 'EMBED_TEXT_768:e5-base-v2': 0.03, … }` (already validated by CORTEX_PRICE_LIST). */
export function parseCortexPrices(list: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of list ? list.split(',') : []) {
    const [key, value] = pair.split('=');
    out[key] = Number(value);
  }
  return out;
}
