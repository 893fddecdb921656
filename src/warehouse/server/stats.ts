/** What a statement mostly does, judged from its text (for stats and benchmarks). */
export type QueryKind = 'embed' | 'sentiment' | 'summarize' | 'other';

/** Counters of the local warehouse since start or the last reset (`activeSessions` is a gauge). */
export interface WarehouseStats {
  /** Successful logins. */
  logins: number;
  /** Logins refused (wrong user or password). */
  failedLogins: number;
  /** Sessions currently open. */
  activeSessions: number;
  /** query-requests executed (replays not included), successful or not. */
  queries: number;
  /** `queries` split by kind: statements calling EMBED_TEXT_768, SENTIMENT, SUMMARIZE, or none of them. */
  queriesByKind: Record<QueryKind, number>;
  /** Executed queries that returned an error (SQL errors, injected faults, cancellations). */
  failedQueries: number;
  /** Texts embedded by EMBED_TEXT_768 (a 500-text batch adds 500 to this and 1 to `queries`). */
  embeddedTexts: number;
  /** Rows returned to clients by successful queries. */
  rowsReturned: number;
  /** query-requests answered from the replay cache because their requestId was seen before. */
  replayedRequests: number;
  /** Session tokens renewed through /session/token-request. */
  tokenRenewals: number;
  /** Heartbeats answered. */
  heartbeats: number;
  /** Abort requests received. */
  aborts: number;
}

export function classifyQuery(sql: string): QueryKind {
  if (/EMBED_TEXT_768/i.test(sql)) return 'embed';
  if (/\bSENTIMENT\s*\(/i.test(sql)) return 'sentiment';
  if (/\bSUMMARIZE\s*\(/i.test(sql)) return 'summarize';
  return 'other';
}

/** Mutable counters behind `stats()`; a copy is handed out so callers cannot change them. */
export class StatsRecorder {
  private s = StatsRecorder.zero();

  private static zero(): Omit<WarehouseStats, 'activeSessions'> {
    return {
      logins: 0,
      failedLogins: 0,
      queries: 0,
      queriesByKind: { embed: 0, sentiment: 0, summarize: 0, other: 0 },
      failedQueries: 0,
      embeddedTexts: 0,
      rowsReturned: 0,
      replayedRequests: 0,
      tokenRenewals: 0,
      heartbeats: 0,
      aborts: 0,
    };
  }

  /** The live counters, for incrementing. */
  get counters(): Omit<WarehouseStats, 'activeSessions'> {
    return this.s;
  }

  snapshot(activeSessions: number): WarehouseStats {
    return { ...this.s, queriesByKind: { ...this.s.queriesByKind }, activeSessions };
  }

  reset(): void {
    this.s = StatsRecorder.zero();
  }
}
