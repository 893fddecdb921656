import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import snowflake from 'snowflake-sdk';
import { type LocalWarehouse, startLocalWarehouse } from '../src';
import { isUserStatement, redactUserStatementSecrets } from '../src/user-statements';
import { destroy, exec, failure } from './helpers/driver';
import { sleep } from './helpers/wait';

/** An RSA key pair as a client holds it: the private key as PKCS#8 PEM, the public one as users paste it. */
interface KeyPair {
  readonly privatePem: string;
  /** The base64 body of the SPKI PEM, on one line (what `RSA_PUBLIC_KEY = '…'` usually gets). */
  readonly publicBody: string;
  /** The whole PEM, BEGIN/END lines and line breaks included (users paste that too). */
  readonly publicPem: string;
  readonly privateKey: KeyObject;
}

function newKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem,
    publicBody: publicPem.replace(/-----(BEGIN|END) PUBLIC KEY-----|\s/g, ''),
    privateKey,
  };
}

/** `SHA256:<base64>` of the public key's DER SPKI, computed independently of the server's code. */
function fingerprintOf(key: KeyObject): string {
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return `SHA256:${createHash('sha256').update(der).digest('base64')}`;
}

/** Connects the real driver the way the fleet's pool does (at most 2 login retries). */
function connect(wh: LocalWarehouse, options: Record<string, unknown>): Promise<snowflake.Connection> {
  const conn = snowflake.createConnection({
    account: 'local',
    accessUrl: wh.url,
    sfRetryMaxLoginRetries: 2,
    clientSessionKeepAlive: false,
    ...options,
  } as snowflake.ConnectionOptions);
  return new Promise((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve(conn))));
}

const withKey = (username: string, key: KeyPair) => ({ username, authenticator: 'SNOWFLAKE_JWT', privateKey: key.privatePem });
const withPat = (username: string, token: string) => ({ username, authenticator: 'PROGRAMMATIC_ACCESS_TOKEN', token });
const withPassword = (username: string, password: string) => ({ username, password });

/** Connects, runs `SELECT 1`, disconnects: the credential really works end to end. */
async function canQuery(wh: LocalWarehouse, options: Record<string, unknown>): Promise<boolean> {
  const conn = await connect(wh, options);
  try {
    const [row] = await exec(conn, 'SELECT 1 AS ONE');
    return row.ONE === 1;
  } finally {
    await destroy(conn);
  }
}

const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A key-pair login JWT signed here, for the claims the driver would never send (it signs fresh ones). */
function signJwt(signer: KeyObject, claims: Record<string, unknown>): string {
  const unsigned = `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${unsigned}.${sign('sha256', Buffer.from(unsigned), signer).toString('base64url')}`;
}

/** POSTs a key-pair login as the driver does and returns the HTTP status and parsed reply. */
async function rawJwtLogin(wh: LocalWarehouse, loginName: string, token: string) {
  const res = await fetch(`${wh.url}/session/v1/login-request`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { ACCOUNT_NAME: 'local', LOGIN_NAME: loginName, AUTHENTICATOR: 'SNOWFLAKE_JWT', TOKEN: token } }),
  });
  const body = (await res.json()) as { success: boolean; code: string | null; message: string | null; data: Record<string, unknown> | null };
  return { status: res.status, body };
}

