import { verify } from 'node:crypto';
import type { RegisteredKey } from './rsa-public-key';
import type { LoginFailureReason } from './stats';

/** Snowflake refuses key-pair JWTs that live longer than an hour (`exp - iat`). */
const MAX_JWT_LIFETIME_S = 3600;
/** How far in the future `iat` may be (clock skew between client and server). */
const MAX_JWT_CLOCK_SKEW_S = 60;
/**
 * Timestamps above this are milliseconds. snowflake-sdk 3.3 (auth_keypair.js) puts `Date.now()` in `iat`
 * and `exp`, milliseconds where the JWT standard says seconds, and real Snowflake accepts it; other
 * drivers send seconds. 1e11 seconds is the year 5138, 1e11 ms is 1973: the two cannot be confused.
 */
const MS_THRESHOLD = 1e11;

export interface KeyPairJwtExpectation {
  /** `ACCOUNT_NAME` upper-cased. */
  readonly account: string;
  /** `LOGIN_NAME` upper-cased. */
  readonly user: string;
  /** The user's registered keys (`RSA_PUBLIC_KEY`, `RSA_PUBLIC_KEY_2`). */
  readonly keys: readonly RegisteredKey[];
  readonly nowMs: number;
}

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function seconds(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  return value > MS_THRESHOLD ? value / 1000 : value;
}

/**
 * Verifies a key-pair login JWT the way Snowflake does and returns why it is refused, or undefined if
 * it is good: RS256, `iss` = `ACCOUNT.USER.SHA256:<fingerprint>` naming one of the user's registered
 * keys, a signature made with that key, `sub` = `ACCOUNT.USER`, not expired, issued at most a minute in
 * the future and living at most an hour.
 *
 * @example
 *   verifyKeyPairJwt(data.TOKEN, { account: 'LOCAL', user: 'SVC', keys: [user.rsaPublicKey], nowMs: Date.now() })
 */
export function verifyKeyPairJwt(token: string, expected: KeyPairJwtExpectation): LoginFailureReason | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return 'jwt_malformed';
  const [headerPart, payloadPart, signaturePart] = parts;
  const header = decodeJson(headerPart);
  const claims = decodeJson(payloadPart);
  if (!header || !claims || header.alg !== 'RS256') return 'jwt_malformed';

  const subject = `${expected.account}.${expected.user}`;
  const issuerPrefix = `${subject}.`;
  if (typeof claims.iss !== 'string' || !claims.iss.startsWith(issuerPrefix)) return 'jwt_bad_claims';
  const fingerprint = claims.iss.slice(issuerPrefix.length);
  const key = expected.keys.find((k) => k.fingerprint === fingerprint);
  if (!key) return 'jwt_fingerprint_mismatch';

  const signed = Buffer.from(`${headerPart}.${payloadPart}`, 'ascii');
  const signature = Buffer.from(signaturePart, 'base64url');
  if (!verify('sha256', signed, key.key, signature)) return 'jwt_bad_signature';

  if (claims.sub !== subject) return 'jwt_bad_claims';
  const iat = seconds(claims.iat);
  const exp = seconds(claims.exp);
  if (iat === undefined || exp === undefined || exp < iat) return 'jwt_bad_claims';
  const now = expected.nowMs / 1000;
  if (exp <= now) return 'jwt_expired';
  if (iat > now + MAX_JWT_CLOCK_SKEW_S) return 'jwt_issued_in_future';
  if (exp - iat > MAX_JWT_LIFETIME_S) return 'jwt_lifetime_too_long';
  return undefined;
}
