import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseRsaPublicKey, type RegisteredKey } from './rsa-public-key';
import { SnowflakeError } from './snowflake-error';

/**
 * Snowflake's user types. `SERVICE` users cannot log in with a password (they use a key pair, a
 * programmatic access token or OAuth); `LEGACY_SERVICE` users still may; `PERSON` is the default.
 */
export const USER_TYPES = ['PERSON', 'SERVICE', 'LEGACY_SERVICE'] as const;
export type UserType = (typeof USER_TYPES)[number];

/** The user properties the local warehouse keeps; names follow `CREATE USER`'s (camel-cased). */
export interface UserProperties {
  /** Default `PERSON`. */
  type?: UserType;
  /** Refused for `SERVICE` users, as Snowflake refuses it. */
  password?: string;
  /** Base64 body of a PEM SPKI public key, with or without the BEGIN/END lines. */
  rsaPublicKey?: string;
  /** A second key, so a new one can be registered before the old one is removed (rotation). */
  rsaPublicKey2?: string;
  defaultRole?: string;
  defaultWarehouse?: string;
  defaultNamespace?: string;
  comment?: string;
}

export type UserProperty = keyof UserProperties;

/** A programmatic access token. Only a hash of its secret is kept: the secret is shown once, at creation. */
export interface AccessToken {
  readonly name: string;
  readonly secretHash: string;
  /** The one role a session opened with this token gets (required for `SERVICE` users). */
  readonly roleRestriction?: string;
  readonly expiresAt: number;
  readonly comment?: string;
}

export interface WarehouseUser {
  /** Upper-case unless it was created with a quoted identifier. */
  readonly name: string;
  /** The user the `user`/`password` options define: the one that may run user DDL. */
  readonly admin: boolean;
  type: UserType;
  password?: PasswordHash;
  rsaPublicKey?: RegisteredKey;
  rsaPublicKey2?: RegisteredKey;
  defaultRole?: string;
  defaultWarehouse?: string;
  defaultNamespace?: string;
  comment?: string;
  readonly tokens: Map<string, AccessToken>;
}

/** A salted SHA-256: enough for an in-memory development stand-in, and nothing readable if dumped. */
interface PasswordHash {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/** An OAuth access token issued by the local stand-in for an OAuth server. */
interface OAuthGrant {
  readonly user: string;
  readonly expiresAt: number;
  readonly role?: string;
}

/** Snowflake's default `DAYS_TO_EXPIRY` for a programmatic access token. */
export const DEFAULT_TOKEN_DAYS = 15;
export const MAX_TOKEN_DAYS = 365;
/** Snowflake OAuth access tokens live ten minutes. */
export const DEFAULT_OAUTH_TTL_MS = 10 * 60_000;

export const DAY_MS = 24 * 3600_000;
const UNQUOTED_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/**
 * A name given through the programmatic API, read like a SQL identifier: upper-cased when it could be an
 * unquoted one (`svc_loader` → `SVC_LOADER`), kept as written otherwise (like a quoted identifier).
 */
export function userName(name: string): string {
  return UNQUOTED_IDENTIFIER.test(name) ? name.toUpperCase() : name;
}

/**
 * Validates the options of `issueProgrammaticAccessToken` / `issueOAuthToken`, with errors naming the
 * method, the option and the value received.
 */
export function validTokenOptions(api: string, ttlMs: unknown, role: unknown, defaultTtlMs: number): { ttlMs: number; role?: string } {
  const max = MAX_TOKEN_DAYS * DAY_MS;
  const ttl = ttlMs === undefined ? defaultTtlMs : ttlMs;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0 || ttl > max) {
    throw new RangeError(`${api}: option \`ttlMs\` must be a number of milliseconds above 0 and at most ${max}, got ${JSON.stringify(ttlMs) ?? String(ttlMs)}`);
  }
  if (role !== undefined && (typeof role !== 'string' || role.length === 0)) {
    throw new RangeError(`${api}: the role option must be a non-empty string, got ${JSON.stringify(role) ?? String(role)}`);
  }
  return { ttlMs: ttl, role: role === undefined ? undefined : userName(role) };
}

