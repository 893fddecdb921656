import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type snowflake from 'snowflake-sdk';
import { ConfigError, type SnowflakeAuthSettings } from '../config';

/**
 * The login part of snowflake-sdk's connection options, for one new session. Called at every login, so
 * a key or token kept in a file is read again once the file changes (a rotated Kubernetes Secret is seen
 * by the next session without a restart).
 */
export interface Credentials {
  /** The authenticator, for logs and `fleet config` (never a secret). */
  readonly method: SnowflakeAuthSettings['method'];
  /** Key pair only: `SHA256:<base64>` of the public key, as `DESC USER` shows RSA_PUBLIC_KEY_FP. */
  fingerprint(): string | undefined;
  /** Key pair only: the public key (SPKI PEM), what `ALTER USER … SET RSA_PUBLIC_KEY` registers. */
  publicKey(): string | undefined;
  /** Options to spread into `snowflake.createConnection` for the next login. */
  connectionOptions(): Partial<snowflake.ConnectionOptions>;
}

/** A secret given inline or as a file that is re-read when its modification time or size changes. */
/** A key or token file was read again after it changed: taken, or refused (the last good one stays in use). */
export interface SecretReloadEvent {
  variable: string;
  path: string;
  ok: boolean;
  /** Why a changed file was refused (never its content). */
  reason?: string;
}

class SecretFile<T> {
  private seen?: { mtimeMs: number; size: number; value: T };

  constructor(
    private readonly variable: string,
    private readonly path: string,
    private readonly parse: (text: string, variable: string) => T,
    private readonly onReload?: (event: SecretReloadEvent) => void,
  ) {}

  private report(event: Omit<SecretReloadEvent, 'variable' | 'path'>): void {
    try {
      this.onReload?.({ variable: this.variable, path: this.path, ...event });
    } catch {
      // a listener must never break a login
    }
  }

  get(): T {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(this.path);
    } catch (err) {
      // A file that vanished mid-rotation: keep the last good value rather than fail every login.
      if (this.seen) return this.seen.value;
      throw new ConfigError([`${this.variable}=${this.path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
    }
    if (this.seen && this.seen.mtimeMs === st.mtimeMs && this.seen.size === st.size) return this.seen.value;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if (this.seen) return this.seen.value;
      throw new ConfigError([`${this.variable}=${this.path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
    }
    let value: T;
    try {
      value = this.parse(text, `${this.variable}=${this.path}`);
    } catch (err) {
      // A half-written file during rotation: go on with the last good value and look again next login.
      if (this.seen) {
        this.report({ ok: false, reason: err instanceof ConfigError ? err.problems.join('; ') : (err as Error).message });
        return this.seen.value;
      }
      throw err;
    }
    if (this.seen) this.report({ ok: true });
    this.seen = { mtimeMs: st.mtimeMs, size: st.size, value };
    return value;
  }
}

interface ParsedKey {
  /** Unencrypted PKCS#8 PEM, what the driver signs with. */
  pem: string;
  fingerprint: string;
  /** SPKI PEM of the public half. */
  publicPem: string;
}

/**
 * Checks a private key the way Snowflake needs it: PEM, PKCS#8 (`BEGIN PRIVATE KEY` or `BEGIN ENCRYPTED
 * PRIVATE KEY`; a PKCS#1 `BEGIN RSA PRIVATE KEY` is refused with the openssl command that converts it),
 * RSA, decryptable with the passphrase. `where` names the variable in every error; the key never appears.
 */
function parsePrivateKey(text: string, where: string, passphrase: string | undefined): ParsedKey {
  const pem = text.trim();
  const header = /^-----BEGIN ([A-Z0-9 ]+)-----/m.exec(pem)?.[1];
  if (!header) throw new ConfigError([`${where}: not a PEM private key (no -----BEGIN … PRIVATE KEY----- line)`]);
  if (header === 'RSA PRIVATE KEY') {
    throw new ConfigError([
      `${where}: a PKCS#1 key (BEGIN RSA PRIVATE KEY); Snowflake needs PKCS#8: openssl pkcs8 -topk8 -inform PEM -in key.pem -out rsa_key.p8 -nocrypt`,
    ]);
  }
  if (header !== 'PRIVATE KEY' && header !== 'ENCRYPTED PRIVATE KEY') {
    throw new ConfigError([`${where}: a PEM "${header}", not a PKCS#8 private key (BEGIN PRIVATE KEY or BEGIN ENCRYPTED PRIVATE KEY)`]);
  }
  const encrypted = header === 'ENCRYPTED PRIVATE KEY';
  if (encrypted && !passphrase) throw new ConfigError([`${where}: the key is encrypted; set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE`]);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', passphrase: encrypted ? passphrase : undefined });
  } catch (err) {
    const why = encrypted ? 'cannot decrypt it: wrong SNOWFLAKE_PRIVATE_KEY_PASSPHRASE?' : `cannot parse it (${(err as Error).message})`;
    throw new ConfigError([`${where}: ${why}`]);
  }
  if (key.asymmetricKeyType !== 'rsa')
    throw new ConfigError([`${where}: a ${key.asymmetricKeyType} key; Snowflake key-pair authentication needs RSA (2048 bits or more)`]);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048) throw new ConfigError([`${where}: an RSA key of ${bits} bits; Snowflake needs at least 2048`]);
  return {
    pem: key.export({ format: 'pem', type: 'pkcs8' }) as string,
    fingerprint: publicKeyFingerprint(key),
    publicPem: createPublicKey(key).export({ format: 'pem', type: 'spki' }) as string,
  };
}

