import { randomUUID } from 'node:crypto';
import type { LoginFailureReason } from './stats';

/**
 * A login the local warehouse refuses. The server answers it as Snowflake does: HTTP 200 with
 * `success: false`, Snowflake's `code` and `message`, and `data.nextAction: 'RETRY_LOGIN'`. snowflake-sdk
 * turns that into a connect error carrying `code` and `message` and does not retry it (it retries a
 * login only on network errors and HTTP 5xx/408/429), so a wrong credential fails at once.
 *
 * `reason` is for the server's stats and log only: Snowflake tells the client as little as possible,
 * and the finer reason is what an administrator would look up by the incident id (the UUID that, like
 * Snowflake's, ends the JWT and OAuth messages; Snowflake's `SYSTEM$GET_LOGIN_FAILURE_DETAILS`).
 */
export class LoginRefusedError extends Error {
  /** Logged with `reason`, so a refused login can be traced from what the client saw. */
  readonly incident = randomUUID();

  constructor(
    /** Snowflake's error code, e.g. `'390144'`. */
    readonly code: string,
    /** Snowflake's message; `{incident}` is replaced by the incident id. */
    message: string,
    readonly reason: LoginFailureReason,
    /** `data.authnMethod` in the reply, e.g. `'KEYPAIR'`. */
    readonly authnMethod: string,
  ) {
    super();
    this.name = 'LoginRefusedError';
    this.message = message.replace('{incident}', this.incident);
  }
}
