import snowflake from 'snowflake-sdk';

/** A row as the driver hands it over. */
export type Row = Record<string, unknown>;

/** What the driver's errors carry: Snowflake's code and SQLSTATE, the query id, the HTTP status of a chunk download. */
export type DriverError = Error & { code?: string | number; sqlState?: string; data?: { queryId?: string }; response?: { statusCode?: number } };

// The driver logs to ./snowflake.log and the console by default; the tests read its errors instead.
snowflake.configure({ logLevel: 'OFF', additionalLogToConsole: false } as never);

/**
 * Logs the real driver in to a local server at `url` (as the admin user `fleet`/`fleet` unless `options`
 * say otherwise: another user, password, authenticator, key or token).
 */
export function connect(url: string, options: Record<string, unknown> = {}): Promise<snowflake.Connection> {
  const conn = snowflake.createConnection({
    account: 'local',
    username: 'fleet',
    password: 'fleet',
    accessUrl: url,
    ...options,
  } as snowflake.ConnectionOptions);
  return new Promise((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve(conn))));
}

/** A bind value as the tests send them. */
export type Bind = string | number | boolean | null;

/** Runs one statement through the driver and resolves with its rows; `extra` adds execute options (e.g. `parameters`). */
export function exec(conn: snowflake.Connection, sqlText: string, binds?: readonly Bind[], extra: Record<string, unknown> = {}): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    conn.execute({
      sqlText,
      binds: binds as never,
      ...extra,
      complete: (err, _stmt, rows) => (err ? reject(err) : resolve((rows ?? []) as Row[])),
    });
  });
}

/** Logs out (if still logged in). */
export function destroy(conn: snowflake.Connection): Promise<void> {
  return new Promise((resolve) => (conn.isUp() ? conn.destroy(() => resolve()) : resolve()));
}

/** The error `p` rejects with; fails the test when it resolves. */
export async function failure(p: Promise<unknown>): Promise<DriverError> {
  try {
    await p;
  } catch (err) {
    return err as DriverError;
  }
  throw new Error('expected the call to fail');
}

/** Logs in as the admin user over plain HTTP, as the driver does, and returns the session and master tokens. */
export async function httpLogin(url: string): Promise<{ token: string; masterToken: string }> {
  const res = await fetch(`${url}/session/v1/login-request`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { LOGIN_NAME: 'fleet', PASSWORD: 'fleet' } }),
  });
  const body = (await res.json()) as { data: { token: string; masterToken: string } };
  return body.data;
}