// Error replies in Snowflake's shapes. Sources: 002002/002003/003001 are Snowflake's standard
// already-exists, does-not-exist and access-control errors as drivers report them; "Insufficient
// privileges to operate on …" is Snowflake's wording. The SERVICE-with-password and ROLE_RESTRICTION
// refusals exist in Snowflake but their exact code and text were not found in public sources: they use
// the invalid-value code 001008 with a message saying what is wrong.
export const userErrors = {
  alreadyExists: (name: string) => new SnowflakeError('002002', `SQL compilation error:\nObject '${name}' already exists.`, '42710'),
  noSuchUser: (name: string) => new SnowflakeError('002003', `SQL compilation error:\nUser '${name}' does not exist or not authorized.`, '02000'),
  noSuchToken: (name: string) =>
    new SnowflakeError('002003', `SQL compilation error:\nProgrammatic access token '${name}' does not exist or not authorized.`, '02000'),
  insufficientPrivileges: (object: string) =>
    new SnowflakeError('003001', `SQL access control error:\nInsufficient privileges to operate on ${object}.`, '42501'),
  servicePassword: (name: string) =>
    new SnowflakeError('001008', `SQL compilation error:\nUser '${name}' has TYPE = SERVICE: a service user cannot have a PASSWORD.`, '22023'),
  roleRestrictionRequired: (name: string) =>
    new SnowflakeError(
      '001008',
      `SQL compilation error:\nROLE_RESTRICTION is required to add a programmatic access token for user '${name}' of TYPE = SERVICE.`,
      '22023',
    ),
  invalidValue: (value: string, parameter: string) =>
    new SnowflakeError('001008', `SQL compilation error:\ninvalid value [${value}] for parameter '${parameter}'`, '22023'),
  adminFixed: (name: string) =>
    new SnowflakeError(
      '003001',
      `SQL access control error:\nUser '${name}' is the local warehouse's admin, set by its \`user\`/\`password\` options: it stays a PERSON user with a password and cannot be dropped or replaced.`,
      '42501',
    ),
};

function hashPassword(password: string): PasswordHash {
  const salt = randomBytes(16);
  return { salt, hash: createHash('sha256').update(salt).update(password, 'utf8').digest() };
}

function secretHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/** A new bearer secret: 256 random bits, with a prefix that says what it is when it turns up in a config. */
function newSecret(kind: 'pat' | 'oauth'): string {
  return `ver:1-local-${kind}:${randomBytes(32).toString('base64url')}`;
}

/** What a token secret was found to be at login. */
export type TokenLookup<T> = { state: 'valid'; user: WarehouseUser; token: T } | { state: 'expired' | 'revoked' | 'unknown'; user?: WarehouseUser };

/**
 * The users of the local warehouse, their credentials (password hash, up to two RSA public keys,
 * programmatic access tokens) and the OAuth access tokens issued for them. Names are compared exactly;
 * logins find a user by name case-insensitively, as Snowflake login names are.
 *
 * The admin user (from the `user`/`password` options) is created first and is the only one allowed
 * to run user DDL; it cannot be dropped, replaced or turned into a SERVICE user.
 */
export class UserRegistry {
  private readonly users = new Map<string, WarehouseUser>();
  private readonly tokenIndex = new Map<string, { user: string; token: string }>();
  private readonly revokedTokens = new Set<string>();
  private readonly oauth = new Map<string, OAuthGrant>();
  readonly adminName: string;

  constructor(
    admin: { name: string; password: string },
    private readonly now: () => number = Date.now,
  ) {
    this.adminName = userName(admin.name);
    this.users.set(this.adminName, this.newUser(this.adminName, true, { type: 'PERSON', password: admin.password }));
  }

  isAdmin(name: string): boolean {
    return name === this.adminName;
  }

  get(name: string): WarehouseUser | undefined {
    return this.users.get(name);
  }

