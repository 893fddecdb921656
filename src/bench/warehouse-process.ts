import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../app/redis-server';
import type { WarehouseStats } from '../warehouse/server';

/** A local warehouse in its own process, as a real warehouse is: its CPU is not the fleet's. */
export interface WarehouseProcess {
  url: string;
  /** The child's process id (its CPU is read from /proc by the benchmarks). */
  pid: number | undefined;
  stats(): Promise<WarehouseStats>;
  resetStats(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts `fleet warehouse` as a child process on a free port and waits until it answers. Benchmarks use
 * it so that the simulated warehouse's work (DuckDB, the stand-in embedder, result encoding) runs
 * beside the fleet, not inside the process being measured.
 */
export async function startWarehouseProcess(opts: { loginLatencyMs: number; queryLatencyMs: number; deals: number }): Promise<WarehouseProcess> {
  const port = await freePort();
  const cli = path.join(__dirname, '..', '..', 'bin', 'fleet.js');
  const child = spawn(process.execPath, [cli, 'warehouse', '--port', String(port)], {
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      LOCAL_WAREHOUSE_LOGIN_LATENCY_MS: String(opts.loginLatencyMs),
      LOCAL_WAREHOUSE_QUERY_LATENCY_MS: String(opts.queryLatencyMs),
      LOCAL_WAREHOUSE_DEALS: String(opts.deals),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`fleet warehouse exited with ${child.exitCode}: ${stderr.slice(-500)}`);
    try {
      const r = await fetch(`${url}/fleet/stats`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`fleet warehouse did not answer on ${url} within 60 s: ${stderr.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid,
    stats: async () => (await (await fetch(`${url}/fleet/stats`)).json()) as WarehouseStats,
    resetStats: async () => {
      await fetch(`${url}/fleet/reset-stats`, { method: 'POST' });
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        child.once('exit', () => {
          clearTimeout(killer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
