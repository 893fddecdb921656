/**
 * A failure the local warehouse reports to the driver the way Snowflake does: HTTP 200 with
 * `success: false`, a Snowflake error `code`, a `message` and `data.sqlState`. Throw it anywhere in
 * request handling; the server turns it into that reply (never into a 5xx, which the driver would retry).
 */
export class SnowflakeError extends Error {
  constructor(
    /** Snowflake error code as a string, e.g. `'002003'` (object does not exist). */
    readonly code: string,
    message: string,
    /** ANSI SQLSTATE, e.g. `'42S02'`. */
    readonly sqlState: string,
    /** Extra fields merged into the reply's `data`. */
    readonly data: Record<string, unknown> = {},
    /** HTTP status of the reply: 200 for everything but the few refusals Snowflake sends otherwise (an invalid session token: 401). */
    readonly httpStatus = 200,
  ) {
    super(message);
    this.name = 'SnowflakeError';
  }
}
