import { z } from 'zod';

export const MAX_TEXT_CHARS = 8_000;

// A lone surrogate cannot be encoded as UTF-8: it would be replaced silently on the way to the warehouse.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A text for the warehouse: non-empty (not only whitespace), at most 8,000 characters (rejected, never
 * truncated), no NUL bytes and no lone surrogates (neither survives the trip to Snowflake intact).
 * Quotes, `$$`, backslashes and right-to-left marks are ordinary text: they are bound, never spliced.
 */
export const WarehouseText = z
  .string({ error: 'must be a string' })
  .refine((s) => s.trim().length > 0, 'must not be empty or only whitespace')
  .refine((s) => s.length <= MAX_TEXT_CHARS, { message: `must be at most ${MAX_TEXT_CHARS} characters (it is not truncated)` })
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL bytes')
  .refine((s) => !LONE_SURROGATE.test(s), 'must be valid Unicode (contains a lone surrogate)');
