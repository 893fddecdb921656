import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LocalWarehouse } from 'local-snowflake';
import { createRedis } from '../src/app/redis';
import { canConnect, freePort } from '../src/app/redis-server';
import { loadConfig } from '../src/config';
import { createProducer } from '../src/producers';
import { startReplica } from './helpers/faults';
import { type Launched, launch } from './helpers/processes';
import { uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Redis over TLS with an ACL user, for real: a redis-server of its own with a certificate signed by a CA
 * made for this test (openssl), the default user switched off, and one ACL user with a password. The
 * fleet reaches it through configuration only (`rediss://`, REDIS_TLS_CA_FILE, REDIS_USERNAME,
 * REDIS_PASSWORD): a worker replica and a producer run jobs through it, and the password appears in
 * none of the replica's output.
 */
const PASSWORD = 'tls-acl-test-Secret-7f3a9c';

let dir: string;
let port: number;
let server: Launched | undefined;
let warehouse: LocalWarehouse;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-tls-'));
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=fleet-test-ca']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
  ]);
  port = await freePort();
  server = launch(
    'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      'server.crt',
      '--tls-key-file',
      'server.key',
      '--tls-ca-cert-file',
      'ca.crt',
      '--tls-auth-clients',
      'no',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--user',
      'default',
      'off',
      '--user',
      'fleet',
      'on',
      `>${PASSWORD}`,
      '~*',
      '&*',
      '+@all',
    ],
    { cwd: dir },
  );
  const tls = server;
  await waitUntil(
    'the TLS redis-server to listen',
    () => {
      if (tls.stopped()) throw new Error(`redis-server exited: ${tls.output()}`);
      return canConnect('127.0.0.1', port, 200);
    },
    { timeoutMs: 10_000, everyMs: 50 },
  );
  warehouse = await startTestWarehouse({ deals: 50 });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await warehouse?.close();
  rmSync(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  REDIS_URL: `rediss://127.0.0.1:${port}`,
  REDIS_USERNAME: 'fleet',
  REDIS_PASSWORD: PASSWORD,
  REDIS_TLS_CA_FILE: path.join(dir, 'ca.crt'),
  ...extra,
});

describe('Redis over TLS with an ACL user, by configuration', () => {
  it('connects as the ACL user over TLS, verifying the server against the configured CA', async () => {
    const redis = createRedis(loadConfig(env()).redis);
    try {
      expect(await redis.call('ACL', 'WHOAMI')).toBe('fleet');
      // the plain-text port is off: this connection can only be the TLS one
      expect(await redis.call('CONFIG', 'GET', 'port')).toEqual(['port', '0']);
    } finally {
      redis.disconnect();
    }
  });

  it('refuses a wrong password and an unknown CA with errors that say so', async () => {
    const wrong = createRedis(loadConfig(env({ REDIS_PASSWORD: 'not-the-password' })).redis, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
    wrong.on('error', () => undefined);
    await expect(wrong.ping()).rejects.toThrow(/WRONGPASS|invalid username-password/i);
    wrong.disconnect();

    const otherCa = path.join(dir, 'server.crt'); // a certificate, but not the CA that signed the server's
    const untrusted = createRedis(loadConfig(env({ REDIS_TLS_CA_FILE: otherCa })).redis, {
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
    });
    // ioredis rejects connect() with "Connection is closed"; the TLS reason comes as an 'error' event
    const reason = new Promise<Error>((resolve) => untrusted.once('error', resolve));
    await expect(untrusted.connect()).rejects.toThrow();
    expect((await reason).message).toMatch(/certificate|self.signed|unable to verify/i);
    untrusted.disconnect();
  });

  it('a worker replica and a producer run jobs through it; the password is in none of the replica output', async () => {
    const prefix = uniquePrefix('tls');
    const cfg = loadConfig(env());
    const redis = createRedis(cfg.redis);
    const producer = createProducer({ connection: redis, prefix });
    const replica = startReplica({ ...env(), FLEET_QUEUE_PREFIX: prefix, SNOWFLAKE_ACCESS_URL: warehouse.url, POOL_MIN: '0', POOL_MAX: '2' });
    try {
      const handles = await producer.embed(Array.from({ length: 20 }, (_, i) => `tls note ${i}`));
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
      expect(results.every((r) => r.dims === 768)).toBe(true);
      expect(replica.output()).toContain('worker started');
      expect(replica.output()).not.toContain(PASSWORD);
    } finally {
      await replica.stop();
      await producer.close();
      redis.disconnect();
    }
  });
});