const JWT_INVALID = /^JWT token is invalid\. \[[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\]$/;

describe('local warehouse authentication over the real snowflake-sdk driver', () => {
  let wh: LocalWarehouse;
  let admin: snowflake.Connection;
  let keyA: KeyPair;
  let keyB: KeyPair;
  // Everything the server logs, and every credential the tests used: the last test checks none leaked.
  const logged: string[] = [];
  const credentials: string[] = [];
  const capture = (obj: object, msg?: string) => logged.push(`${msg ?? ''} ${JSON.stringify(obj)}`);

  beforeAll(async () => {
    wh = await startLocalWarehouse({
      deals: 10,
      loginLatencyMs: 0,
      anchorDate: '2025-06-30',
      logger: { debug: capture, info: capture, warn: capture, error: capture },
    });
    admin = await connect(wh, withPassword('fleet', 'fleet'));
    keyA = newKeyPair();
    keyB = newKeyPair();
  });

  afterAll(async () => {
    await destroy(admin);
    await wh.close();
  });

  describe('key pair (SNOWFLAKE_JWT)', () => {
    it('logs a SERVICE user in with its registered key and runs a query; DESC USER shows the fingerprint', async () => {
      // The whole PEM, with its BEGIN/END lines and line breaks, as users paste it.
      await exec(admin, `create user svc_jwt type = service rsa_public_key = '${keyA.publicPem}' default_role = loader`);
      const before = wh.stats().loginsByAuthenticator.SNOWFLAKE_JWT ?? 0;

      expect(await canQuery(wh, withKey('svc_jwt', keyA))).toBe(true);

      expect(wh.stats().loginsByAuthenticator.SNOWFLAKE_JWT).toBe(before + 1);
      const desc = await exec(admin, 'DESC USER SVC_JWT');
      const prop = (name: string) => desc.find((r) => r.property === name)?.value;
      expect(prop('TYPE')).toBe('SERVICE');
      expect(prop('RSA_PUBLIC_KEY_FP')).toBe(fingerprintOf(keyA.privateKey));
      expect(prop('RSA_PUBLIC_KEY')).toBe(keyA.publicBody);
    });

    it('refuses a key that is not registered with 394304 at once, without the driver retrying', async () => {
      await exec(admin, `CREATE USER svc_wrong_key TYPE = SERVICE RSA_PUBLIC_KEY = '${keyA.publicBody}'`);
      const failedBefore = wh.stats().failedLogins;
      const started = performance.now();

      const err = await failure(connect(wh, withKey('svc_wrong_key', keyB)));

      expect(String(err.code)).toBe('394304');
      expect(err.message).toMatch(JWT_INVALID);
      expect(performance.now() - started).toBeLessThan(2_000);
      // One attempt reached the server: a refused login is not retried (only network errors and 5xx are).
      expect(wh.stats().failedLogins).toBe(failedBefore + 1);
      expect(wh.stats().failedLoginsByReason.jwt_fingerprint_mismatch).toBeGreaterThanOrEqual(1);
    });

    it('refuses a user without any key with 394304, and an unknown user with 390144', async () => {
      await exec(admin, 'CREATE USER svc_no_key TYPE = SERVICE');
      expect(String((await failure(connect(wh, withKey('svc_no_key', keyA)))).code)).toBe('394304');
      expect(String((await failure(connect(wh, withKey('nobody_here', keyA)))).code)).toBe('390144');
    });

    it('checks the claims: expired, over an hour, future iat, forged signature or subject refused; seconds and ms accepted', async () => {
      await exec(admin, `CREATE USER svc_claims TYPE = SERVICE RSA_PUBLIC_KEY = '${keyA.publicBody}'`);
      const now = Math.floor(Date.now() / 1000);
      const iss = `LOCAL.SVC_CLAIMS.${fingerprintOf(keyA.privateKey)}`;
      const sub = 'LOCAL.SVC_CLAIMS';
      const login = (claims: Record<string, unknown>, signer = keyA.privateKey) => rawJwtLogin(wh, 'svc_claims', signJwt(signer, claims));

      // Standard JWT seconds, and snowflake-sdk 3.3's milliseconds: both accepted, as by Snowflake.
      expect((await login({ iss, sub, iat: now, exp: now + 60 })).body.success).toBe(true);
      expect((await login({ iss, sub, iat: now * 1000, exp: (now + 60) * 1000 })).body.success).toBe(true);

      const before = wh.stats().failedLoginsByReason;
      const refused = [
        await login({ iss, sub, iat: now - 7200, exp: now - 3600 }), // expired an hour ago
        await login({ iss, sub, iat: now, exp: now + 2 * 3600 }), // lives two hours
        await login({ iss, sub, iat: now + 3600, exp: now + 3700 }), // issued an hour from now
        await login({ iss, sub, iat: now, exp: now + 60 }, keyB.privateKey), // names key A, signed with B
        await login({ iss, sub: 'LOCAL.SOMEONE_ELSE', iat: now, exp: now + 60 }),
        await rawJwtLogin(wh, 'svc_claims', 'not.a-jwt'),
      ];
      for (const { status, body } of refused) {
        expect(status).toBe(200); // a 5xx would be retried by the driver
        expect(body).toMatchObject({ success: false, code: '390144', data: { nextAction: 'RETRY_LOGIN', authnMethod: 'KEYPAIR' } });
        expect(body.message).toMatch(JWT_INVALID);
      }
      const after = wh.stats().failedLoginsByReason;
      for (const reason of ['jwt_expired', 'jwt_lifetime_too_long', 'jwt_issued_in_future', 'jwt_bad_signature', 'jwt_bad_claims', 'jwt_malformed'] as const) {
        expect((after[reason] ?? 0) - (before[reason] ?? 0)).toBe(1);
      }
    });

    it('rotates keys: RSA_PUBLIC_KEY_2 works alongside the first, and UNSET RSA_PUBLIC_KEY retires the first', async () => {
      await exec(admin, `CREATE USER svc_rotate TYPE = SERVICE RSA_PUBLIC_KEY = '${keyA.publicBody}'`);
      expect(await canQuery(wh, withKey('svc_rotate', keyA))).toBe(true);
      expect(String((await failure(connect(wh, withKey('svc_rotate', keyB)))).code)).toBe('394304');

      await exec(admin, `ALTER USER svc_rotate SET RSA_PUBLIC_KEY_2 = '${keyB.publicBody}'`);
      expect(await canQuery(wh, withKey('svc_rotate', keyA))).toBe(true);
      expect(await canQuery(wh, withKey('svc_rotate', keyB))).toBe(true);

      await exec(admin, 'ALTER USER svc_rotate UNSET RSA_PUBLIC_KEY');
      expect(String((await failure(connect(wh, withKey('svc_rotate', keyA)))).code)).toBe('394304');
      expect(await canQuery(wh, withKey('svc_rotate', keyB))).toBe(true);
    });

    it('rejects a value that is not an RSA public key of at least 2048 bits', async () => {
      await exec(admin, 'CREATE USER svc_bad_key TYPE = SERVICE');
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
      const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
      for (const value of ['not a key', keyA.publicBody.slice(0, 200), ec, small]) {
        const err = await failure(exec(admin, `ALTER USER svc_bad_key SET RSA_PUBLIC_KEY = '${value}'`));
        expect(String(err.code)).toBe('001008');
        expect(err.message).toBe("SQL execution error:\nNew public key rejected by current policy. Reason: 'Invalid Public key'");
      }
      const desc = await exec(admin, 'DESC USER svc_bad_key');
      expect(desc.find((r) => r.property === 'RSA_PUBLIC_KEY_FP')?.value).toBe('null');
    });
  });

  describe('programmatic access tokens (PROGRAMMATIC_ACCESS_TOKEN)', () => {
    it('adds a token with SQL, logs in with it (also in place of a password), and refuses it once removed', async () => {
      await exec(admin, 'CREATE USER svc_pat TYPE = SERVICE');
      await exec(admin, 'CREATE USER other_pat_user TYPE = SERVICE');
      // Snowflake requires a role restriction for a service user's token.
      const unrestricted = await failure(exec(admin, 'ALTER USER svc_pat ADD PROGRAMMATIC ACCESS TOKEN ci'));
      expect(String(unrestricted.code)).toBe('001008');

      const rows = await exec(admin, "alter user svc_pat add pat ci role_restriction = 'loader' days_to_expiry = 1 comment = 'CI'");
      expect(rows).toHaveLength(1);
      expect(Object.keys(rows[0])).toEqual(['token_name', 'token_secret']);
      expect(rows[0].token_name).toBe('CI');
      const secret = String(rows[0].token_secret);
      credentials.push(secret);

      expect(await canQuery(wh, withPat('svc_pat', secret))).toBe(true);
      expect(await canQuery(wh, withPassword('svc_pat', secret))).toBe(true);
      expect(wh.stats().loginsByAuthenticator.PROGRAMMATIC_ACCESS_TOKEN).toBeGreaterThanOrEqual(2);

      const otherUser = await failure(connect(wh, withPat('other_pat_user', secret)));
      expect(String(otherUser.code)).toBe('394400');
      expect(otherUser.message).toBe('Programmatic access token is invalid.');

      await exec(admin, 'ALTER USER svc_pat REMOVE PROGRAMMATIC ACCESS TOKEN ci');
      const revokedBefore = wh.stats().failedLoginsByReason.pat_revoked ?? 0;
      const revoked = await failure(connect(wh, withPat('svc_pat', secret)));
      expect(String(revoked.code)).toBe('394400');
      expect(revoked.message).toBe('Programmatic access token is invalid.');
      expect(wh.stats().failedLoginsByReason.pat_revoked).toBe(revokedBefore + 1);
    });

    it('refuses an expired token (a token issued through the API to live 300 ms)', async () => {
      wh.createUser('svc_pat_short', { type: 'SERVICE' });
      const secret = wh.issueProgrammaticAccessToken('svc_pat_short', 'short', { roleRestriction: 'LOADER', ttlMs: 300 });
      credentials.push(secret);
      expect(await canQuery(wh, withPat('svc_pat_short', secret))).toBe(true);

      await sleep(400); // the scenario: the token outlives its 300 ms TTL

      const expiredBefore = wh.stats().failedLoginsByReason.pat_expired ?? 0;
      const err = await failure(connect(wh, withPat('svc_pat_short', secret)));
      expect(String(err.code)).toBe('394400');
      expect(wh.stats().failedLoginsByReason.pat_expired).toBe(expiredBefore + 1);
    });

    it('refuses a token revoked through the API and a made-up one', async () => {
      wh.createUser('person_pat', { password: 'pw-1' });
      const secret = wh.issueProgrammaticAccessToken('person_pat', 'laptop');
      expect(await canQuery(wh, withPat('person_pat', secret))).toBe(true);
      wh.revokeProgrammaticAccessToken('person_pat', 'laptop');
      expect(String((await failure(connect(wh, withPat('person_pat', secret)))).code)).toBe('394400');
      expect(String((await failure(connect(wh, withPat('person_pat', 'ver:1-local-pat:made-up')))).code)).toBe('394400');
    });
  });

  describe('passwords and user types', () => {
    it('rejects a SERVICE user with a PASSWORD at CREATE, and creates nothing', async () => {
      const err = await failure(exec(admin, "CREATE USER svc_with_pw TYPE = SERVICE PASSWORD = 'secret-1'"));
      expect(String(err.code)).toBe('001008');
      expect(err.message).not.toContain('secret-1');
      expect(String((await failure(exec(admin, 'DESC USER svc_with_pw'))).code)).toBe('002003');
    });

    it("refuses a SERVICE user's password login with 390100; LEGACY_SERVICE and PERSON users may use one", async () => {
      await exec(admin, "CREATE USER legacy_pw TYPE = LEGACY_SERVICE PASSWORD = 'pw-legacy'");
      expect(await canQuery(wh, withPassword('legacy_pw', 'pw-legacy'))).toBe(true);

      // Snowflake keeps the password of a user turned SERVICE, but it no longer logs in.
      await exec(admin, 'ALTER USER legacy_pw SET TYPE = SERVICE');
      const before = wh.stats().failedLoginsByReason.password_not_allowed ?? 0;
      const err = await failure(connect(wh, withPassword('legacy_pw', 'pw-legacy')));
      expect(String(err.code)).toBe('390100');
      expect(err.message).toBe('Incorrect username or password was specified.');
      expect(wh.stats().failedLoginsByReason.password_not_allowed).toBe(before + 1);
      expect(String((await failure(exec(admin, "ALTER USER legacy_pw SET PASSWORD = 'pw-2'"))).code)).toBe('001008');

      await exec(admin, 'ALTER USER legacy_pw SET TYPE = PERSON');
      expect(await canQuery(wh, withPassword('legacy_pw', 'pw-legacy'))).toBe(true);
      expect(String((await failure(connect(wh, withPassword('legacy_pw', 'wrong')))).code)).toBe('390100');
    });
  });

  describe('user DDL', () => {
    it('refuses user DDL from a non-admin session with 003001 / SQLSTATE 42501', async () => {
      await exec(admin, "CREATE USER analyst PASSWORD = 'pw-analyst'");
      const conn = await connect(wh, withPassword('analyst', 'pw-analyst'));
      try {
        for (const sql of [
          'CREATE USER sneaky',
          `ALTER USER analyst SET RSA_PUBLIC_KEY = '${keyA.publicBody}'`,
          'ALTER USER ADD PAT mine',
          'DROP USER fleet',
          'DESC USER fleet',
        ]) {
          const err = await failure(exec(conn, sql));
          expect([sql, String(err.code), err.sqlState]).toEqual([sql, '003001', '42501']);
          expect(err.message).toMatch(/^SQL access control error:\nInsufficient privileges to operate on /);
        }
        // A user may describe itself.
        expect((await exec(conn, 'DESC USER analyst')).find((r) => r.property === 'NAME')?.value).toBe('ANALYST');
      } finally {
        await destroy(conn);
      }
    });

    it("follows Snowflake's syntax: keywords in any case, quoted names kept, IF [NOT] EXISTS, OR REPLACE", async () => {
      expect(await exec(admin, 'create user "mixedCase" comment = \'quoted\'')).toEqual([{ status: 'User mixedCase successfully created.' }]);
      expect(String((await failure(exec(admin, 'CREATE USER "mixedCase"'))).code)).toBe('002002');
      expect(await exec(admin, 'Create User If Not Exists "mixedCase"')).toEqual([{ status: 'mixedCase already exists, statement succeeded.' }]);
      expect(String((await failure(exec(admin, 'DESC USER mixedcase'))).code)).toBe('002003'); // unquoted: MIXEDCASE
      await exec(admin, 'CREATE OR REPLACE USER "mixedCase" TYPE = LEGACY_SERVICE;');
      expect((await exec(admin, 'DESC USER "mixedCase"')).find((r) => r.property === 'TYPE')?.value).toBe('LEGACY_SERVICE');
      expect(await exec(admin, 'DROP USER "mixedCase"')).toEqual([{ status: 'mixedCase successfully dropped.' }]);
      expect(await exec(admin, 'DROP USER IF EXISTS "mixedCase"')).toEqual([{ status: 'Drop statement executed successfully (mixedCase already dropped).' }]);
      expect(await exec(admin, "ALTER USER IF EXISTS nobody SET COMMENT = 'x'")).toEqual([{ status: 'Statement executed successfully.' }]);
      expect(String((await failure(exec(admin, "ALTER USER nobody SET COMMENT = 'x'"))).code)).toBe('002003');

      const syntax = await failure(exec(admin, 'CREATE USER u1 FAVOURITE_COLOUR = blue'));
      expect([String(syntax.code), syntax.message]).toEqual([
        '001003',
        "SQL compilation error:\nsyntax error line 1 at position 15 unexpected 'FAVOURITE_COLOUR'.",
      ]);
      expect(String((await failure(exec(admin, 'CREATE USER u2 TYPE = ROBOT'))).code)).toBe('001008');
      // The admin stays a PERSON user with a password.
      expect(String((await failure(exec(admin, 'ALTER USER fleet SET TYPE = SERVICE'))).code)).toBe('003001');
      expect(String((await failure(exec(admin, 'DROP USER fleet'))).code)).toBe('003001');
      // Other statements that merely start alike still reach DuckDB.
      await exec(admin, 'CREATE OR REPLACE TABLE USER_NOTES (N INT)');
    });
  });

  describe('OAuth', () => {
    it('accepts an OAuth token the local server issued; refuses expired (390318), unknown (390303) and other-user (390309) tokens', async () => {
      wh.createUser('oauth_user', { type: 'SERVICE', defaultRole: 'REPORTER' });
      wh.createUser('oauth_other', { type: 'SERVICE' });
      const token = wh.issueOAuthToken('oauth_user');
      credentials.push(token);
      expect(await canQuery(wh, { username: 'oauth_user', authenticator: 'OAUTH', token })).toBe(true);
      expect(wh.stats().loginsByAuthenticator.OAUTH).toBeGreaterThanOrEqual(1);

      const other = await failure(connect(wh, { username: 'oauth_other', authenticator: 'OAUTH', token }));
      expect(String(other.code)).toBe('390309');

      const unknown = await failure(connect(wh, { username: 'oauth_user', authenticator: 'OAUTH', token: 'made-up' }));
      expect(String(unknown.code)).toBe('390303');
      expect(unknown.message).toMatch(/^Invalid OAuth access token\. \[/);

      const shortLived = wh.issueOAuthToken('oauth_user', { ttlMs: 200 });
      await sleep(300); // the scenario: the token outlives its 200 ms TTL
      const expired = await failure(connect(wh, { username: 'oauth_user', authenticator: 'OAUTH', token: shortLived }));
      expect(String(expired.code)).toBe('390318');
    });
  });

  describe('logs', () => {
    it('logs refused logins with their reason and incident id, never a password, token or key', () => {
      credentials.push('pw-legacy', 'pw-analyst', 'secret-1', keyA.publicBody.slice(0, 64), keyB.publicBody.slice(0, 64));
      const text = logged.join('\n');
      expect(text).toMatch(/refused a login .*"reason":"jwt_fingerprint_mismatch".*"incident":"[0-9a-f-]{36}"/);
      for (const credential of credentials) expect(text).not.toContain(credential);
      expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./); // no JWT
      expect(text).not.toContain('PRIVATE KEY');
    });
  });

  describe('programmatic API misuse', () => {
    it('names the method, option and value it refuses', () => {
      expect(() => wh.issueProgrammaticAccessToken('fleet', 'x', { ttlMs: -1 })).toThrow(/issueProgrammaticAccessToken: option `ttlMs` must be .* got -1/);
      expect(() => wh.issueOAuthToken('fleet', { ttlMs: Number.NaN })).toThrow(/issueOAuthToken: option `ttlMs`/);
      expect(() => wh.issueOAuthToken('nobody_at_all')).toThrow(/User 'NOBODY_AT_ALL' does not exist/);
      expect(() => wh.createUser('svc_api', { type: 'SERVICE', password: 'pw' })).toThrow(/cannot have a PASSWORD/);
      expect(() => wh.createUser('svc_api', { rsaPublicKey: 'garbage' })).toThrow(/New public key rejected/);
    });
  });
});

describe('user statement recognition and redaction', () => {
  it('recognises user statements only, past comments and in any case', () => {
    expect(isUserStatement('/* setup */ -- x\n create OR replace user svc')).toBe(true);
    expect(isUserStatement("ALTER USER svc ADD PAT t ROLE_RESTRICTION = 'R'")).toBe(true);
    expect(isUserStatement('describe user svc')).toBe(true);
    expect(isUserStatement('CREATE OR REPLACE TABLE USERS (A INT)')).toBe(false);
    expect(isUserStatement("ALTER SESSION SET QUERY_TAG = 'user'")).toBe(false);
    expect(isUserStatement('SELECT * FROM USER')).toBe(false);
  });

  it('masks PASSWORD values (for query history) and leaves everything else as written', () => {
    expect(redactUserStatementSecrets("CREATE USER u PASSWORD = 'it''s \\' secret' COMMENT = 'kept'")).toBe("CREATE USER u PASSWORD = '****' COMMENT = 'kept'");
    expect(redactUserStatementSecrets('alter user u set password=$$p4ss$$')).toBe("alter user u set password='****'");
    expect(redactUserStatementSecrets("ALTER USER u SET PASSWORD = 'unterminated")).toBe("ALTER USER u SET PASSWORD = '****'");
    expect(redactUserStatementSecrets("SELECT 'PASSWORD = x'")).toBe("SELECT 'PASSWORD = x'");
    expect(redactUserStatementSecrets("ALTER USER u SET RSA_PUBLIC_KEY = 'MIIB'")).toBe("ALTER USER u SET RSA_PUBLIC_KEY = 'MIIB'");
  });
});
