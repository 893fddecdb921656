import snowflake from 'snowflake-sdk';
import { WarehouseError } from '../warehouse/errors';
import type { Credentials } from './credentials';

/** What the pool needs to open one warehouse session. */
export interface SnowflakeConnectionSettings {
  /** Account identifier; any string for the local warehouse (the access URL decides where it goes). */
  account: string;
  username: string;
  /** How to log in (key pair, token, OAuth, password); see `snowflakeCredentials`. Default: `password`. */
  credentials?: Credentials;
  /** Password login, when `credentials` is not given. */
  password?: string;
  /** e.g. `http://127.0.0.1:8085` for the local warehouse; unset for real Snowflake. */
  accessUrl?: string;
  warehouse?: string;
  database?: string;
  schema?: string;
  role?: string;
}

/** Opens and closes sessions. The pool depends on this interface, so a test can count or break logins. */
export interface Connector {
  open(): Promise<snowflake.Connection>;
  close(conn: snowflake.Connection): Promise<void>;
}

let driverConfigured = false;
/**
 * The driver logs to `snowflake.log` in the working directory by default; the fleet has its own logs.
 * Configured once per process because the driver's logger is global.
 */
function configureDriverOnce(): void {
  if (driverConfigured) return;
  driverConfigured = true;
  snowflake.configure({ logLevel: 'OFF' as never, additionalLogToConsole: false } as never);
}

/**
 * Classifies driver errors: login and network failures are retried; wrong credentials are not. A statement
 * Snowflake answered with an error keeps its query id (the driver has it in `data.queryId`).
 */
export function toWarehouseError(err: unknown, fallback: string): WarehouseError {
  if (err instanceof WarehouseError) return err;
  const e = err as { message?: string; code?: string | number; sqlState?: string; data?: { sqlState?: string; queryId?: string }; queryId?: string };
  const code = e?.code === undefined ? undefined : String(e.code);
  const message = e?.message ?? fallback;
  const transient = isTransientCode(code, message);
  return new WarehouseError(message, { code, sqlState: e?.sqlState ?? e?.data?.sqlState, transient, queryId: e?.queryId ?? e?.data?.queryId, cause: err });
}

// Snowflake session errors (expired/invalid token, session gone), the driver's "terminated connection"
// (407002: this session object is dead, a new one will do), its invalid-token error (401004: Snowflake
// answered HTTP 401 with 390104 to a token it does not know) and its network codes.
// 000630: the warehouse stopped the statement at its STATEMENT_TIMEOUT_IN_SECONDS, as our own deadline would.
const TRANSIENT_CODES = new Set([
  '000630',
  '401004',
  '407002',
  '390104',
  '390111',
  '390112',
  '390113',
  '390114',
  '390318',
  '402001',
  '402002',
  '405501',
  '405502',
  '405503',
]);
// Wrong credentials (password, JWT signature or key fingerprint, OAuth token, access token): a retry
// with the same credentials fails the same way. An expired OAuth token (390318) stays transient: the
// next login reads a rotated SNOWFLAKE_TOKEN_FILE.
const NON_TRANSIENT_CODES = new Set(['390100', '390101', '390102', '390106', '390110', '390145', '390144', '394304', '390303', '390309', '394400']);

function isTransientCode(code: string | undefined, message: string): boolean {
  if (code && NON_TRANSIENT_CODES.has(code)) return false;
  if (code && TRANSIENT_CODES.has(code)) return true;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|socket hang up|Network error|network|timeout|Request to Snowflake failed|session (has )?(expired|gone|no longer exists)/i.test(
    message,
  );
}

// The warehouse answered that it does not know the session (it restarted, or the session expired) - the
// driver then reports its own 407002, or 401004 for a token it was told is invalid - or the driver had
// already dropped it: a fresh session will do.
const SESSION_GONE_CODES = new Set(['401004', '407002', '390104', '390111', '390114']);

/** The session is gone, not the warehouse: the call can go again at once on a new session. */
export function isSessionGone(err: WarehouseError): boolean {
  // The driver's 401004 ("Invalid token": HTTP 401 with 390104) can arrive with its code only in the message.
  return (err.code !== undefined && SESSION_GONE_CODES.has(err.code)) || /Request to Snowflake failed\.\s+Invalid token/.test(err.message);
}

/** Session-level failures after which a connection must not go back to the pool. */
export function isSessionBroken(err: WarehouseError): boolean {
  return err.transient;
}

/** A refused login says which user and method failed and, for a key pair, which key was offered. */
function loginError(err: unknown, settings: SnowflakeConnectionSettings): WarehouseError {
  const e = toWarehouseError(err, 'login failed');
  if (e.transient) return e;
  const method = settings.credentials?.method ?? 'SNOWFLAKE';
  const fp = settings.credentials?.fingerprint();
  const hint = fp ? `; the key offered has fingerprint ${fp} (compare RSA_PUBLIC_KEY_FP and RSA_PUBLIC_KEY_2_FP in DESC USER ${settings.username})` : '';
  return new WarehouseError(`login as ${settings.username} with ${method} refused: ${e.message}${hint}`, {
    code: e.code,
    sqlState: e.sqlState,
    transient: false,
    cause: err,
  });
}

/** The production connector: the real snowflake-sdk driver. */
export function snowflakeConnector(settings: SnowflakeConnectionSettings): Connector {
  configureDriverOnce();
  if (!settings.credentials && settings.password === undefined) throw new TypeError('snowflakeConnector: give `credentials` or `password`');
  return {
    async open() {
      const login = settings.credentials?.connectionOptions() ?? { password: settings.password };
      const conn = snowflake.createConnection({
        account: settings.account,
        username: settings.username,
        ...login,
        accessUrl: settings.accessUrl,
        warehouse: settings.warehouse,
        database: settings.database,
        schema: settings.schema,
        role: settings.role,
        application: 'warehouse-fleet',
        // Bound the driver's own login retries; each call has its own deadline on top.
        sfRetryMaxLoginRetries: 2,
        clientSessionKeepAlive: false,
      } as snowflake.ConnectionOptions);
      await new Promise<void>((resolve, reject) => {
        conn.connect((err) => (err ? reject(loginError(err, settings)) : resolve()));
      });
      return conn;
    },
    close(conn) {
      return new Promise<void>((resolve) => {
        if (!conn.isUp()) return resolve();
        // A failed logout (server gone) is not an error for the pool: the session is dropped either way.
        conn.destroy(() => resolve());
      });
    },
  };
}
