import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LocalWarehouse } from 'local-snowflake';
import { ConfigError, loadConfig } from '../src/config';
import { snowflakeConnector, snowflakeCredentials } from '../src/pool';
import { asAdmin, startTestWarehouse } from './helpers/warehouse';

const PASSPHRASE = 'correct horse battery';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PKCS8 = rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
const PKCS8_ENCRYPTED = rsa.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: PASSPHRASE }) as string;
const PKCS1 = rsa.privateKey.export({ format: 'pem', type: 'pkcs1' }) as string;
const EC = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
const SMALL = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-creds-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, content, { mode: 0o600 });
  return f;
}

/** The problems of a ConfigError thrown by `fn`, joined; fails when nothing is thrown. */
function problemsOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.join('\n');
  }
  throw new Error('expected a ConfigError');
}

describe('snowflake login configuration: variables', () => {
  it('defaults to password login, and to key pair as soon as a key is given', () => {
    expect(loadConfig({}).snowflake.auth).toEqual({ method: 'SNOWFLAKE', password: 'fleet' });
    expect(loadConfig({ SNOWFLAKE_PRIVATE_KEY_FILE: '/keys/rsa_key.p8' }).snowflake.auth).toMatchObject({
      method: 'SNOWFLAKE_JWT',
      privateKeyFile: '/keys/rsa_key.p8',
    });
    expect(loadConfig({ SNOWFLAKE_AUTHENTICATOR: 'PROGRAMMATIC_ACCESS_TOKEN', SNOWFLAKE_TOKEN_FILE: '/t' }).snowflake.auth).toEqual({
      method: 'PROGRAMMATIC_ACCESS_TOKEN',
      tokenFile: '/t',
      token: undefined,
    });
  });

  it('names the variable that is missing, doubled or set for another method', () => {
    expect(problemsOf(() => loadConfig({ SNOWFLAKE_AUTHENTICATOR: 'SNOWFLAKE_JWT' }))).toMatch(
      /SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE_JWT needs SNOWFLAKE_PRIVATE_KEY_FILE or SNOWFLAKE_PRIVATE_KEY/,
    );
    expect(problemsOf(() => loadConfig({ SNOWFLAKE_PRIVATE_KEY_FILE: '/a', SNOWFLAKE_PRIVATE_KEY: PKCS8 }))).toMatch(
      /set only one of SNOWFLAKE_PRIVATE_KEY_FILE and SNOWFLAKE_PRIVATE_KEY/,
    );
    expect(problemsOf(() => loadConfig({ SNOWFLAKE_AUTHENTICATOR: 'OAUTH' }))).toMatch(/OAUTH needs SNOWFLAKE_TOKEN or SNOWFLAKE_TOKEN_FILE/);
    // A token without a method is ambiguous (PAT or OAuth): it is not guessed.
    expect(problemsOf(() => loadConfig({ SNOWFLAKE_TOKEN: 'abc' }))).toMatch(
      /SNOWFLAKE_TOKEN is set, but SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE does not use it \(it is for PROGRAMMATIC_ACCESS_TOKEN or OAUTH\)/,
    );
    expect(problemsOf(() => loadConfig({ SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: 'x' }))).toMatch(
      /SNOWFLAKE_PRIVATE_KEY_PASSPHRASE is set, but SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE does not use it/,
    );
    expect(problemsOf(() => loadConfig({ SNOWFLAKE_AUTHENTICATOR: 'OAUTH_CLIENT_CREDENTIALS', SNOWFLAKE_OAUTH_CLIENT_ID: 'id' }))).toMatch(
      /needs SNOWFLAKE_OAUTH_CLIENT_SECRET/,
    );
    expect(problemsOf(() => loadConfig({ SNOWFLAKE_AUTHENTICATOR: 'KERBEROS' }))).toMatch(/SNOWFLAKE_AUTHENTICATOR="KERBEROS"/);
  });

  it('never shows a secret value in a problem', () => {
    const text = problemsOf(() => loadConfig({ SNOWFLAKE_TOKEN: 'tok-9f8e7d6c5b4a', SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: PASSPHRASE }));
    expect(text).not.toContain('tok-9f8e7d6c5b4a');
    expect(text).not.toContain(PASSPHRASE);
  });

  it('treats the key, passphrase and tokens as secrets to scrub from logs', () => {
    const c = loadConfig({ SNOWFLAKE_PRIVATE_KEY: PKCS8_ENCRYPTED, SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: PASSPHRASE });
    expect(c.secrets).toEqual(expect.arrayContaining([PKCS8_ENCRYPTED, PASSPHRASE]));
  });

  it('prices default to the published list and can be overridden', () => {
    const c = loadConfig({ SNOWFLAKE_WAREHOUSE_SIZE: 'MEDIUM', SNOWFLAKE_CORTEX_CREDITS_PER_MTOKENS: 'EMBED_TEXT_768:e5-base-v2=0.05,SENTIMENT=0.1' });
    expect(c.cost.warehouseCreditsPerHour).toBe(4);
    expect(c.cost.cortexCreditsPerMTokens['EMBED_TEXT_768:e5-base-v2']).toBe(0.05);
    expect(c.cost.cortexCreditsPerMTokens.SUMMARIZE).toBe(0.1);
    expect(loadConfig({ SNOWFLAKE_WAREHOUSE_CREDITS_PER_HOUR: '12' }).cost.warehouseCreditsPerHour).toBe(12);
    expect(() => loadConfig({ SNOWFLAKE_CORTEX_CREDITS_PER_MTOKENS: 'embed=cheap' })).toThrow(/SNOWFLAKE_CORTEX_CREDITS_PER_MTOKENS/);
  });
});

