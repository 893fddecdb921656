import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { SnowflakeError } from './snowflake-error';

/** Snowflake refuses RSA keys shorter than this (its key-pair guide asks for 2048-bit keys). */
const MIN_RSA_MODULUS_BITS = 2048;

/** A public key registered on a user (`RSA_PUBLIC_KEY` or `RSA_PUBLIC_KEY_2`). */
export interface RegisteredKey {
  readonly key: KeyObject;
  /**
   * `SHA256:<base64 of the SHA-256 of the key's DER SubjectPublicKeyInfo>`: what `DESC USER` shows as
   * `RSA_PUBLIC_KEY_FP` and what a key-pair JWT names in its `iss` claim after `ACCOUNT.USER.`.
   */
  readonly fingerprint: string;
  /** The base64 body as stored (no PEM lines, no whitespace), shown by `DESC USER`. */
  readonly body: string;
}

/**
 * Snowflake's refusal of a value that is not a usable RSA public key. The message is the one Snowflake
 * returns (seen in the terraform provider's acceptance tests and in user reports); its numeric code was
 * not found in any public source, so the invalid-value code `001008` stands in for it.
 */
function invalidPublicKey(): SnowflakeError {
  return new SnowflakeError('001008', "SQL execution error:\nNew public key rejected by current policy. Reason: 'Invalid Public key'", '22023');
}

/**
 * Reads a public key the way users paste one into `ALTER USER … SET RSA_PUBLIC_KEY = '…'`: the base64
 * body of a PEM `PUBLIC KEY` (SPKI), with or without the BEGIN/END lines and line breaks. Anything that
 * is not an RSA key of at least 2048 bits is refused like Snowflake refuses it.
 *
 * @example
 *   parseRsaPublicKey(publicKeyPem).fingerprint // 'SHA256:3q2+7w…='
 */
export function parseRsaPublicKey(value: string): RegisteredKey {
  const body = value.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  if (body.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw invalidPublicKey();
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(body, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw invalidPublicKey();
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < MIN_RSA_MODULUS_BITS) throw invalidPublicKey();
  return { key, fingerprint: publicKeyFingerprint(key), body };
}

/** `SHA256:<base64>` of the key's DER SPKI, computed exactly as snowflake-sdk's auth_keypair.js does. */
function publicKeyFingerprint(key: KeyObject): string {
  return `SHA256:${createHash('sha256')
    .update(key.export({ format: 'der', type: 'spki' }))
    .digest('base64')}`;
}
