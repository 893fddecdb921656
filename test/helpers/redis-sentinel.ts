import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from '../../src/app/redis-server';
import { type Launched, launch } from './processes';
import { waitUntil } from './wait';

const run = promisify(execFile);

/**
 * A real Redis Sentinel setup on loopback for tests: a primary `redis-server`, one replica (`--replicaof`) and
 * one sentinel (`redis-server <conf> --sentinel`, quorum 1) on free ports, each started by
 * test/helpers/processes.ts and stopped by its pid. The same redis-server from PATH as test/global-setup.ts.
 */
export interface TestSentinel {
  /** Port of the server started as the primary (it stays its port after a failover, and may be dead). */
  readonly masterPort: number;
  readonly replicaPort: number;
  readonly sentinelPort: number;
  /** `127.0.0.1:P`: REDIS_SENTINELS for the fleet. */
  readonly sentinels: string;
  /** The master group name the sentinel monitors (REDIS_SENTINEL_MASTER). */
  readonly name: string;
  readonly master: Launched;
  readonly replica: Launched;
  readonly sentinel: Launched;
  /** `redis-cli -p port args…` (with the data password, or the sentinel's for the sentinel's port) and its trimmed stdout. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** The port the sentinel names as the primary now (`SENTINEL get-master-addr-by-name`). */
  masterAddrPort(): Promise<number>;
  /** Waits until the sentinel names `port` as the primary and that server says `role:master`. */
  waitMaster(port: number, timeoutMs?: number): Promise<void>;
  /** Stops every process (SIGTERM by pid, SIGKILL after 3 s) and removes the data directory. Idempotent. */
  stop(): Promise<void>;
}

export interface TestSentinelOptions {
  /** `requirepass` (and `masterauth`) of the primary and the replica; the sentinel's `auth-pass`. */
  password?: string;
  /** The sentinel's own `requirepass`. */
  sentinelPassword?: string;
  /** Master group name. Default `mymaster`. */
  name?: string;
  /** `down-after-milliseconds`: how long a silent primary takes to be seen down. Default 1,000. */
  downAfterMs?: number;
  /** `failover-timeout`. Default 5,000. */
  failoverTimeoutMs?: number;
}

export async function startRedisSentinel(opts: TestSentinelOptions = {}): Promise<TestSentinel> {
  const name = opts.name ?? 'mymaster';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-sentinel-'));
  const pick = freePorts();
  const [masterPort, replicaPort, sentinelPort] = [await pick(), await pick(), await pick()];
  const started: Launched[] = [];

  const cli = async (port: number, ...args: string[]) => {
    const auth = port === sentinelPort ? opts.sentinelPassword : opts.password;
    const env = { ...process.env, ...(auth ? { REDISCLI_AUTH: auth } : {}) };
    return (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000, env })).stdout.trim();
  };
  const answers = async (port: number, server: Launched) => {
    if (server.stopped()) throw new Error(`redis-server on ${port} exited: ${server.output()}`);
    return (await cli(port, 'PING').catch(() => '')) === 'PONG';
  };

  const server = (port: number, role: string, extra: string[]) => {
    const nodeDir = path.join(dir, String(port));
    mkdirSync(nodeDir);
    // biome-ignore format: one option per line
    const launched = launch('redis-server', [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', nodeDir,
      '--save', '',
      '--appendonly', 'no',
      '--maxmemory-policy', 'noeviction',
      // A replica's first full sync starts at once (the default waits 5 s for more replicas to join it).
      '--repl-diskless-sync-delay', '0',
      '--loglevel', 'warning',
      ...(opts.password ? ['--requirepass', opts.password, '--masterauth', opts.password] : []),
      ...extra,
    ], { cwd: nodeDir, name: `redis-server (${role} ${port})` });
    started.push(launched);
    return launched;
  };

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await Promise.all(started.map((p) => p.stop(3_000)));
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    const master = server(masterPort, 'primary', []);
    await waitUntil(`the primary on ${masterPort} to answer`, () => answers(masterPort, master), { timeoutMs: 10_000, everyMs: 50 });
    const replica = server(replicaPort, 'replica', ['--replicaof', '127.0.0.1', String(masterPort)]);
    // The sentinel learns of the replica from the primary's INFO, which it reads first when it starts (then
    // every 10 s): the replica is linked before the sentinel starts, so the sentinel knows it from the start.
    await waitUntil(
      `the replica on ${replicaPort} to be linked to its primary`,
      async () => (await answers(replicaPort, replica)) && (await cli(replicaPort, 'INFO', 'replication')).includes('master_link_status:up'),
      { timeoutMs: 10_000, everyMs: 50 },
    );

    const sentinelDir = path.join(dir, 'sentinel');
    mkdirSync(sentinelDir);
    // The sentinel rewrites its configuration file (the current primary, known replicas): a file of its own.
    const conf = path.join(sentinelDir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${sentinelDir}`,
        'loglevel warning',
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1_000}`,
        `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 5_000}`,
        ...(opts.password ? [`sentinel auth-pass ${name} ${opts.password}`] : []),
        ...(opts.sentinelPassword ? [`requirepass ${opts.sentinelPassword}`] : []),
        '',
      ].join('\n'),
    );
    const sentinel = launch('redis-server', [conf, '--sentinel'], { cwd: sentinelDir, name: `redis-sentinel (${sentinelPort})` });
    started.push(sentinel);
    await waitUntil(
      `the sentinel on ${sentinelPort} to watch the primary and its replica`,
      async () => {
        if (!(await answers(sentinelPort, sentinel))) return false;
        const replicas = await cli(sentinelPort, 'SENTINEL', 'REPLICAS', name).catch(() => '');
        // redis-cli prints each replica's fields one per line: name, value, name, value, …
        const lines = replicas.split('\n');
        const flags = lines[lines.indexOf('flags') + 1];
        return lines.includes(String(replicaPort)) && flags === 'slave' && lines[lines.indexOf('master-link-status') + 1] === 'ok';
      },
      { timeoutMs: 15_000, everyMs: 100 },
    );

    const masterAddrPort = async () => Number((await cli(sentinelPort, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)).split('\n')[1]);
    return {
      masterPort,
      replicaPort,
      sentinelPort,
      sentinels: `127.0.0.1:${sentinelPort}`,
      name,
      master,
      replica,
      sentinel,
      cli,
      masterAddrPort,
      async waitMaster(port, timeoutMs = 20_000) {
        await waitUntil(
          `the sentinel to name ${port} the primary of ${name}, and ${port} to be one`,
          async () => (await masterAddrPort().catch(() => 0)) === port && (await cli(port, 'INFO', 'replication').catch(() => '')).includes('role:master'),
          { timeoutMs, everyMs: 50 },
        );
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