  /** The user a login name designates: the exact name if there is one, else the one matching case-insensitively. */
  findLogin(loginName: string): WarehouseUser | undefined {
    const exact = this.users.get(loginName) ?? this.users.get(loginName.toUpperCase());
    if (exact) return exact;
    const wanted = loginName.toUpperCase();
    for (const u of this.users.values()) if (u.name.toUpperCase() === wanted) return u;
    return undefined;
  }

  /**
   * `CREATE [OR REPLACE] USER [IF NOT EXISTS]`. Returns `'exists'` when `ifNotExists` found the user.
   * Every property is checked before anything changes, so a refused statement leaves no trace.
   */
  create(name: string, properties: UserProperties, mode: { orReplace?: boolean; ifNotExists?: boolean } = {}): 'created' | 'replaced' | 'exists' {
    const existing = this.users.get(name);
    if (existing && mode.ifNotExists) return 'exists';
    if (existing && !mode.orReplace) throw userErrors.alreadyExists(name);
    if (existing?.admin) throw userErrors.adminFixed(name);
    const user = this.newUser(name, false, properties);
    if (existing) this.forget(existing);
    this.users.set(name, user);
    return existing ? 'replaced' : 'created';
  }

  /** `ALTER USER … SET …` / `UNSET …`; false when the user does not exist. */
  alter(name: string, change: { set?: UserProperties; unset?: readonly UserProperty[] }): boolean {
    const user = this.users.get(name);
    if (!user) return false;
    const set = change.set ?? {};
    const unset = new Set(change.unset ?? []);
    const type = unset.has('type') ? 'PERSON' : (set.type ?? user.type);
    if (user.admin && (type !== 'PERSON' || unset.has('password'))) throw userErrors.adminFixed(name);
    // Snowflake keeps a password stored when a user becomes a SERVICE user (it just cannot be used),
    // but refuses to set one on a SERVICE user.
    if (type === 'SERVICE' && set.password !== undefined) throw userErrors.servicePassword(name);
    const key1 = set.rsaPublicKey === undefined ? undefined : parseRsaPublicKey(set.rsaPublicKey);
    const key2 = set.rsaPublicKey2 === undefined ? undefined : parseRsaPublicKey(set.rsaPublicKey2);

    user.type = type;
    if (set.password !== undefined) user.password = hashPassword(set.password);
    if (key1) user.rsaPublicKey = key1;
    if (key2) user.rsaPublicKey2 = key2;
    for (const p of ['defaultRole', 'defaultWarehouse', 'defaultNamespace', 'comment'] as const) {
      if (set[p] !== undefined) user[p] = set[p];
    }
    for (const p of unset) {
      if (p === 'password') user.password = undefined;
      else if (p !== 'type') user[p] = undefined;
    }
    return true;
  }

  /** `DROP USER`; false when the user does not exist. Its tokens stop working at once. */
  drop(name: string): boolean {
    const user = this.users.get(name);
    if (!user) return false;
    if (user.admin) throw userErrors.adminFixed(name);
    this.forget(user);
    this.users.delete(name);
    return true;
  }

  /**
   * `ALTER USER … ADD PROGRAMMATIC ACCESS TOKEN`: returns the secret, which is not kept (only its hash
   * is), or undefined when `ifNotExists` found a token of that name.
   */
  addToken(
    owner: string,
    tokenName: string,
    options: { ttlMs: number; roleRestriction?: string; comment?: string; ifNotExists?: boolean },
  ): string | undefined {
    const user = this.users.get(owner);
    if (!user) throw userErrors.noSuchUser(owner);
    if (user.tokens.has(tokenName)) {
      if (options.ifNotExists) return undefined;
      throw userErrors.alreadyExists(tokenName);
    }
    if (user.type === 'SERVICE' && !options.roleRestriction) throw userErrors.roleRestrictionRequired(owner);
    const secret = newSecret('pat');
    const hash = secretHash(secret);
    user.tokens.set(tokenName, {
      name: tokenName,
      secretHash: hash,
      roleRestriction: options.roleRestriction,
      expiresAt: this.now() + options.ttlMs,
      comment: options.comment,
    });
    this.tokenIndex.set(hash, { user: owner, token: tokenName });
    return secret;
  }

