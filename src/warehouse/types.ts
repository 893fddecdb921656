/** A value bound to a `?` placeholder. User input reaches SQL only this way, never spliced into text. */
export type BindValue = string | number | boolean | null | Date;

/** One row keyed by (upper-case, as Snowflake returns them) column name. */
export type Row = Record<string, unknown>;

/** Which of the fleet's work a statement does; it travels as the statement's QUERY_TAG. */
export interface StatementTag {
  /** The queue whose jobs the statement serves (costs are counted per queue). */
  readonly queue?: string;
  /** The coalesced batch, as the jobs' logs name it. */
  readonly batchId?: string;
  /** Jobs served by the statement. */
  readonly jobs?: number;
}

/** The input one Cortex function reads in a statement, for cost figures (see src/pool/cost.ts). */
interface CortexInput {
  /** e.g. `EMBED_TEXT_768`, `SENTIMENT`, `SUMMARIZE`. */
  readonly function: string;
  readonly model?: string;
  /** Characters of input text bound to the statement. */
  readonly inputChars?: number;
  /** Or the result column holding each row's input length, for texts that stay in the warehouse. */
  readonly charsColumn?: string;
}

export interface QueryOptions {
  /** Deadline for this call including waiting for a connection; default: the client's configured timeout. */
  readonly timeoutMs?: number;
  /** Short name of the operation (e.g. `embed_texts`) for logs, metrics, traces and the QUERY_TAG. */
  readonly label?: string;
  /** Aborts the call (the statement is cancelled and the call rejects). */
  readonly signal?: AbortSignal;
  /** Queue, batch and job count, sent as the statement's QUERY_TAG. */
  readonly tag?: StatementTag;
  /** Cortex input of the statement, for cost figures. */
  readonly cortex?: readonly CortexInput[];
  /**
   * Told Snowflake's query id of the statement whose rows the call returned, once the call succeeded (after
   * retries: the attempt that answered). A failed call's error carries its statement's own (`WarehouseError.queryId`).
   */
  readonly onQueryId?: (queryId: string) => void;
}

/**
 * The warehouse as the rest of the fleet sees it: one bound statement in, rows out. The production
 * implementation is a pooled snowflake-sdk client (`src/pool`); queries (`src/warehouse/queries`) are
 * written against this interface only.
 */
export interface Warehouse {
  /** All rows of the result. */
  query<R extends Row = Row>(sql: string, binds?: readonly BindValue[], opts?: QueryOptions): Promise<R[]>;
  /**
   * Hands each row to `onRow` as it arrives (a large result comes in chunks) and resolves to the row
   * count, so a caller that turns rows into something smaller never holds the whole raw result. A retried
   * attempt starts over: `onRow` must tolerate seeing rows again (overwrite by key, never append blindly).
   * A throw from `onRow` fails the call.
   */
  each<R extends Row = Row>(sql: string, binds: readonly BindValue[], onRow: (row: R) => void, opts?: QueryOptions): Promise<number>;
}
