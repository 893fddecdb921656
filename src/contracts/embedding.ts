import { z } from 'zod';
import { WarehouseText } from './text';

/** Models with 768-dimensional output that Snowflake's EMBED_TEXT_768 accepts. */
export const EMBEDDING_MODELS = ['e5-base-v2', 'snowflake-arctic-embed-m', 'snowflake-arctic-embed-m-v1.5'] as const;
export type EmbeddingModel = (typeof EMBEDDING_MODELS)[number];
export const DEFAULT_EMBEDDING_MODEL: EmbeddingModel = 'e5-base-v2';

/**
 * A search-index namespace: 1-64 letters, digits, `_` or `-`, starting with a letter or digit. The one rule,
 * used by producers, the API, the index log and the search service alike (it also names snapshot files, so
 * no dots or slashes).
 */
export const IndexNamespace = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be 1-64 letters, digits, _ or -, starting with a letter or digit');

/** An item id in the search index: 1-128 letters, digits or `_ . : / -`, starting with a letter or digit. */
export const IndexItemId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/, 'must be 1-128 letters, digits or _ . : / -, starting with a letter or digit');

/** True for a namespace {@link IndexNamespace} accepts. */
export const isValidNamespace = (ns: unknown): ns is string => IndexNamespace.safeParse(ns).success;

/** True for an id {@link IndexItemId} accepts. */
export const isValidId = (id: unknown): id is string => IndexItemId.safeParse(id).success;

/**
 * A point in time for index metadata and search filters: milliseconds since the epoch, or an ISO 8601
 * date-time with an offset (`2026-12-07T10:00:00Z`), which becomes milliseconds.
 */
export const IndexTimestamp = z.union(
  [
    z.number().int('must be an integer (ms since the epoch)').min(0, 'must not be before 1970').max(8.64e15, 'is too far in the future'),
    z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
  ],
  { error: 'must be ms since the epoch or an ISO 8601 date-time' },
);

/**
 * Where an embedded item lives in the search index, and what search filters can select it by: the
 * tenant it belongs to, the deal it is about, its time (all optional; an item without a field never
 * matches a filter on that field).
 */
export const IndexTarget = z.strictObject({
  namespace: IndexNamespace,
  id: IndexItemId,
  tenant: IndexItemId.optional(),
  dealId: IndexItemId.optional(),
  ts: IndexTimestamp.optional(),
});
export type IndexTarget = z.output<typeof IndexTarget>;

/** Payload of an `embeddings` job. */
export const EmbeddingJobData = z.strictObject({
  text: WarehouseText,
  model: z.enum(EMBEDDING_MODELS, { error: `must be one of ${EMBEDDING_MODELS.join(', ')}` }).default(DEFAULT_EMBEDDING_MODEL),
  index: IndexTarget.optional(),
  /** Who the job is for (src/contracts/tenants.ts `Tenant`; absent: the shared default tenant). */
  tenant: IndexItemId.optional(),
  /** Trace context carried from the producer (W3C traceparent), set by the fleet, not by callers. */
  trace: z.record(z.string(), z.string()).optional(),
});
export type EmbeddingJobData = z.output<typeof EmbeddingJobData>;
export type EmbeddingJobInput = z.input<typeof EmbeddingJobData>;

/** Which warehouse call served a job; shown in the job's log and result (Bull Board). */
export interface BatchRef {
  /** Unique per batch call, e.g. `emb-7f3a9c-42`. */
  batchId: string;
  /** Distinct keys in that call. */
  size: number;
  /** Jobs the call answered (identical texts share one key). */
  jobs?: number;
}

/** Result of an `embeddings` job. Decode `vector` with `decodeVector`. */
export interface EmbeddingResult {
  model: EmbeddingModel;
  dims: number;
  /** base64 of little-endian float32. */
  vector: string;
  /** The batch that computed it; absent when the cache answered. */
  batch?: BatchRef;
  cached: boolean;
  /** Which tier answered: the in-process cache, Redis, or the warehouse. */
  tier?: 'l1' | 'l2' | 'warehouse';
  /** Set when the vector was upserted into the search index. */
  indexed?: IndexTarget;
}
