import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LocalWarehouse } from 'local-snowflake';
import { createProducer } from '../src/producers';
import { startReplica } from './helpers/faults';
import { launchFleet } from './helpers/processes';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { asAdmin, startTestWarehouse } from './helpers/warehouse';

/**
 * Key-pair login end to end, as a platform engineer sets it up: `fleet snowflake keygen` (the CLI), the admin's
 * ALTER USER, then worker replicas (`node bin/fleet.js worker`) configured by environment alone. Three fleet
 * processes, so `npm test` only (jest.fast.config.js); the login options and a rotated token file are checked
 * in-process by test/snowflake-credentials.test.ts.
 */
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
    await asAdmin(server, 'CREATE USER FLEET_SVC TYPE = SERVICE DEFAULT_ROLE = PUBLIC');
    await asAdmin(server, alter!.replace(/;$/, ''));

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
});
