import { z } from 'zod';
import { IndexTarget } from './embedding';
import { WarehouseText } from './text';

export const MAX_SEARCH_K = 1_000;

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
    k: z.number({ error: 'must be a number' }).int('must be an integer').min(1, 'must be at least 1').max(MAX_SEARCH_K, `must be at most ${MAX_SEARCH_K}`).default(10),
    namespace: IndexTarget.shape.namespace.optional(),
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
  /** How the query text was embedded (tier of the embedding cache), when a text was given. */
  embedding?: { tier: 'l1' | 'l2' | 'warehouse' };
}
