/** How a statement ended (or that it has not): the vocabulary of `GET /monitoring/queries/<id>`. */
export type QueryExecutionStatus = 'RUNNING' | 'SUCCESS' | 'FAILED_WITH_ERROR' | 'ABORTED';

/**
 * One executed statement, like a row of Snowflake's QUERY_HISTORY. Replayed requests are not executions
 * and are not recorded.
 */
export interface QueryHistoryEntry {
  queryId: string;
  /** The session that ran it, whatever it logged in with. */
  sessionId: number;
  user: string;
  /** The first {@link QUERY_TEXT_MAX_CHARS} characters of the SQL text. */
  queryText: string;
  /** The QUERY_TAG in effect (statement level, else session level), `''` when none. */
  queryTag: string;
  /** STATEMENT_TIMEOUT_IN_SECONDS in effect (`0`: none). */
  statementTimeoutS: number;
  /** Epoch ms. */
  startTime: number;
  /** Epoch ms; `null` while running. */
  endTime: number | null;
  durationMs: number | null;
  /** `ABORTED` covers cancellation by the client and by the statement timeout (`errorCode` tells which). */
  status: QueryExecutionStatus;
  /** Snowflake error code, e.g. `'000630'` (statement timeout) or `'000604'` (canceled); `null` on success. */
  errorCode: string | null;
  errorMessage: string | null;
  /** Rows of the result (`0` for failures). */
  rowsProduced: number;
  /** Size of the reply body sent to the client. */
  bytesInline: number;
  /** Chunk files of a large result: how many, and their bytes uncompressed and as served (gzip). */
  chunkCount: number;
  bytesInChunks: number;
  bytesInChunksCompressed: number;
}

/** Which entries `queryHistory()` returns; every given field must match. */
export interface QueryHistoryFilter {
  queryTag?: string;
  sessionId?: number;
  user?: string;
  status?: QueryExecutionStatus;
  /** Most entries returned, newest first. Default: all that match. */
  limit?: number;
}

const QUERY_TEXT_MAX_CHARS = 1000;
const QUERY_HISTORY_SIZE = 10_000;

/**
 * The most recent {@link QUERY_HISTORY_SIZE} statements, oldest evicted first. Entries are created when a
 * statement starts (status `RUNNING`) and completed in place when it ends.
 */
export class QueryHistory {
  private readonly entries = new Map<string, QueryHistoryEntry>();

  constructor(private readonly maxEntries = QUERY_HISTORY_SIZE) {}

  start(
    fields: Pick<QueryHistoryEntry, 'queryId' | 'sessionId' | 'user' | 'queryText' | 'queryTag' | 'statementTimeoutS'>,
    now = Date.now(),
  ): QueryHistoryEntry {
    const entry: QueryHistoryEntry = {
      ...fields,
      queryText: fields.queryText.slice(0, QUERY_TEXT_MAX_CHARS),
      startTime: now,
      endTime: null,
      durationMs: null,
      status: 'RUNNING',
      errorCode: null,
      errorMessage: null,
      rowsProduced: 0,
      bytesInline: 0,
      chunkCount: 0,
      bytesInChunks: 0,
      bytesInChunksCompressed: 0,
    };
    this.entries.set(entry.queryId, entry);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }

  /** Records how a statement ended. */
  finish(
    entry: QueryHistoryEntry,
    outcome: Partial<
      Pick<
        QueryHistoryEntry,
        | 'queryTag'
        | 'statementTimeoutS'
        | 'errorCode'
        | 'errorMessage'
        | 'rowsProduced'
        | 'bytesInline'
        | 'chunkCount'
        | 'bytesInChunks'
        | 'bytesInChunksCompressed'
      >
    > & {
      status: Exclude<QueryExecutionStatus, 'RUNNING'>;
    },
    now = Date.now(),
  ): void {
    Object.assign(entry, outcome);
    entry.endTime = now;
    entry.durationMs = now - entry.startTime;
  }

  /** Matching entries, newest first, as copies. */
  list(filter: QueryHistoryFilter = {}): QueryHistoryEntry[] {
    const limit = filter.limit ?? Infinity;
    const out: QueryHistoryEntry[] = [];
    const all = [...this.entries.values()];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      const e = all[i];
      if (filter.queryTag !== undefined && e.queryTag !== filter.queryTag) continue;
      if (filter.sessionId !== undefined && e.sessionId !== filter.sessionId) continue;
      if (filter.user !== undefined && e.user.toUpperCase() !== filter.user.toUpperCase()) continue;
      if (filter.status !== undefined && e.status !== filter.status) continue;
      out.push({ ...e });
    }
    return out;
  }
}
