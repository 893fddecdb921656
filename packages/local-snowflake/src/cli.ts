import { parseArgs } from 'node:util';
import type { LocalWarehouseOptions, WarehouseLogger } from './options';
import { type LocalWarehouse, startLocalWarehouse } from './server';

/** What `local-snowflake --help` prints. */
export const USAGE = `Usage: local-snowflake [options]

A Snowflake-protocol server on DuckDB for the real snowflake-sdk driver (demo dataset and local
stand-ins for Cortex EMBED_TEXT_768, SENTIMENT and SUMMARIZE inside). Ctrl-C (SIGINT) or SIGTERM stops it.

Options:
  --port N                  port to listen on; 0 picks a free one (default 8085)
  --host H                  interface to bind (default 127.0.0.1; 0.0.0.0 in a container)
  --deals N                 deals in the demo dataset, 0 for empty tables (default 10000)
  --seed N                  seed of the demo dataset (default 42)
  --login-latency-ms N      delay of each login, like Snowflake's session setup (default 300)
  --query-latency-ms N      delay added to each query round trip (default 0)
  --user U                  the admin user (default fleet)
  --password P              the admin user's password (default fleet); give --user and --password together
  --result-chunk-bytes N    inline part of a result before the rest is sent as chunk files, or "off"
                            to send every result inline (default 100000)
  --db PATH                 DuckDB database file kept between runs (default: in memory)
  --verbose                 log requests and lifecycle as JSON lines on stderr
  -h, --help                print this help
  -v, --version             print the version
`;

/** The bin's default port (the one the fleet's docs and SNOWFLAKE_ACCESS_URL examples use). */
export const DEFAULT_PORT = 8085;

/** The bin's arguments, compiled into the options of {@link startLocalWarehouse}. */
export interface CliCommand {
  kind: 'start' | 'help' | 'version';
  options: LocalWarehouseOptions;
  verbose: boolean;
}

/** A command-line mistake: printed as one line with the usage hint, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function integer(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * Parses the bin's arguments. Values are checked here for the shape a flag takes (an integer, `off`);
 * `startLocalWarehouse` then checks ranges again and names the option, as it does for callers.
 *
 * @example
 *   parseCommandLine(['--port', '0', '--deals', '100']).options // { port: 0, deals: 100, … }
 */
export function parseCommandLine(argv: readonly string[]): CliCommand {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\s*\n\s*/g, ' '));
  }
  const v = parsed.values;
  if (v.help) return { kind: 'help', options: {}, verbose: false };
  if (v.version) return { kind: 'version', options: {}, verbose: false };
  if ((v.user === undefined) !== (v.password === undefined)) throw new UsageError('--user and --password go together');
  let resultChunkBytes: number | undefined;
  if (v['result-chunk-bytes'] !== undefined) {
    resultChunkBytes = v['result-chunk-bytes'] === 'off' ? Infinity : integer('result-chunk-bytes', v['result-chunk-bytes'], 1, 1024 * 1024 * 1024);
  }
  const options: LocalWarehouseOptions = {
    port: integer('port', v.port, 0, 65535) ?? DEFAULT_PORT,
    host: v.host,
    deals: integer('deals', v.deals, 0, 1_000_000),
    seed: integer('seed', v.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    loginLatencyMs: integer('login-latency-ms', v['login-latency-ms'], 0, 600_000),
    queryLatencyMs: integer('query-latency-ms', v['query-latency-ms'], 0, 600_000),
    user: v.user,
    password: v.password,
    resultChunkBytes,
    dbPath: v.db,
  };
  return { kind: 'start', options, verbose: v.verbose === true };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      deals: { type: 'string' },
      seed: { type: 'string' },
      'login-latency-ms': { type: 'string' },
      'query-latency-ms': { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      'result-chunk-bytes': { type: 'string' },
      db: { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}

/** JSON lines on stderr; debug and info only with `--verbose`, warnings and errors always. */
function stderrLogger(verbose: boolean): WarehouseLogger {
  const write = (level: string) => (obj: object, msg?: string) => {
    const fields = Object.fromEntries(Object.entries(obj).map(([k, val]) => [k, val instanceof Error ? { message: val.message, stack: val.stack } : val]));
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
  const quiet = () => {};
  return { debug: verbose ? write('debug') : quiet, info: verbose ? write('info') : quiet, warn: write('warn'), error: write('error') };
}

/** The lines printed once the server listens: where it is and how to point snowflake-sdk at it. */
export function banner(server: LocalWarehouse, options: LocalWarehouseOptions, startupMs: number): string {
  const user = options.user ?? 'fleet';
  const d = server.dataset;
  return [
    `local-snowflake listening on ${server.url} (ready in ${startupMs} ms)`,
    options.dbPath && d.deals + d.calls + d.slackMessages + d.issues === 0
      ? `  tables: DEALS, GONG_CALLS, SLACK_MESSAGES, LINEAR_ISSUES as found in ${options.dbPath}`
      : `  tables: DEALS (${d.deals} rows), GONG_CALLS (${d.calls}), SLACK_MESSAGES (${d.slackMessages}), LINEAR_ISSUES (${d.issues}); timeline ends ${d.anchorDate}`,
    '  SNOWFLAKE.CORTEX.EMBED_TEXT_768 is a deterministic lexical stand-in for e5-base-v2, not the real model.',
    '',
    'connect snowflake-sdk to it:',
    `  snowflake.createConnection({ account: 'local', accessUrl: '${server.url}', username: '${user}', password: '…' })`,
    `stats: curl ${server.url}/fleet/stats    Ctrl-C stops it.`,
    '',
  ].join('\n');
}

/**
 * The `local-snowflake` command: starts the server, prints where it listens, and closes it on SIGINT or
 * SIGTERM (exit 0; a second signal exits at once with 1). Returns the exit code for commands that end
 * by themselves (help, version, bad arguments).
 */
export async function main(argv: readonly string[], version: string): Promise<number | undefined> {
  let command: CliCommand;
  try {
    command = parseCommandLine(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`local-snowflake: ${err.message} (see --help)\n`);
    return 2;
  }
  if (command.kind === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command.kind === 'version') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const started = performance.now();
  let server: LocalWarehouse;
  try {
    server = await startLocalWarehouse({ ...command.options, logger: stderrLogger(command.verbose) });
  } catch (err) {
    process.stderr.write(`local-snowflake: ${(err as Error).message}\n`);
    return 1;
  }
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`local-snowflake: ${signal} again, exiting without closing\n`);
      process.exit(1);
    }
    stopping = true;
    server.close().then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`local-snowflake: did not close cleanly: ${err.message}\n`);
        process.exit(1);
      },
    );
  };
  // Handlers first, banner second: whoever waits for the banner may signal at once, and a signal that
  // arrives before a handler exists kills the process with the default action.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.stdout.write(banner(server, command.options, Math.round(performance.now() - started)));
  return undefined;
}
