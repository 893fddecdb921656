import { verifyKeyPairJwt } from './key-pair-jwt';
import { LoginRefusedError } from './login-refused-error';
import type { RegisteredKey } from './rsa-public-key';
import type { LoginAuthenticator, LoginFailureReason } from './stats';
import type { UserRegistry, WarehouseUser } from './users';

/** The credential part of a login-request body (`data`), as snowflake-sdk 3.3 sends it. */
export interface LoginRequest {
  /** `data.AUTHENTICATOR` upper-cased; `SNOWFLAKE` when absent (password login). */
  readonly authenticator: string;
  /** `data.LOGIN_NAME`; empty when absent (an OAuth token names its user). */
  readonly loginName: string;
  /** `data.ACCOUNT_NAME` upper-cased. */
  readonly account: string;
  readonly password?: string;
  /** The JWT, programmatic access token or OAuth access token. */
  readonly token?: string;
}

/** Who logged in, how, and the role the credential imposes (a token's role restriction), if any. */
export interface LoginIdentity {
  readonly user: WarehouseUser;
  readonly authenticator: LoginAuthenticator;
  readonly role?: string;
}

export function readLoginRequest(data: Record<string, unknown>): LoginRequest {
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    authenticator: (text(data.AUTHENTICATOR) || 'SNOWFLAKE').toUpperCase(),
    loginName: text(data.LOGIN_NAME) ?? '',
    account: (text(data.ACCOUNT_NAME) ?? '').toUpperCase(),
    password: text(data.PASSWORD),
    token: text(data.TOKEN),
  };
}

// Snowflake's login refusals. Sources:
// - 390100 and its message: Snowflake's reply to a wrong user or password (already served here, and
//   what drivers assert). Real Snowflake also refuses a SERVICE user's password login; the code it uses
//   for that was not found in public sources, so it is refused with 390100 too, which reveals nothing.
// - 390144 "JWT token is invalid. [<uuid>]": Snowflake's key-pair refusal (its key-pair troubleshooting
//   guide; snowflake-connector-nodejs test/authentication/testKeyPair.js matches /JWT token is invalid./).
// - 394304 JWT_TOKEN_INVALID_PUBLIC_KEY_FINGERPRINT_MISMATCH: what Snowflake returns when the key that
//   signed the JWT is not registered on the user (snowflakedb/snowflake-jdbc#1677, "changed from 390144");
//   the message stays the JWT one, so clients matching "JWT token is invalid" still match.
// - 394400 "Programmatic access token is invalid.": snowflakedb/gosnowflake's PAT tests (wiremock
//   mapping auth/pat/invalid_token.json, authnMethod PAT) and snowflake-connector-nodejs's
//   testPAT.js, which expects it for a bad token and for a token of another user. No separate code for an
//   expired or revoked token was found; users report this same error for those.
// - 390303 "Invalid OAuth access token. [<uuid>]", 390318 (OAuth access token expired) and 390309
//   (token of another user): snowflake-sdk's own gs_errors.js (390303, 390318) and the drivers' OAuth
//   tests (testOauth.js: 'Invalid OAuth access token. ', 'The user you were trying to authenticate as
//   differs from the user tied to the access token.', code 390309).
const refusals = {
  password: (reason: LoginFailureReason) => new LoginRefusedError('390100', 'Incorrect username or password was specified.', reason, 'USERNAME_PASSWORD'),
  jwt: (reason: LoginFailureReason) =>
    new LoginRefusedError(reason === 'jwt_fingerprint_mismatch' ? '394304' : '390144', 'JWT token is invalid. [{incident}]', reason, 'KEYPAIR'),
  pat: (reason: LoginFailureReason) => new LoginRefusedError('394400', 'Programmatic access token is invalid.', reason, 'PAT'),
  oauthInvalid: () => new LoginRefusedError('390303', 'Invalid OAuth access token. [{incident}]', 'oauth_invalid', 'OAUTH'),
  oauthExpired: () => new LoginRefusedError('390318', 'OAuth access token expired. [{incident}]', 'oauth_expired', 'OAUTH'),
  oauthOtherUser: () =>
    new LoginRefusedError(
      '390309',
      'The user you were trying to authenticate as differs from the user tied to the access token. [{incident}]',
      'oauth_user_mismatch',
      'OAUTH',
    ),
  unsupported: (authenticator: string) =>
    new LoginRefusedError(
      '390100',
      `Authenticator '${authenticator}' is not supported by the local warehouse (use SNOWFLAKE, SNOWFLAKE_JWT, PROGRAMMATIC_ACCESS_TOKEN or OAUTH).`,
      'unsupported_authenticator',
      'USERNAME_PASSWORD',
    ),
};