describe('snowflake login configuration: the key and token, checked before anything connects', () => {
  const jwt = (env: Record<string, string>) => () => snowflakeCredentials(loadConfig(env).snowflake.auth);

  it('accepts a PKCS#8 RSA key, plain or encrypted, and gives the driver the decrypted key', () => {
    const plain = snowflakeCredentials(loadConfig({ SNOWFLAKE_PRIVATE_KEY_FILE: file('plain.p8', PKCS8) }).snowflake.auth);
    const enc = snowflakeCredentials(loadConfig({ SNOWFLAKE_PRIVATE_KEY: PKCS8_ENCRYPTED, SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: PASSPHRASE }).snowflake.auth);
    expect(plain.fingerprint()).toMatch(/^SHA256:[A-Za-z0-9+/]{43}=$/);
    expect(enc.fingerprint()).toBe(plain.fingerprint());
    const opts = enc.connectionOptions() as { authenticator: string; privateKey: string };
    expect(opts.authenticator).toBe('SNOWFLAKE_JWT');
    expect(opts.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(JSON.stringify(opts)).not.toContain(PASSPHRASE);
  });

  it('refuses, naming the variable: an unreadable file, PKCS#1, not RSA, too short, a wrong or missing passphrase', () => {
    expect(problemsOf(jwt({ SNOWFLAKE_PRIVATE_KEY_FILE: path.join(dir, 'nope.p8') }))).toMatch(
      /SNOWFLAKE_PRIVATE_KEY_FILE=.*nope\.p8: cannot read it \(ENOENT\)/,
    );
    expect(problemsOf(jwt({ SNOWFLAKE_PRIVATE_KEY_FILE: file('pkcs1.pem', PKCS1) }))).toMatch(/SNOWFLAKE_PRIVATE_KEY_FILE=.*PKCS#1 key.*openssl pkcs8 -topk8/);
    expect(problemsOf(jwt({ SNOWFLAKE_PRIVATE_KEY: EC }))).toMatch(/SNOWFLAKE_PRIVATE_KEY: a ec key; .*needs RSA/);
    expect(problemsOf(jwt({ SNOWFLAKE_PRIVATE_KEY: SMALL }))).toMatch(/RSA key of 1024 bits; Snowflake needs at least 2048/);
    expect(problemsOf(jwt({ SNOWFLAKE_PRIVATE_KEY: PKCS8_ENCRYPTED, SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: 'wrong passphrase' }))).toMatch(
      /SNOWFLAKE_PRIVATE_KEY: cannot decrypt it: wrong SNOWFLAKE_PRIVATE_KEY_PASSPHRASE\?/,
    );
    expect(problemsOf(jwt({ SNOWFLAKE_PRIVATE_KEY: PKCS8_ENCRYPTED }))).toMatch(/the key is encrypted; set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE/);
    expect(problemsOf(jwt({ SNOWFLAKE_PRIVATE_KEY: 'not a key' }))).toMatch(/SNOWFLAKE_PRIVATE_KEY: not a PEM private key/);
    expect(problemsOf(jwt({ SNOWFLAKE_PRIVATE_KEY_FILE: file('pub.pem', rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string) }))).toMatch(
      /a PEM "PUBLIC KEY", not a PKCS#8 private key/,
    );
  });

  it('no error shows the key material', () => {
    const text = problemsOf(jwt({ SNOWFLAKE_PRIVATE_KEY: PKCS8_ENCRYPTED, SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: 'wrong passphrase' }));
    const body = PKCS8_ENCRYPTED.split('\n')[1];
    expect(text).not.toContain(body);
  });

  it('re-reads a token file when it changes, and keeps the last good token while the file is half-written', () => {
    const tokenFile = file('token', 'first-token\n');
    const reloads: unknown[] = [];
    const creds = snowflakeCredentials(
      loadConfig({ SNOWFLAKE_AUTHENTICATOR: 'PROGRAMMATIC_ACCESS_TOKEN', SNOWFLAKE_TOKEN_FILE: tokenFile }).snowflake.auth,
      (e) => reloads.push(e),
    );
    expect(creds.connectionOptions()).toEqual({ authenticator: 'PROGRAMMATIC_ACCESS_TOKEN', token: 'first-token' });
    writeFileSync(tokenFile, 'second-token-rotated\n');
    utimesSync(tokenFile, new Date(), new Date(Date.now() + 5_000)); // a new mtime even on coarse clocks
    expect(creds.connectionOptions()).toEqual({ authenticator: 'PROGRAMMATIC_ACCESS_TOKEN', token: 'second-token-rotated' });
    writeFileSync(tokenFile, '');
    utimesSync(tokenFile, new Date(), new Date(Date.now() + 10_000));
    expect(creds.connectionOptions()).toEqual({ authenticator: 'PROGRAMMATIC_ACCESS_TOKEN', token: 'second-token-rotated' });
    // Each change is reported once: taken, then refused (the operator learns the Secret is broken).
    expect(reloads).toEqual([
      { variable: 'SNOWFLAKE_TOKEN_FILE', path: tokenFile, ok: true },
      { variable: 'SNOWFLAKE_TOKEN_FILE', path: tokenFile, ok: false, reason: expect.stringMatching(/the file is empty/) },
    ]);
  });

  it('refuses an empty token file at start', () => {
    const env = { SNOWFLAKE_AUTHENTICATOR: 'OAUTH', SNOWFLAKE_TOKEN_FILE: file('empty', '\n') };
    expect(problemsOf(() => snowflakeCredentials(loadConfig(env).snowflake.auth))).toMatch(/SNOWFLAKE_TOKEN_FILE=.*: the file is empty/);
  });
});

describe('snowflake login: a token file against the local warehouse (the real driver)', () => {
  let server: LocalWarehouse;
  beforeAll(async () => {
    server = await startTestWarehouse({ deals: 0 });
  });
  afterAll(() => server.close());

  it('a rotated token file is read by the next session: no restart', async () => {
    await asAdmin(server, 'CREATE USER FLEET_PAT TYPE = SERVICE DEFAULT_ROLE = PUBLIC');
    const first = server.issueProgrammaticAccessToken('FLEET_PAT', 'first', { roleRestriction: 'PUBLIC' });
    const tokenFile = path.join(dir, 'pat');
    writeFileSync(tokenFile, `${first}\n`);
    const credentials = snowflakeCredentials(
      loadConfig({ SNOWFLAKE_AUTHENTICATOR: 'PROGRAMMATIC_ACCESS_TOKEN', SNOWFLAKE_TOKEN_FILE: tokenFile }).snowflake.auth,
    );
    const connector = snowflakeConnector({ account: 'local', username: 'FLEET_PAT', credentials, accessUrl: server.url });
    await connector.close(await connector.open());

    // Rotate: a new token in the file, the old one revoked. The same connector's next login uses the new one.
    const second = server.issueProgrammaticAccessToken('FLEET_PAT', 'second', { roleRestriction: 'PUBLIC' });
    server.revokeProgrammaticAccessToken('FLEET_PAT', 'first');
    writeFileSync(tokenFile, `${second}\n`);
    utimesSync(tokenFile, new Date(), new Date(Date.now() + 5_000));
    await connector.close(await connector.open());

    // And a revoked token in the file is refused, as Snowflake refuses it: not retried, named.
    server.revokeProgrammaticAccessToken('FLEET_PAT', 'second');
    const err = await connector.open().catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/login as FLEET_PAT with PROGRAMMATIC_ACCESS_TOKEN refused/);
  });
});