  /** `ALTER USER … REMOVE PROGRAMMATIC ACCESS TOKEN`: the token is refused from then on. */
  removeToken(owner: string, tokenName: string): void {
    const user = this.users.get(owner);
    if (!user) throw userErrors.noSuchUser(owner);
    const token = user.tokens.get(tokenName);
    if (!token) throw userErrors.noSuchToken(tokenName);
    user.tokens.delete(tokenName);
    this.tokenIndex.delete(token.secretHash);
    this.revokedTokens.add(token.secretHash);
  }

  /** What a programmatic access token secret is: valid (and whose), expired, revoked or unknown. */
  lookupToken(secret: string): TokenLookup<AccessToken> {
    const hash = secretHash(secret);
    const ref = this.tokenIndex.get(hash);
    const user = ref && this.users.get(ref.user);
    const token = ref && user?.tokens.get(ref.token);
    if (!user || !token) return { state: this.revokedTokens.has(hash) ? 'revoked' : 'unknown' };
    if (this.now() >= token.expiresAt) return { state: 'expired', user };
    return { state: 'valid', user, token };
  }

  /** Issues an OAuth access token for a user, as an external OAuth server would. */
  issueOAuthToken(owner: string, ttlMs: number, role?: string): string {
    if (!this.users.has(owner)) throw userErrors.noSuchUser(owner);
    const secret = newSecret('oauth');
    this.oauth.set(secretHash(secret), { user: owner, expiresAt: this.now() + ttlMs, role });
    this.sweepOAuth();
    return secret;
  }

  lookupOAuthToken(secret: string): TokenLookup<{ role?: string }> {
    const grant = this.oauth.get(secretHash(secret));
    const user = grant && this.users.get(grant.user);
    if (!grant || !user) return { state: 'unknown' };
    if (this.now() >= grant.expiresAt) return { state: 'expired', user };
    return { state: 'valid', user, token: { role: grant.role } };
  }

  /** Constant-time password check; false for a user without a password. */
  checkPassword(user: WarehouseUser, password: string): boolean {
    if (!user.password) return false;
    const candidate = createHash('sha256').update(user.password.salt).update(password, 'utf8').digest();
    return timingSafeEqual(candidate, user.password.hash);
  }

  private newUser(name: string, admin: boolean, p: UserProperties): WarehouseUser {
    const type = p.type ?? 'PERSON';
    if (type === 'SERVICE' && p.password !== undefined) throw userErrors.servicePassword(name);
    return {
      name,
      admin,
      type,
      password: p.password === undefined ? undefined : hashPassword(p.password),
      rsaPublicKey: p.rsaPublicKey === undefined ? undefined : parseRsaPublicKey(p.rsaPublicKey),
      rsaPublicKey2: p.rsaPublicKey2 === undefined ? undefined : parseRsaPublicKey(p.rsaPublicKey2),
      defaultRole: p.defaultRole,
      defaultWarehouse: p.defaultWarehouse,
      defaultNamespace: p.defaultNamespace,
      comment: p.comment,
      tokens: new Map(),
    };
  }

  /** Drops a user's tokens from the indexes (the user is being dropped or replaced). */
  private forget(user: WarehouseUser): void {
    for (const t of user.tokens.values()) this.tokenIndex.delete(t.secretHash);
    for (const [hash, grant] of this.oauth) if (grant.user === user.name) this.oauth.delete(hash);
  }

  /** Expired OAuth grants are dropped as new ones are issued, so the map stays small. */
  private sweepOAuth(): void {
    const t = this.now();
    for (const [hash, grant] of this.oauth) if (t >= grant.expiresAt + DAY_MS) this.oauth.delete(hash);
  }
}