/**
 * Checks a login's credentials against the user registry the way Snowflake does; returns who logged in
 * or throws a {@link LoginRefusedError}. Never logs or echoes a credential.
 */
export class LoginVerifier {
  constructor(
    private readonly users: UserRegistry,
    private readonly now: () => number = Date.now,
  ) {}

  verify(req: LoginRequest): LoginIdentity {
    switch (req.authenticator) {
      case 'SNOWFLAKE':
      case 'USERNAME_PASSWORD_MFA': // no second factor locally: the password part is all there is
        return this.password(req);
      case 'SNOWFLAKE_JWT':
        return this.keyPair(req);
      case 'PROGRAMMATIC_ACCESS_TOKEN':
        return this.accessToken(req, req.token ?? req.password ?? '');
      case 'OAUTH':
        return this.oauth(req);
      default:
        throw refusals.unsupported(req.authenticator);
    }
  }

  private password(req: LoginRequest): LoginIdentity {
    const user = this.users.findLogin(req.loginName);
    const password = req.password ?? '';
    if (!user) throw refusals.password('unknown_user');
    // Snowflake accepts a programmatic access token wherever a password goes (third-party tools only
    // have a password field); that is also how a SERVICE user logs in from such a tool.
    const asToken = this.users.lookupToken(password);
    if (asToken.state === 'valid' && asToken.user === user) return { user, authenticator: 'PROGRAMMATIC_ACCESS_TOKEN', role: asToken.token.roleRestriction };
    if (!this.users.checkPassword(user, password)) throw refusals.password('wrong_password');
    if (user.type === 'SERVICE') throw refusals.password('password_not_allowed');
    return { user, authenticator: 'SNOWFLAKE' };
  }

  private keyPair(req: LoginRequest): LoginIdentity {
    const user = this.users.findLogin(req.loginName);
    if (!user || !req.token) throw refusals.jwt(user ? 'jwt_malformed' : 'unknown_user');
    const keys = [user.rsaPublicKey, user.rsaPublicKey2].filter((k): k is RegisteredKey => k !== undefined);
    const refused = verifyKeyPairJwt(req.token, { account: req.account, user: req.loginName.toUpperCase(), keys, nowMs: this.now() });
    if (refused) throw refusals.jwt(refused);
    return { user, authenticator: 'SNOWFLAKE_JWT' };
  }

  private accessToken(req: LoginRequest, secret: string): LoginIdentity {
    const user = this.users.findLogin(req.loginName);
    const found = this.users.lookupToken(secret);
    if (found.state === 'expired') throw refusals.pat('pat_expired');
    if (found.state === 'revoked') throw refusals.pat('pat_revoked');
    if (found.state !== 'valid' || !user || found.user !== user) throw refusals.pat('pat_invalid');
    return { user, authenticator: 'PROGRAMMATIC_ACCESS_TOKEN', role: found.token.roleRestriction };
  }

  private oauth(req: LoginRequest): LoginIdentity {
    const found = this.users.lookupOAuthToken(req.token ?? '');
    if (found.state === 'expired') throw refusals.oauthExpired();
    if (found.state !== 'valid') throw refusals.oauthInvalid();
    // The token names its user; a login name, if given, must be that user.
    if (req.loginName && this.users.findLogin(req.loginName) !== found.user) throw refusals.oauthOtherUser();
    return { user: found.user, authenticator: 'OAUTH', role: found.token.role };
  }
}
