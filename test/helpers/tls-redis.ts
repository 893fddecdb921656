import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canConnect, freePort } from '../../src/app/redis-server';
import { type Launched, launch } from './processes';
import { waitUntil } from './wait';

/**
 * Redis over TLS with an ACL user, for real, for one test file: a redis-server of its own with a certificate
 * signed by a CA made for the file (openssl), the plain port and the default user switched off, and one ACL
 * user with a password. Started in beforeAll, stopped in afterAll; `env()` is the configuration that reaches
 * it (`rediss://`, REDIS_TLS_CA_FILE, REDIS_USERNAME, REDIS_PASSWORD).
 */
export interface TlsRedis {
  readonly password: string;
  /** The directory of the CA, the server's key and certificate (`ca.crt`, `server.crt`). */
  readonly dir: string;
  env(extra?: Record<string, string>): Record<string, string>;
}

export function tlsRedisForFile(): TlsRedis {
  const PASSWORD = 'tls-acl-test-Secret-7f3a9c';
  let dir: string;
  let port: number;
  let server: Launched | undefined;

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
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  return {
    password: PASSWORD,
    get dir() {
      return dir;
    },
    env: (extra = {}) => ({
      REDIS_URL: `rediss://127.0.0.1:${port}`,
      REDIS_USERNAME: 'fleet',
      REDIS_PASSWORD: PASSWORD,
      REDIS_TLS_CA_FILE: path.join(dir, 'ca.crt'),
      ...extra,
    }),
  };
}
