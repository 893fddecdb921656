import { spawn } from 'node:child_process';
import path from 'node:path';
import type { WarehouseFault } from './options';
import type { WarehouseStats } from './stats';

/** Options of {@link startLocalWarehouseProcess}: the ones the `local-snowflake` bin takes as flags. */
export interface LocalWarehouseProcessOptions {
  /** Port; default `0` (a free one, read back from `url`). */
  port?: number;
  host?: string;
  deals?: number;
  seed?: number;
  loginLatencyMs?: number;
  queryLatencyMs?: number;
  /** Give `user` and `password` together. */
  user?: string;
  password?: string;
  /** `Infinity` sends every result inline. */
  resultChunkBytes?: number;
  /** Milliseconds to wait for the server to listen. Default `60_000`. */
  startTimeoutMs?: number;
}

/** A local warehouse running in a child process; its controls go over the `/fleet/*` HTTP endpoints. */
export interface LocalWarehouseProcess {
  readonly url: string;
  readonly port: number;
  /** The child's process id (e.g. to read its CPU time from /proc). */
  readonly pid: number | undefined;
  stats(): Promise<WarehouseStats>;
  resetStats(): Promise<void>;
  setFault(fault: WarehouseFault): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s if it has not exited. Idempotent. */
  close(): Promise<void>;
}

const BIN = path.join(__dirname, '..', 'bin', 'local-snowflake.js');
const LISTENING = /^local-snowflake listening on (http:\/\/\S+)/m;

function flags(o: LocalWarehouseProcessOptions): string[] {
  const out = ['--port', String(o.port ?? 0)];
  const add = (flag: string, v: string | number | undefined) => {
    if (v !== undefined) out.push(`--${flag}`, String(v));
  };
  add('host', o.host);
  add('deals', o.deals);
  add('seed', o.seed);
  add('login-latency-ms', o.loginLatencyMs);
  add('query-latency-ms', o.queryLatencyMs);
  add('user', o.user);
  add('password', o.password);
  add('result-chunk-bytes', o.resultChunkBytes === Infinity ? 'off' : o.resultChunkBytes);
  return out;
}

/**
 * Starts the `local-snowflake` bin as a child process and resolves once it listens. Benchmarks use it so
 * that the simulated warehouse's work (DuckDB, the stand-in embedder, result encoding) runs beside the
 * process being measured, as a real warehouse's would, not inside it.
 *
 * @example
 *   const wh = await startLocalWarehouseProcess({ deals: 1000, loginLatencyMs: 300, queryLatencyMs: 20 });
 *   // … point snowflake-sdk at wh.url, then read (await wh.stats()).queries …
 *   await wh.close();
 */
export async function startLocalWarehouseProcess(options: LocalWarehouseProcessOptions = {}): Promise<LocalWarehouseProcess> {
  const child = spawn(process.execPath, [BIN, ...flags(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`local-snowflake did not listen within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      stdout += d.toString();
      const m = LISTENING.exec(stdout);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      child.stdout.resume(); // the rest of the banner is not read
      resolve(m[1]);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      reject(new Error(`local-snowflake exited with ${code ?? signal} before listening: ${stderr}`));
    };
    child.stdout.on('data', onData);
    child.once('exit', onExit);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  let closed: Promise<void> | undefined;
  const post = async (endpoint: string, body?: unknown) => {
    const r = await fetch(`${url}/fleet/${endpoint}`, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body) });
    if (!r.ok) throw new Error(`local-snowflake /fleet/${endpoint}: ${r.status} ${await r.text()}`);
  };
  return {
    url,
    port: Number(new URL(url).port),
    pid: child.pid,
    stats: async () => (await (await fetch(`${url}/fleet/stats`)).json()) as WarehouseStats,
    resetStats: () => post('reset-stats'),
    setFault: (fault) => post('fault', fault),
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        child.once('exit', () => {
          clearTimeout(killer);
          resolve();
        });
        child.kill('SIGTERM');
      })),
  };
}
