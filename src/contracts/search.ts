import { z } from 'zod';
import { IndexItemId, IndexTarget, IndexTimestamp } from './embedding';
import { WarehouseText } from './text';

export const MAX_SEARCH_K = 1_000;
/** Most values in one filter list (`tenant`, `dealId`). */
export const MAX_FILTER_VALUES = 1_000;

const idOrIds = z.union(
  [IndexItemId, z.array(IndexItemId).min(1, 'must list at least one id').max(MAX_FILTER_VALUES, `must list at most ${MAX_FILTER_VALUES} ids`)],
  {
    error: `must be an id or a list of 1 to ${MAX_FILTER_VALUES} ids`,
  },
);

/**
 * Restricts a search to items whose metadata (given at upsert: `index.tenant`, `index.dealId`,
 * `index.ts`) matches. Fields are ANDed, a list means any of; `from` inclusive, `to` exclusive. Items
 * without the field never match. See docs/search.md for how it is evaluated and its recall cost.
 */
export const SearchFilter = z
  .strictObject({ tenant: idOrIds.optional(), dealId: idOrIds.optional(), from: IndexTimestamp.optional(), to: IndexTimestamp.optional() })
  .refine((f) => f.from === undefined || f.to === undefined || f.from < f.to, { message: 'must be after from', path: ['to'] });
export type SearchFilter = z.output<typeof SearchFilter>;

/** A search request: a text (embedded through the cached embedding path) or a vector, top `k`. */
export const SearchRequest = z
  .strictObject({
    text: WarehouseText.optional(),
    /** base64 little-endian float32 (as embedding results carry it) or a list of numbers. */
    vector: z
      .union(
        [
          z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64 of little-endian float32'),
          z.array(z.number().finite()).min(1, 'must have 1 to 4096 numbers').max(4096, 'must have 1 to 4096 numbers'),
        ],
        // NaN and ±Infinity fail both branches; without this the message is zod's bare "Invalid input".
        { error: 'must be base64 of little-endian float32 or a list of 1 to 4096 finite numbers' },
      )
      .optional(),
    k: z
      .number({ error: 'must be a number' })
      .int('must be an integer')
      .min(1, 'must be at least 1')
      .max(MAX_SEARCH_K, `must be at most ${MAX_SEARCH_K}`)
      .default(10),
    namespace: IndexTarget.shape.namespace.optional(),
    filter: SearchFilter.optional(),
    model: z.string().optional(),
    trace: z.record(z.string(), z.string()).optional(),
  })
  .refine((r) => (r.text === undefined) !== (r.vector === undefined), { message: 'give exactly one of text or vector', path: ['text'] });
export type SearchRequest = z.output<typeof SearchRequest>;

export interface SearchHit {
  id: string;
  namespace: string;
  /** Cosine similarity (1 = same direction). */
  score: number;
}

/** Search result: the hits and the index snapshot version that answered. */
export interface SearchResponse {
  hits: SearchHit[];
  snapshotVersion: number;
  /** With a filter: how many items (in the namespaces searched) match it. Fewer hits than `min(k, matching)` means the over-fetch missed some. */
  matching?: number;
  /** How the query text was embedded (tier of the embedding cache), when a text was given. */
  embedding?: { tier: 'l1' | 'l2' | 'warehouse' };
}
