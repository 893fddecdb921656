import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from '../../src/app/redis-server';
import { type Launched, launch } from './processes';
import { waitUntil } from './wait';

const run = promisify(execFile);

/**
 * A real Redis Cluster on loopback for tests: `redis-server --cluster-enabled yes` processes on free ports (the
 * same redis-server from PATH as test/global-setup.ts; redis-cli comes in the same Debian package), joined by
 * `redis-cli --cluster create`. Every process is started by test/helpers/processes.ts and stopped by its pid.
 */
interface ClusterNode {
  readonly port: number;
  /** The cluster bus port (`--cluster-port`): chosen free too, since port + 10000 may be past 65535. */
  readonly busPort: number;
  readonly server: Launched;
}

interface ClusterRole {
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'replica';
  /** A replica's master id. */
  readonly masterId?: string;
  /** A master's slot ranges. */
  readonly slots: readonly [number, number][];
  /** Flags of CLUSTER NODES (`master`, `slave`, `fail`, `fail?`, `myself`, …). */
  readonly flags: readonly string[];
}

/** One slot range of CLUSTER SLOTS: the master serving it and its replicas, by port. */
export interface SlotRange {
  readonly from: number;
  readonly to: number;
  readonly master: number;
  readonly replicas: readonly number[];
}

export interface TestCluster {
  readonly nodes: readonly ClusterNode[];
  /** `127.0.0.1:P1,127.0.0.1:P2,…`: REDIS_CLUSTER_NODES for the fleet. */
  readonly seeds: string;
  readonly dir: string;
  /** `redis-cli -p port args…` and its trimmed stdout. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Who is master and replica of what, as the node on `askPort` (default: the first live node) sees it. */
  topology(askPort?: number): Promise<ClusterRole[]>;
  /** The master serving `key`'s slot (CLUSTER KEYSLOT + CLUSTER NODES), as a live node sees it. */
  masterOf(key: string): Promise<ClusterRole & { slot: number }>;
  /** CLUSTER SLOTS as the node on `askPort` (default: the first live node) answers it. */
  slotRanges(askPort?: number): Promise<SlotRange[]>;
  /** The keys matching `pattern` that the node on `port` holds (`redis-cli --scan`: that node's own keys, no redirects). */
  scanKeys(port: number, pattern: string): Promise<string[]>;
  /** Waits until every live node reports `cluster_state:ok` and every replica's link to its master is up. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node (SIGTERM by pid, SIGKILL after 3 s) and removes the data directory. Idempotent. */
  stop(): Promise<void>;
}

export interface TestClusterOptions {
  /** Masters (each with `replicas` replicas). Default 3 (the least `redis-cli --cluster create` accepts). */
  masters?: number;
  /** Replicas per master. Default 1. */
  replicas?: number;
  /** `cluster-node-timeout`: how long a silent master takes to be failed over. Default 2,000 ms. */
  nodeTimeoutMs?: number;
}

const NODES_LINE = /^(\S+) 127\.0\.0\.1:(\d+)@\d+\S* (\S+) (\S+) \d+ \d+ \d+ (\S+)(.*)$/;

