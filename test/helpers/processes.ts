import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/**
 * Child processes in tests: the one launcher. It collects what the process prints, waits for a line,
 * and stops it by its own pid (SIGTERM first, SIGKILL after a grace period) - never by name.
 */

/** The fleet's CLI, as the image runs it (`node bin/fleet.js`; it loads dist/, which `npm test` builds first). */
const FLEET_CLI = path.join(__dirname, '..', '..', 'bin', 'fleet.js');

/** Output kept per stream: a long run (the memory fault logs for minutes) must not grow the test's memory. */
const KEEP_CHARS = 2_000_000;

export interface LaunchOptions {
  /** Set on top of this process's environment. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** How errors name the process; default its arguments. */
  name?: string;
}

/** How a process ended: its exit code, or the name of the signal that ended it. */
type ExitStatus = number | string;

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Launched {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process ends. */
  readonly exited: Promise<ExitStatus>;
  /** stdout and stderr as they arrived, interleaved (the tail, for long runs). */
  output(): string;
  stdout(): string;
  stderr(): string;
  stopped(): boolean;
  /** Resolves with the output so far once it contains `text`; rejects if the process exits first or `timeoutMs` passes. */
  logged(text: string | RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` (unless the process has ended) and waits for the exit and the rest of its output. */
  kill(signal?: NodeJS.Signals): Promise<ExitStatus>;
  /**
   * SIGTERM, as Kubernetes stops a pod; SIGKILL if the process is still running after `graceMs`. Resolves
   * once it has ended and the rest of its output has arrived.
   */
  stop(graceMs?: number): Promise<ExitStatus>;
  /**
   * Waits for the process to end by itself and its streams to close. After `timeoutMs` it is SIGKILLed,
   * which the result shows (`signal: 'SIGKILL'`).
   */
  finished(timeoutMs?: number): Promise<Finished>;
}

/**
 * Starts `command args` with its stdout and stderr collected.
 *
 * @example
 *   const warehouse = launch(process.execPath, ['bin/fleet.js', 'warehouse', '--port', '0'], { env: { LOG_LEVEL: 'warn' } });
 *   await warehouse.logged(/listening on/);
 *   expect(await warehouse.stop()).toBe(0);
 */
export function launch(command: string, args: readonly string[], opts: LaunchOptions = {}): Launched {
  const name = opts.name ?? [path.basename(command), ...args].join(' ');
  const child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  let stderr = '';
  const keep = (s: string) => (s.length > 2 * KEEP_CHARS ? s.slice(-KEEP_CHARS) : s);
  const waiters = new Set<{ matches: (s: string) => boolean; resolve: (s: string) => void }>();
  const onData = (stream: 'stdout' | 'stderr') => (d: Buffer) => {
    const text = d.toString();
    out += text;
    if (stream === 'stdout') stdout = keep(stdout + text);
    else stderr = keep(stderr + text);
    for (const w of waiters) if (w.matches(out)) w.resolve(out);
    out = keep(out);
  };
  child.stdout!.on('data', onData('stdout'));
  child.stderr!.on('data', onData('stderr'));

  let spawnError: Error | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (err) => {
      spawnError = err;
      resolve(`could not start: ${err.message}`);
    });
  });
  const closed = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  /**
   * The exit, then the end of its output: stdout and stderr close right after the exit, unless a process it
   * started still holds them (then 2 s is enough for the last of ours to arrive).
   */
  const ended = async (): Promise<ExitStatus> => {
    const status = await exited;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000)))]);
    clearTimeout(timer);
    return status;
  };
  const stopped = () => spawnError !== undefined || child.exitCode !== null || child.signalCode !== null;
  const tail = () => out.slice(-3000);

  const launched: Launched = {
    child,
    pid: child.pid ?? -1,
    exited,
    output: () => out,
    stdout: () => stdout,
    stderr: () => stderr,
    stopped,
    logged(text, timeoutMs = 30_000) {
      const matches = (s: string) => (typeof text === 'string' ? s.includes(text) : text.test(s));
      if (matches(out)) return Promise.resolve(out);
      return new Promise<string>((resolve, reject) => {
        const waiter = {
          matches,
          resolve: (s: string) => {
            settle();
            resolve(s);
          },
        };
        const timer = setTimeout(() => {
          settle();
          reject(new Error(`${name} did not print ${String(text)} within ${timeoutMs} ms; output:\n${tail()}`));
        }, timeoutMs);
        const settle = () => {
          clearTimeout(timer);
          waiters.delete(waiter);
        };
        waiters.add(waiter);
        // Output can still arrive after the exit: decide once the streams have closed.
        void ended().then((status) => {
          if (!waiters.has(waiter)) return;
          settle();
          if (matches(out)) resolve(out);
          else reject(new Error(`${name} ended (${status}) before printing ${String(text)}; output:\n${tail()}`));
        });
      });
    },
    async kill(signal = 'SIGKILL') {
      if (!stopped()) child.kill(signal);
      return ended();
    },
    async stop(graceMs = 20_000) {
      if (stopped()) return ended();
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const inTime = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)))]);
      clearTimeout(timer);
      return inTime ? ended() : launched.kill('SIGKILL');
    },
    async finished(timeoutMs = 60_000) {
      const timer = setTimeout(() => void launched.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
      await ended();
      return { code: child.exitCode, signal: child.signalCode, stdout, stderr: spawnError ? `${stderr}${spawnError.message}` : stderr };
    },
  };
  return launched;
}

/** `node bin/fleet.js …args`: the CLI in its own process. */
export function launchFleet(args: readonly string[], opts: LaunchOptions = {}): Launched {
  return launch(process.execPath, [FLEET_CLI, ...args], { name: `fleet ${args.join(' ')}`, ...opts });
}
