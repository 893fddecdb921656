/** What a statement mostly does, judged from its text (for stats and benchmarks). */
export type QueryKind = 'embed' | 'sentiment' | 'summarize' | 'other';

/** How a session logged in (`data.AUTHENTICATOR`; a token given as a password counts as a token). */
export type LoginAuthenticator = 'SNOWFLAKE' | 'SNOWFLAKE_JWT' | 'PROGRAMMATIC_ACCESS_TOKEN' | 'OAUTH';

/** Why a login was refused; the driver only sees Snowflake's code and message, these tell them apart. */
export type LoginFailureReason =
  | 'unknown_user'
  | 'wrong_password'
  | 'password_not_allowed'
  | 'jwt_malformed'
  | 'jwt_bad_signature'
  | 'jwt_fingerprint_mismatch'
  | 'jwt_bad_claims'
  | 'jwt_expired'
  | 'jwt_lifetime_too_long'
  | 'jwt_issued_in_future'
  | 'pat_invalid'
  | 'pat_expired'
  | 'pat_revoked'
  | 'oauth_invalid'
  | 'oauth_expired'
  | 'oauth_user_mismatch'
  | 'unsupported_authenticator';

/** Counters of the local warehouse since start or the last reset (`activeSessions` is a gauge). */
export interface WarehouseStats {
  /** Successful logins. */
  logins: number;
  /** Logins refused, for any reason (see `failedLoginsByReason`). */
  failedLogins: number;
  /** `logins` by authenticator; an authenticator nobody used yet is absent. */
  loginsByAuthenticator: Partial<Record<LoginAuthenticator, number>>;
  /** `failedLogins` by reason; a reason that did not occur is absent. */
  failedLoginsByReason: Partial<Record<LoginFailureReason, number>>;
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
  /** Statements the server canceled at their STATEMENT_TIMEOUT_IN_SECONDS (error 000630). */
  statementTimeouts: number;
  /** Results too large to send inline, split into chunk files. */
  chunkedResults: number;
  /** Chunk files downloaded successfully. */
  chunksServed: number;
  /** Chunk downloads refused with 403 for a missing or wrong key (`x-amz-server-side-encryption-customer-key`). */
  chunkDownloadsRefused: number;
  /** Chunk downloads failed on purpose by the `'chunk-error'` fault. */
  chunkDownloadsFailed: number;
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
      loginsByAuthenticator: {},
      failedLoginsByReason: {},
      queries: 0,
      queriesByKind: { embed: 0, sentiment: 0, summarize: 0, other: 0 },
      failedQueries: 0,
      embeddedTexts: 0,
      rowsReturned: 0,
      replayedRequests: 0,
      tokenRenewals: 0,
      heartbeats: 0,
      aborts: 0,
      statementTimeouts: 0,
      chunkedResults: 0,
      chunksServed: 0,
      chunkDownloadsRefused: 0,
      chunkDownloadsFailed: 0,
    };
  }

  /** The live counters, for incrementing. */
  get counters(): Omit<WarehouseStats, 'activeSessions'> {
    return this.s;
  }

  // The two login maps are replaced, never changed in place, so `snapshot`'s shallow copy stays a copy.

  /** Counts a successful login (`logins` and `loginsByAuthenticator`). */
  countLogin(authenticator: LoginAuthenticator): void {
    this.s.logins++;
    const by = this.s.loginsByAuthenticator;
    this.s.loginsByAuthenticator = { ...by, [authenticator]: (by[authenticator] ?? 0) + 1 };
  }

  /** Counts a refused login (`failedLogins` and `failedLoginsByReason`). */
  countFailedLogin(reason: LoginFailureReason): void {
    this.s.failedLogins++;
    const by = this.s.failedLoginsByReason;
    this.s.failedLoginsByReason = { ...by, [reason]: (by[reason] ?? 0) + 1 };
  }

  snapshot(activeSessions: number): WarehouseStats {
    return { ...this.s, queriesByKind: { ...this.s.queriesByKind }, activeSessions };
  }

  reset(): void {
    this.s = StatsRecorder.zero();
  }
}
