import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A `redis-server` child process on a private port and a temporary directory. */
export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after 3 s) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

export interface PrivateRedisOptions {
  /** Port to listen on; default: a free port chosen by the OS. */
  port?: number;
  /** Binary to run; default `redis-server` from PATH. */
  binary?: string;
  /** Turn on AOF persistence (`appendfsync everysec`) so a restart keeps accepted jobs. Default false. */
  appendOnly?: boolean;
  /** Reuse this directory (needed to restart with the same AOF); default: a new temporary directory. */
  dir?: string;
  /** How long to wait for the server to accept connections. Default 10 s. */
  startTimeoutMs?: number;
  /** More redis-server arguments, after the fleet's (e.g. `--cluster-enabled yes` for a cluster node). */
  extraArgs?: readonly string[];
}

/**
 * Hands out free ports on 127.0.0.1, never the same one twice: for several servers (and cluster bus ports)
 * chosen before any of them listens, when `freePort` alone could return one port twice.
 */
export function freePorts(): () => Promise<number> {
  const taken = new Set<number>();
  return async () => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
}

/** Finds a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true when something accepts TCP connections at host:port within `timeoutMs`. */
export function canConnect(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * Starts a private `redis-server` (from PATH) for `fleet up` and for tests, so that nothing
 * touches a shared Redis. The caller owns the returned handle and must `stop()` it.
 *
 * @example
 *   const redis = await startPrivateRedis();
 *   // ... new IORedis(redis.url)
 *   await redis.stop();
 */
export async function startPrivateRedis(opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const port = opts.port ?? (await freePort());
  const ownDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'fleet-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    opts.appendOnly ? 'yes' : 'no',
    '--appendfsync',
    'everysec',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
    // BullMQ requires keys never to be evicted.
    '--maxmemory-policy',
    'noeviction',
    ...(opts.extraArgs ?? []),
  ];
  const child = spawn(opts.binary ?? 'redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`could not start redis-server: ${err.message} (is it installed and on PATH?)`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited with code ${code} before accepting connections: ${stderr.trim()}`)));
  });
  spawnError.catch(() => undefined);
  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  const waitReady = (async () => {
    while (Date.now() < deadline) {
      if (await canConnect('127.0.0.1', port, 200)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not accept connections on port ${port} within ${opts.startTimeoutMs ?? 10_000} ms`);
  })();
  await Promise.race([waitReady, spawnError]);

  let stopping: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    process: child,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        const finish = () => {
          if (ownDir) rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return finish();
        const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(killer);
          finish();
        });
        child.kill('SIGTERM');
      });
      return stopping;
    },
  };
}
