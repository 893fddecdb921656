import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LocalWarehouse } from 'local-snowflake';
import type snowflake from 'snowflake-sdk';
import { loadConfig } from '../src/config';
import { snowflakeConnector, snowflakeCredentials } from '../src/pool';
import { createProducer } from '../src/producers';
import { startReplica } from './helpers/faults';
import { launchFleet } from './helpers/processes';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { connectorFor, startTestWarehouse } from './helpers/warehouse';

let server: LocalWarehouse;
let dir: string;
beforeAll(async () => {
  server = await startTestWarehouse();
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-keypair-'));
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs one statement as the local warehouse's admin user, over the real driver. */
async function asAdmin(sql: string): Promise<void> {
  const connector = connectorFor(server);
  const conn = await connector.open();
  try {
    await new Promise<void>((resolve, reject) => {
      conn.execute({ sqlText: sql, complete: (err: snowflake.SnowflakeError | undefined) => (err ? reject(err) : resolve()) });
    });
  } finally {
    await connector.close(conn);
  }
}

describe('key-pair authentication, end to end: keygen, ALTER USER, a worker replica by configuration alone', () => {
  it('a service user whose key `fleet snowflake keygen` made runs embedding jobs; a wrong passphrase stops the replica before any login', async () => {
    // 1. The key, as a platform engineer makes it: the CLI, with an encrypted private key.
    const keys = path.join(dir, 'keys');
    writeFileSync(path.join(dir, 'passphrase'), 'a passphrase for the fleet key\n');
    const keygen = await launchFleet([
      'snowflake',
      'keygen',
      '--out',
      keys,
      '--user',
      'fleet_svc',
      '--passphrase-file',
      path.join(dir, 'passphrase'),
    ]).finished();
    expect({ code: keygen.code, stderr: keygen.code === 0 ? '' : keygen.stderr }).toEqual({ code: 0, stderr: '' });
    const { stdout } = keygen;
    const alter = /^\s*(ALTER USER FLEET_SVC SET RSA_PUBLIC_KEY='[A-Za-z0-9+/=]+';)$/m.exec(stdout)?.[1];
    const fingerprint = /^fingerprint\s+(SHA256:\S+)$/m.exec(stdout)?.[1];
    expect(alter).toBeDefined();
    expect(fingerprint).toBeDefined();

    // 2. The user, as an admin registers it: a SERVICE user (no password possible), then the printed statement.
    await asAdmin('CREATE USER FLEET_SVC TYPE = SERVICE DEFAULT_ROLE = PUBLIC');
    await asAdmin(alter!.replace(/;$/, ''));

    // 3. A replica configured by environment alone (the method is inferred from the key).
    const prefix = uniquePrefix('keypair');
    const env = {
      REDIS_URL: testRedisUrl(),
      FLEET_QUEUE_PREFIX: prefix,
      SNOWFLAKE_ACCESS_URL: server.url,
      SNOWFLAKE_USERNAME: 'fleet_svc',
      SNOWFLAKE_PRIVATE_KEY_FILE: path.join(keys, 'rsa_key.p8'),
      SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: 'a passphrase for the fleet key',
      POOL_MIN: '1',
    };
    server.resetStats();
    const replica = startReplica(env);
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    try {
      await replica.logged('worker started');
      expect(replica.output()).toContain(fingerprint!); // the start-up line names the key offered, never the key
      const texts = Array.from({ length: 200 }, (_, i) => `service user note ${i}: renewal risk`);
      const results = await Promise.all((await producer.embed(texts)).map((h) => h.result({ timeoutMs: 30_000 })));
      expect(results).toHaveLength(200);
      const stats = server.stats();
      expect(stats.loginsByAuthenticator.SNOWFLAKE_JWT).toBeGreaterThanOrEqual(1);
      expect(stats.loginsByAuthenticator.SNOWFLAKE ?? 0).toBe(0);
      expect(stats.failedLogins).toBe(0);
      expect(replica.output()).not.toContain('BEGIN');
    } finally {
      await replica.stop();
      await producer.close();
      await redis.quit();
    }
    expect(await replica.exited).toBe(0);

    // 4. A wrong passphrase: the replica exits at start, naming the variable, without a single login.
    server.resetStats();
    const wrong = startReplica({ ...env, SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: 'not the passphrase' });
    expect(await wrong.exited).not.toBe(0);
    expect(wrong.output()).toMatch(/SNOWFLAKE_PRIVATE_KEY_FILE=.*rsa_key\.p8: cannot decrypt it: wrong SNOWFLAKE_PRIVATE_KEY_PASSPHRASE\?/);
    expect(wrong.output()).not.toContain('not the passphrase');
    expect(server.stats().logins + server.stats().failedLogins).toBe(0);
  }, 90_000);

  it('a rotated token file is read by the next session: no restart', async () => {
    await asAdmin('CREATE USER FLEET_PAT TYPE = SERVICE DEFAULT_ROLE = PUBLIC');
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
