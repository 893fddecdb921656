import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { launchFleet } from './helpers/processes';

/** A port nothing listens on (bound, read and released), so `fleet up` finds no Redis there. */
function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-up-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fleet up: the quick start, run as a user runs it', () => {
  it('with nothing but a key pair configured: a private Redis, the local warehouse with that key registered, the API answering, exit 0 on SIGTERM', async () => {
    const keyFile = path.join(dir, 'rsa_key.p8');
    writeFileSync(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    const up = launchFleet(['up'], {
      env: {
        REDIS_URL: `redis://127.0.0.1:${await unusedPort()}`,
        PORT: '0',
        SNOWFLAKE_PRIVATE_KEY_FILE: keyFile,
        LOCAL_WAREHOUSE_LOGIN_LATENCY_MS: '0',
        LOCAL_WAREHOUSE_DEALS: '200',
        INDEX_SNAPSHOT_DIR: path.join(dir, 'index'),
        LOG_LEVEL: 'warn',
      },
    });
    try {
      const out = await up.logged('Ctrl-C stops everything', 45_000);
      expect(out).toContain('fleet is up');
      expect(out).toContain('(private redis-server, temporary data)');
      const api = /http api\s+(http:\/\/\S+)/.exec(out)![1];
      const token = /api token\s+(\S+)/.exec(out)![1];
      const warehouse = /warehouse\s+(http:\/\/\S+)/.exec(out)![1];

      const res = await fetch(`${api}/v1/embeddings?waitMs=20000`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ texts: ['renewal is at risk', 'pricing call went well'] }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { jobs: { state: string }[] };
      expect(body.jobs.map((j) => j.state)).toEqual(['completed', 'completed']);

      // The fleet reached its warehouse with the key pair, not the password.
      const stats = (await (await fetch(`${warehouse}/fleet/stats`)).json()) as { loginsByAuthenticator: Record<string, number>; failedLogins: number };
      expect(stats.loginsByAuthenticator.SNOWFLAKE_JWT).toBeGreaterThanOrEqual(1);
      expect(stats.loginsByAuthenticator.SNOWFLAKE ?? 0).toBe(0);
      expect(stats.failedLogins).toBe(0);
    } finally {
      up.child.kill('SIGTERM'); // by its pid; `fleet up` stops its own Redis and warehouse
    }
    expect(await up.exited).toBe(0);
  }, 90_000);
});
