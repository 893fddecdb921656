import path from 'node:path';
import { createRedis } from '../src/app/redis';
import { loadConfig } from '../src/config';
import { tlsRedisForFile } from './helpers/tls-redis';

/**
 * Redis over TLS with an ACL user, for real (test/helpers/tls-redis.ts): the fleet reaches it through
 * configuration only, as the ACL user, verifying the server against the configured CA; a wrong password and
 * an unknown CA fail with errors that say so. A worker replica running jobs through it, its output free of the
 * password, is test/redis-tls-acl-replica.test.ts (a fleet process: `npm test` only).
 */
const tls = tlsRedisForFile();

describe('Redis over TLS with an ACL user, by configuration', () => {
  it('connects as the ACL user over TLS, verifying the server against the configured CA', async () => {
    const redis = createRedis(loadConfig(tls.env()).redis);
    try {
      expect(await redis.call('ACL', 'WHOAMI')).toBe('fleet');
      // the plain-text port is off: this connection can only be the TLS one
      expect(await redis.call('CONFIG', 'GET', 'port')).toEqual(['port', '0']);
    } finally {
      redis.disconnect();
    }
  });

  it('refuses a wrong password and an unknown CA with errors that say so', async () => {
    const wrong = createRedis(loadConfig(tls.env({ REDIS_PASSWORD: 'not-the-password' })).redis, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
    wrong.on('error', () => undefined);
    await expect(wrong.ping()).rejects.toThrow(/WRONGPASS|invalid username-password/i);
    wrong.disconnect();

    const otherCa = path.join(tls.dir, 'server.crt'); // a certificate, but not the CA that signed the server's
    const untrusted = createRedis(loadConfig(tls.env({ REDIS_TLS_CA_FILE: otherCa })).redis, {
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
});
