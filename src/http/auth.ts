import { hash, timingSafeEqual } from 'node:crypto';

/** A user name and password for HTTP Basic auth (browsers opening Bull Board). */
export interface Credentials {
  username: string;
  password: string;
}

/** Who made a request: `admin` may use the API and mutate jobs in Bull Board; `viewer` may only look. */
export interface Principal {
  role: 'admin' | 'viewer';
  /** How they proved it: an API token, a viewer token, or Basic credentials. */
  via: 'api-token' | 'viewer-token' | 'basic';
  /** For logs: the Basic user name, or `token#<index>`; never the secret. */
  name: string;
}

export interface AuthOptions {
  /** API bearer tokens (admin). */
  tokens: readonly string[];
  /** Bearer tokens that only see Bull Board read-only. */
  viewerTokens?: readonly string[];
  /** Basic credentials of the Bull Board administrator. */
  admin?: Credentials;
  /** Basic credentials of a read-only Bull Board viewer. */
  viewer?: Credentials;
}

const MIN_TOKEN_CHARS = 16;
const MIN_PASSWORD_CHARS = 8;

// One-shot hash (Node >= 21.7): about a third of createHash's cost, on every authenticated request.
const digest = (s: string): Buffer => hash('sha256', s, 'buffer');

/**
 * Compares `candidate` with every digest in `known` in constant time: each comparison is a
 * timingSafeEqual over two 32-byte sha256 digests (equal lengths whatever the inputs), and the loop never
 * stops early, so neither the token's content nor which token matched shows in the response time.
 */
function matchIndex(candidate: Buffer, known: readonly Buffer[]): number {
  let found = -1;
  for (let i = 0; i < known.length; i++) {
    if (timingSafeEqual(candidate, known[i]) && found < 0) found = i;
  }
  return found;
}

/** `a && b` without short-circuit: both comparisons have already run. */
const both = (a: boolean, b: boolean) => (Number(a) & Number(b)) === 1;

function checkSecrets(option: string, values: readonly string[] | undefined, min: number): Buffer[] {
  if (values === undefined) return [];
  if (!Array.isArray(values)) throw new TypeError(`option \`${option}\` must be an array of strings`);
  return values.map((v, i) => {
    // The value itself is a secret: the message names its position, never its content.
    if (typeof v !== 'string' || v.length < min || /\s/.test(v)) {
      throw new RangeError(`option \`${option}[${i}]\` must be a string of at least ${min} characters without whitespace`);
    }
    return digest(v);
  });
}

function checkCredentials(option: string, c: Credentials | undefined): { user: Buffer; password: Buffer; username: string } | undefined {
  if (c === undefined) return undefined;
  if (!c || typeof c.username !== 'string' || c.username.length === 0 || c.username.includes(':')) {
    throw new TypeError(`option \`${option}.username\` must be a non-empty string without ":"`);
  }
  if (typeof c.password !== 'string' || c.password.length < MIN_PASSWORD_CHARS) {
    throw new RangeError(`option \`${option}.password\` must be a string of at least ${MIN_PASSWORD_CHARS} characters`);
  }
  return { user: digest(c.username), password: digest(c.password), username: c.username };
}

export interface Authenticator {
  /** The principal proven by an `Authorization` header (`Bearer <token>` or `Basic <base64>`), or undefined. */
  authenticate(authorization: string | undefined): Principal | undefined;
  /** Whether any Basic credentials are configured (then a 401 invites the browser to ask for them). */
  readonly acceptsBasic: boolean;
}

/**
 * Checks bearer tokens and Basic credentials without leaking timing. Options are checked once: short
 * tokens or passwords are refused at start-up, not discovered at the first request.
 *
 * @example
 *   const auth = createAuthenticator({ tokens: [apiToken], admin: { username: 'ops', password } });
 *   auth.authenticate(req.headers.authorization)   // { role: 'admin', via: 'api-token', name: 'token#0' }
 */
export function createAuthenticator(opts: AuthOptions): Authenticator {
  const api = checkSecrets('tokens', opts.tokens, MIN_TOKEN_CHARS);
  const viewerTokens = checkSecrets('viewerTokens', opts.viewerTokens, MIN_TOKEN_CHARS);
  const admin = checkCredentials('admin', opts.admin);
  const viewer = checkCredentials('viewer', opts.viewer);
  if (admin && viewer && admin.username === viewer.username) {
    throw new TypeError('options `admin.username` and `viewer.username` must differ');
  }
  const allTokens = [...api, ...viewerTokens];
  // Tokens already proven, by value: a client sends the same token on every request, and its sha256 and
  // comparisons were the largest cost of authenticating. Only valid tokens are kept (at most one entry per
  // configured token, so a flood of wrong ones cannot grow it), and a wrong token still takes the constant-time
  // path. A hit answers sooner than a miss, which tells a caller no more than the response does.
  const proven = new Map<string, Principal>();

  return {
    acceptsBasic: Boolean(admin || viewer),
    authenticate(header) {
      if (typeof header !== 'string') return undefined;
      const space = header.indexOf(' ');
      if (space < 0) return undefined;
      const scheme = header.slice(0, space).toLowerCase();
      const value = header.slice(space + 1).trim();
      if (scheme === 'bearer') {
        if (!value || allTokens.length === 0) return undefined;
        const known = proven.get(value);
        if (known) return known;
        const i = matchIndex(digest(value), allTokens);
        if (i < 0) return undefined;
        const principal: Principal = Object.freeze(
          i < api.length
            ? { role: 'admin', via: 'api-token', name: `token#${i}` }
            : { role: 'viewer', via: 'viewer-token', name: `viewer-token#${i - api.length}` },
        );
        proven.set(value, principal);
        return principal;
      }
      if (scheme === 'basic') {
        if (!admin && !viewer) return undefined;
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) return undefined;
        const user = digest(decoded.slice(0, colon));
        const password = digest(decoded.slice(colon + 1));
        // Both accounts are always compared, user and password each, so timing does not tell which failed.
        const isAdmin = admin ? both(timingSafeEqual(user, admin.user), timingSafeEqual(password, admin.password)) : false;
        const isViewer = viewer ? both(timingSafeEqual(user, viewer.user), timingSafeEqual(password, viewer.password)) : false;
        if (isAdmin) return { role: 'admin', via: 'basic', name: admin!.username };
        if (isViewer) return { role: 'viewer', via: 'basic', name: viewer!.username };
      }
      return undefined;
    },
  };
}
