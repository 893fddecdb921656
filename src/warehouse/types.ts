/** A value bound to a `?` placeholder. User input reaches SQL only this way, never spliced into text. */
export type BindValue = string | number | boolean | null | Date;

/** One row keyed by (upper-case, as Snowflake returns them) column name. */
export type Row = Record<string, unknown>;

export interface QueryOptions {
  /** Deadline for this call including waiting for a connection; default: the client's configured timeout. */
  readonly timeoutMs?: number;
  /** Short name of the operation (e.g. `embed_texts`) for logs, metrics and traces. */
  readonly label?: string;
  /** Aborts the call (the statement is cancelled and the call rejects). */
  readonly signal?: AbortSignal;
}

/**
 * The warehouse as the rest of the fleet sees it: one bound statement in, rows out. The production
 * implementation is a pooled snowflake-sdk client (`src/pool`); queries (`src/warehouse/queries`) are
 * written against this interface only.
 */
export interface Warehouse {
  query<R extends Row = Row>(sql: string, binds?: readonly BindValue[], opts?: QueryOptions): Promise<R[]>;
}
