import { WarehouseResultError } from '../errors';
import type { BindValue, QueryOptions, Warehouse } from '../types';
import { parseVector } from '../vector';
import { placeholders } from './placeholders';

export const EMBEDDING_DIMS = 768;

/**
 * Embeds a batch of texts in ONE statement: every text (and the model name) is a bound parameter, and
 * the row number travels with each text so results are matched by position, not by order of return.
 *
 * @example
 *   const vectors = await embedTexts(warehouse, ['renewal at risk', 'pricing call'], 'e5-base-v2');
 */
export async function embedTexts(warehouse: Warehouse, texts: readonly string[], model: string, opts: QueryOptions = {}): Promise<Float32Array[]> {
  if (texts.length === 0) return [];
  const binds: BindValue[] = [model];
  for (const [i, t] of texts.entries()) binds.push(i, t);
  const sql = `SELECT t.I AS I, SNOWFLAKE.CORTEX.EMBED_TEXT_768(?, t.TXT) AS V FROM (VALUES ${placeholders(texts.length, '(?, ?)')}) AS t(I, TXT)`;
  const inputChars = texts.reduce((n, t) => n + t.length, 0);
  const out = new Array<Float32Array | undefined>(texts.length);
  // Each vector is parsed as its row arrives (a 500-text result is several MB of text, in chunks), and
  // stored by position, so a retried attempt that delivers rows again overwrites rather than duplicates.
  await warehouse.each<{ I: unknown; V: unknown }>(
    sql,
    binds,
    (row) => {
      const i = Number(row.I);
      if (!Number.isInteger(i) || i < 0 || i >= texts.length) throw new WarehouseResultError(`embed_texts returned row index ${String(row.I)}`);
      out[i] = parseVector(row.V, EMBEDDING_DIMS);
    },
    { label: 'embed_texts', cortex: [{ function: 'EMBED_TEXT_768', model, inputChars }], ...opts },
  );
  const missing = out.indexOf(undefined);
  if (missing >= 0) throw new WarehouseResultError(`embed_texts returned no vector for text #${missing}`);
  return out as Float32Array[];
}