export async function startRedisCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 1;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-cluster-'));
  const nodes: ClusterNode[] = [];
  const pick = freePorts();

  const cli = async (port: number, ...args: string[]) =>
    (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000, maxBuffer: 64 * 1024 * 1024 })).stdout.trim();
  const live = () => nodes.filter((n) => !n.server.stopped());

  const topology = async (askPort?: number): Promise<ClusterRole[]> => {
    const port = askPort ?? live()[0]?.port;
    if (port === undefined) throw new Error('no cluster node is running');
    const text = await cli(port, 'CLUSTER', 'NODES');
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const m = NODES_LINE.exec(line);
        if (!m) throw new Error(`unexpected CLUSTER NODES line: ${line}`);
        const [, id, p, flagText, master, , rest] = m;
        const flags = flagText.split(',');
        const slots = rest
          .trim()
          .split(' ')
          .filter((s) => /^\d+(-\d+)?$/.test(s))
          .map((s) => {
            const [a, b] = s.split('-').map(Number);
            return [a, b ?? a] as [number, number];
          });
        const role = flags.includes('master') ? 'master' : 'replica';
        return { id, port: Number(p), role, masterId: master === '-' ? undefined : master, slots, flags };
      });
  };

  let stopping: Promise<void> | undefined;
  const cluster: TestCluster = {
    nodes,
    get seeds() {
      return nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
    },
    dir,
    cli,
    topology,
    async masterOf(key) {
      const askPort = live()[0].port;
      const slot = Number(await cli(askPort, 'CLUSTER', 'KEYSLOT', key));
      const owner = (await topology(askPort)).find((n) => n.role === 'master' && !n.flags.includes('fail') && n.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!owner) throw new Error(`no live master serves slot ${slot} (of ${key})`);
      return { ...owner, slot };
    },
    async slotRanges(askPort) {
      const port = askPort ?? live()[0]?.port;
      if (port === undefined) throw new Error('no cluster node is running');
      // Each range: [from, to, [host, port, id, {…}] of the master, then one such array per replica].
      const reply = JSON.parse(await cli(port, '--json', 'CLUSTER', 'SLOTS')) as [number, number, ...[string, number, ...unknown[]][]][];
      return reply
        .map(([from, to, master, ...replicas]) => ({ from, to, master: master[1], replicas: replicas.map((r) => r[1]) }))
        .sort((a, b) => a.from - b.from);
    },
    async scanKeys(port, pattern) {
      return (await cli(port, '--scan', '--pattern', pattern)).split('\n').filter(Boolean);
    },
    async waitHealthy(timeoutMs = 30_000) {
      await waitUntil(
        'every cluster node to report cluster_state:ok, with every replica linked to its master',
        async () => {
          for (const n of live()) {
            const info = await cli(n.port, 'CLUSTER', 'INFO').catch(() => '');
            if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false;
            const replication = await cli(n.port, 'INFO', 'replication').catch(() => '');
            if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
          }
          return true;
        },
        { timeoutMs, everyMs: 100 },
      );
    },
    stop() {
      stopping ??= (async () => {
        await Promise.all(nodes.map((n) => n.server.stop(3_000)));
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };

  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await pick();
      const busPort = await pick();
      const nodeDir = path.join(dir, String(port));
      mkdirSync(nodeDir);
      // biome-ignore format: one option per line
      const server = launch('redis-server', [
        '--port', String(port),
        '--cluster-port', String(busPort),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 2_000),
        // A replica whose master died takes over however long ago it last heard from it.
        '--cluster-replica-validity-factor', '0',
        '--dir', nodeDir,
        '--save', '',
        '--appendonly', 'no',
        '--maxmemory-policy', 'noeviction',
        // A replica's first full sync starts at once (the default waits 5 s for more replicas to join it).
        '--repl-diskless-sync-delay', '0',
        '--loglevel', 'warning',
      ], { cwd: nodeDir, name: `redis-server (cluster node ${port})` });
      nodes.push({ port, busPort, server });
    }
    for (const n of nodes) {
      await waitUntil(
        `cluster node ${n.port} to answer`,
        async () => {
          if (n.server.stopped()) throw new Error(`redis-server on ${n.port} exited: ${n.server.output()}`);
          return (await cli(n.port, 'PING').catch(() => '')) === 'PONG';
        },
        { timeoutMs: 10_000, everyMs: 50 },
      );
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
      timeout: 60_000,
    });
    await cluster.waitHealthy();
    // Replication is gossiped: wait until every node knows each master's replicas too (a test asks any node).
    await waitUntil(
      `every node to see ${masters} masters with ${replicas} replica(s) each`,
      async () => {
        for (const n of nodes) {
          const seen = await topology(n.port).catch(() => []);
          const owners = seen.filter((x) => x.role === 'master' && x.slots.length > 0);
          if (owners.length !== masters) return false;
          if (owners.some((m) => seen.filter((x) => x.masterId === m.id && x.role === 'replica').length !== replicas)) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, everyMs: 100 },
    );
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