/** `SHA256:<base64 of the SHA-256 of the public key's DER (SPKI)>`, as Snowflake's RSA_PUBLIC_KEY_FP. */
export function publicKeyFingerprint(key: KeyObject): string {
  const der = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' });
  return `SHA256:${createHash('sha256').update(der).digest('base64')}`;
}

function parseToken(text: string, where: string): string {
  const token = text.trim();
  if (!token) throw new ConfigError([`${where}: the file is empty`]);
  if (/\s/.test(token)) throw new ConfigError([`${where}: the token contains white space inside it (one token per file)`]);
  return token;
}

/**
 * Builds the credentials of one login method and checks them at once: a missing or unreadable file, a
 * key that is not RSA or not PKCS#8, or a wrong passphrase is a ConfigError naming the variable, thrown
 * here, before anything connects.
 *
 * @example
 *   const credentials = snowflakeCredentials(config.snowflake.auth);   // at start
 *   snowflakeConnector({ account, username, credentials, ... });
 */
export function snowflakeCredentials(auth: SnowflakeAuthSettings, onReload?: (event: SecretReloadEvent) => void): Credentials {
  switch (auth.method) {
    case 'SNOWFLAKE':
      return {
        method: auth.method,
        fingerprint: () => undefined,
        publicKey: () => undefined,
        connectionOptions: () => ({ authenticator: 'SNOWFLAKE', password: auth.password }),
      };
    case 'SNOWFLAKE_JWT': {
      const read = auth.privateKeyFile
        ? (() => {
            const file = new SecretFile(
              'SNOWFLAKE_PRIVATE_KEY_FILE',
              auth.privateKeyFile,
              (text, where) => parsePrivateKey(text, where, auth.passphrase),
              onReload,
            );
            return () => file.get();
          })()
        : (() => {
            const parsed = parsePrivateKey(auth.privateKey ?? '', 'SNOWFLAKE_PRIVATE_KEY', auth.passphrase);
            return () => parsed;
          })();
      read();
      // The driver gets the decrypted PKCS#8 key: it then never needs the passphrase itself.
      return {
        method: auth.method,
        fingerprint: () => read().fingerprint,
        publicKey: () => read().publicPem,
        connectionOptions: () => ({ authenticator: 'SNOWFLAKE_JWT', privateKey: read().pem }),
      };
    }
    case 'PROGRAMMATIC_ACCESS_TOKEN':
    case 'OAUTH': {
      const file = auth.tokenFile ? new SecretFile('SNOWFLAKE_TOKEN_FILE', auth.tokenFile, parseToken, onReload) : undefined;
      const token = () => file?.get() ?? auth.token!;
      token();
      return {
        method: auth.method,
        fingerprint: () => undefined,
        publicKey: () => undefined,
        connectionOptions: () => ({ authenticator: auth.method, token: token() }),
      };
    }
    case 'OAUTH_CLIENT_CREDENTIALS':
      return {
        method: auth.method,
        fingerprint: () => undefined,
        publicKey: () => undefined,
        connectionOptions: () =>
          ({
            authenticator: 'OAUTH_CLIENT_CREDENTIALS',
            oauthClientId: auth.clientId,
            oauthClientSecret: auth.clientSecret,
            oauthTokenRequestUrl: auth.tokenUrl,
          }) as Partial<snowflake.ConnectionOptions>,
      };
  }
}
