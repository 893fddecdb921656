import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { type LocalWarehouseProcess, startLocalWarehouseProcess } from '../src';
import { parseCommandLine, UsageError } from '../src/cli';
import { connect as connectTo, destroy, exec } from './helpers/driver';

const connect = (url: string, username: string, password: string) => connectTo(url, { username, password });

// The built bin, as `npx local-snowflake` runs it (`npm test` builds dist/ first).
const BIN = path.join(__dirname, '..', 'bin', 'local-snowflake.js');

interface Running {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the bin with `node`, resolving once it prints where it listens. */
function runBin(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the bin did not listen within 30 s: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], stdout: () => out, stderr: () => err, exited });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the bin exited (${code ?? signal}) before listening: ${err}`));
    });
  });
}

/** Runs the bin to completion (for arguments that end it at once). */
function runToExit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('local-snowflake bin (a separate process, the real driver)', () => {
  let running: Running | undefined;

  afterEach(async () => {
    // Stopped by its own pid, never by name.
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      process.kill(running.child.pid!, 'SIGKILL');
      await running.exited;
    }
    running = undefined;
  });

  it('listens, prints how to connect, answers snowflake-sdk with its options applied, and exits 0 on SIGTERM', async () => {
    running = await runBin(['--port', '0', '--deals', '37', '--seed', '7', '--login-latency-ms', '0', '--user', 'alice', '--password', 'wonderland']);
    expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(running.stdout()).toContain(`accessUrl: '${running.url}'`);
    expect(running.stdout()).toContain("username: 'alice'");

    const conn = await connect(running.url, 'alice', 'wonderland');
    try {
      expect(await exec(conn, 'SELECT COUNT(*) AS N FROM DEALS')).toEqual([{ N: 37 }]);
      const [row] = await exec(conn, 'SELECT ID FROM DEALS WHERE ID = ?', ['D-37']);
      expect(row).toEqual({ ID: 'D-37' });
    } finally {
      await destroy(conn);
    }
    // The admin user is the one given: the default one does not exist.
    await expect(connect(running.url, 'fleet', 'fleet')).rejects.toThrow();

    process.kill(running.child.pid!, 'SIGTERM');
    expect(await running.exited).toEqual({ code: 0, signal: null });
  });

  it('exits 0 on SIGINT too', async () => {
    running = await runBin(['--port', '0', '--deals', '0']);
    process.kill(running.child.pid!, 'SIGINT');
    expect(await running.exited).toEqual({ code: 0, signal: null });
  });

  it('sends every result inline with --result-chunk-bytes off', async () => {
    running = await runBin(['--port', '0', '--deals', '2000', '--login-latency-ms', '0', '--result-chunk-bytes', 'off']);
    const conn = await connect(running.url, 'fleet', 'fleet');
    try {
      expect(await exec(conn, 'SELECT ID, NAME, NOTES FROM DEALS')).toHaveLength(2000);
    } finally {
      await destroy(conn);
    }
    const stats = (await (await fetch(`${running.url}/fleet/stats`)).json()) as { chunkedResults: number };
    expect(stats.chunkedResults).toBe(0);
    process.kill(running.child.pid!, 'SIGTERM');
    expect((await running.exited).code).toBe(0);
  });

  it('refuses bad arguments with one line and exit code 2, before starting anything', async () => {
    for (const args of [['--port', 'eighty'], ['--bogus'], ['--seed', '-3'], ['--user', 'alice'], ['--result-chunk-bytes', '0'], ['extra']]) {
      const r = await runToExit(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^local-snowflake: .*\(see --help\)/);
    }
  });

  it('prints its usage with --help and its version with --version', async () => {
    const help = await runToExit(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--port', '--host', '--deals', '--seed', '--login-latency-ms', '--query-latency-ms', '--user', '--password', '--result-chunk-bytes']) {
      expect(help.stdout).toContain(flag);
    }
    const version = await runToExit(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `${(require('../package.json') as { version: string }).version}\n` });
  });
});

describe('parseCommandLine', () => {
  it('maps flags to startLocalWarehouse options; the port defaults to 8085', () => {
    expect(parseCommandLine([]).options.port).toBe(8085);
    expect(
      parseCommandLine([
        '--port',
        '0',
        '--host',
        '0.0.0.0',
        '--deals',
        '5',
        '--seed=-3',
        '--login-latency-ms',
        '10',
        '--query-latency-ms',
        '2',
        '--result-chunk-bytes',
        'off',
      ]).options,
    ).toEqual({
      port: 0,
      host: '0.0.0.0',
      deals: 5,
      seed: -3,
      loginLatencyMs: 10,
      queryLatencyMs: 2,
      resultChunkBytes: Infinity,
      user: undefined,
      password: undefined,
      dbPath: undefined,
    });
    expect(parseCommandLine(['--result-chunk-bytes', '4096']).options.resultChunkBytes).toBe(4096);
  });

  it('names the flag and the value it refuses', () => {
    expect(() => parseCommandLine(['--deals', '1.5'])).toThrow(new UsageError('--deals must be an integer from 0 to 1000000, got "1.5"'));
    expect(() => parseCommandLine(['--password', 'x'])).toThrow(UsageError);
  });
});

describe('startLocalWarehouseProcess', () => {
  let wh: LocalWarehouseProcess | undefined;
  afterEach(async () => {
    await wh?.close();
    wh = undefined;
  });

  it('runs the bin in a child process and controls it over HTTP: stats, reset, faults, close', async () => {
    wh = await startLocalWarehouseProcess({ deals: 10, loginLatencyMs: 0 });
    expect(wh.pid).toEqual(expect.any(Number));
    expect(wh.url).toBe(`http://127.0.0.1:${wh.port}`);
    const conn = await connect(wh.url, 'fleet', 'fleet');
    try {
      await exec(conn, 'SELECT 1');
      expect((await wh.stats()).queries).toBe(1);
      await wh.resetStats();
      expect((await wh.stats()).queries).toBe(0);
      await wh.setFault({ mode: 'error' });
      const err = await exec(conn, 'SELECT 1').then(
        () => undefined,
        (e: Error & { code?: unknown }) => e,
      );
      expect(String(err?.code)).toBe('000603');
      await wh.setFault({ mode: 'none' });
      expect(await exec(conn, 'SELECT 2 AS X')).toEqual([{ X: 2 }]);
      await expect(wh.setFault({ mode: 'sideways' } as never)).rejects.toThrow(/fault\.mode/);
    } finally {
      await destroy(conn);
    }
    const pid = wh.pid!;
    await wh.close();
    await wh.close(); // idempotent
    expect(() => process.kill(pid, 0)).toThrow(); // gone
  });
});
