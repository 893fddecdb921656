import { randomBytes } from 'node:crypto';
import type { DuckLease } from './duck-pool';
import type { SessionSettings } from './session-parameters';
import { SnowflakeError } from './snowflake-error';
import type { StatementParameters } from './statement-parameters';

/** Snowflake's defaults: a session token lives an hour, the master token (used to renew it) four. */
export const SESSION_TOKEN_VALIDITY_S = 3600;
export const MASTER_TOKEN_VALIDITY_S = 4 * 3600;

/** One logged-in driver connection. */
export interface Session {
  readonly id: number;
  readonly user: string;
  readonly database: string;
  readonly schema: string;
  readonly warehouse: string;
  readonly role: string;
  token: string;
  tokenExpiresAt: number;
  readonly masterToken: string;
  readonly masterExpiresAt: number;
  /** The DuckDB connection held by an open explicit transaction (BEGIN … COMMIT), if any. */
  tx?: DuckLease;
  /** Serialises this session's statements while a transaction pins one connection. */
  txQueue: Promise<unknown>;
  /** QUERY_TAG and STATEMENT_TIMEOUT_IN_SECONDS as set by `ALTER SESSION` (absent: never set, or unset). */
  parameters?: StatementParameters;
  /** Every parameter set at login or by `ALTER SESSION`, reported back in each reply's `data.parameters`. */
  readonly settings: SessionSettings;
}

// The Snowflake error codes the driver's session state machine reacts to (lib/constants/gs_errors.js).
const INVALID_SESSION_TOKEN = '390104';
const GONE_SESSION = '390111';
const SESSION_TOKEN_EXPIRED = '390112';
const MASTER_TOKEN_EXPIRED = '390114';
const MISSING_AUTH = '390101';

function newToken(kind: string): string {
  return `ver:1-hint:${kind}-${randomBytes(24).toString('base64url')}`;
}

/** Tokens of ended sessions remembered, so that they get "session gone" rather than "invalid token". */
const RETIRED_TOKENS = 100_000;

/**
 * Sessions by token. The driver reacts to four answers here: `390112` (session token expired) makes it
 * renew through `/session/token-request` with the master token; `390111` (session gone) and `390114`
 * (master token expired) make it drop the connection for good, so every later call on that connection
 * fails and a pool must open a new one. A token this server never issued gets HTTP 401 with `390104`,
 * as from Snowflake, which the driver reports as its invalid-token error (401004) on that call only.
 */
export class SessionStore {
  private readonly byToken = new Map<string, Session>();
  /** Session tokens of sessions that ended or were renewed away, oldest first. */
  private readonly retired = new Set<string>();
  private readonly byMaster = new Map<string, Session>();
  private readonly byId = new Map<number, Session>();
  private nextId = 1_000_001;

  constructor(private readonly now: () => number = Date.now) {}

  create(fields: Pick<Session, 'user' | 'database' | 'schema' | 'warehouse' | 'role'>, settings: SessionSettings = new Map()): Session {
    const t = this.now();
    const session: Session = {
      ...fields,
      settings,
      id: this.nextId++,
      token: newToken('session'),
      tokenExpiresAt: t + SESSION_TOKEN_VALIDITY_S * 1000,
      masterToken: newToken('master'),
      masterExpiresAt: t + MASTER_TOKEN_VALIDITY_S * 1000,
      txQueue: Promise.resolve(),
    };
    this.byToken.set(session.token, session);
    this.byMaster.set(session.masterToken, session);
    this.byId.set(session.id, session);
    return session;
  }

  /** The session a session token belongs to, or the Snowflake error the driver expects. */
  authenticate(token: string | undefined): Session {
    if (!token) throw new SnowflakeError(MISSING_AUTH, 'Authorization header not found in the request data.', '08001');
    const session = this.byToken.get(token);
    if (!session && !this.retired.has(token)) {
      throw new SnowflakeError(INVALID_SESSION_TOKEN, 'Invalid session token. Please log in again.', '08001', {}, 401);
    }
    if (!session) {
      throw new SnowflakeError(GONE_SESSION, 'Session no longer exists.  New login required to access the service.', '08001');
    }
    if (this.now() >= session.tokenExpiresAt) {
      throw new SnowflakeError(SESSION_TOKEN_EXPIRED, 'Session token has expired. Renew it with the master token.', '08001');
    }
    return session;
  }

  /** Issues a new session token for a master token (`/session/token-request`). */
  renew(masterToken: string | undefined): Session {
    const session = masterToken ? this.byMaster.get(masterToken) : undefined;
    if (!session || this.now() >= session.masterExpiresAt) {
      throw new SnowflakeError(MASTER_TOKEN_EXPIRED, 'Authentication token has expired.  The user must authenticate again.', '08001');
    }
    this.byToken.delete(session.token);
    this.retire(session.token);
    session.token = newToken('session');
    session.tokenExpiresAt = this.now() + SESSION_TOKEN_VALIDITY_S * 1000;
    this.byToken.set(session.token, session);
    return session;
  }

  /** Removes one session; returns it so the caller can release what it holds. */
  delete(session: Session): void {
    this.byToken.delete(session.token);
    this.retire(session.token);
    this.byMaster.delete(session.masterToken);
    this.byId.delete(session.id);
  }

  /** Removes every session (and returns them): the next call on any connection gets `390111`. */
  clear(): Session[] {
    const all = [...this.byId.values()];
    for (const token of this.byToken.keys()) this.retire(token);
    this.byToken.clear();
    this.byMaster.clear();
    this.byId.clear();
    return all;
  }

  /** Removes sessions whose master token expired (clients that vanished without logging out). */
  sweepExpired(): Session[] {
    const t = this.now();
    const gone = [...this.byId.values()].filter((s) => t >= s.masterExpiresAt);
    for (const s of gone) this.delete(s);
    return gone;
  }

  private retire(token: string): void {
    this.retired.add(token);
    if (this.retired.size > RETIRED_TOKENS) this.retired.delete(this.retired.values().next().value!);
  }

  get size(): number {
    return this.byId.size;
  }
}
