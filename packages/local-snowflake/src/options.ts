/** The logging surface the local warehouse needs; a pino logger fits. */
export interface WarehouseLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Options of {@link startLocalWarehouse}. Every field is optional; bad values are rejected at start with
 * an error naming the option and the value received.
 */
export interface LocalWarehouseOptions {
  /** TCP port to listen on; `0` picks a free port (read it back from `LocalWarehouse.port`). Default `0`. */
  port?: number;
  /** Interface to bind. Default `'127.0.0.1'` (never exposed beyond the machine unless asked). */
  host?: string;
  /**
   * The admin user: a PERSON user with this password, the only one that may run user DDL (CREATE/ALTER/
   * DROP USER, tokens). Other users come from that DDL or `LocalWarehouse.createUser`. Login names are
   * compared case-insensitively, like Snowflake's. Default `'fleet'`.
   */
  user?: string;
  /** The admin user's password. Default `'fleet'`. */
  password?: string;
  /** Delay before each login reply, standing in for Snowflake's 200–500 ms session setup. Default `300`. */
  loginLatencyMs?: number;
  /** Delay added to every query round trip (network + warehouse); it never blocks other queries. Default `0`. */
  queryLatencyMs?: number;
  /** Seed of the demo dataset: the same seed always produces the same rows. Default `42`. */
  seed?: number;
  /**
   * Number of deals in the demo dataset (`D-1` … `D-<deals>`); calls, Slack messages and issues scale with
   * it (about 6.6 texts per deal, notes included). `0` creates empty tables. Default `10_000`. Ignored when `dbPath` is a
   * file that already holds a `DEALS` table.
   */
  deals?: number;
  /**
   * The day the demo timeline ends (a Date or an ISO date string; the time of day is ignored, UTC):
   * history (deal creation, calls, messages, issues) falls in the 540 days before it and open deals close
   * in the 180 days after it. Default: today, so that "this quarter" and "no activity for 30 days" have
   * answers whenever the fleet runs. Pass a fixed date for rows that are identical on every day; texts,
   * ids and amounts depend on `seed` only.
   */
  anchorDate?: Date | string;
  /** DuckDB database: `':memory:'` or a file path (kept between runs). Default `':memory:'`. */
  dbPath?: string;
  /** DuckDB connections serving queries in parallel; more queries wait their turn. Default `4`. */
  connections?: number;
  /**
   * Size in bytes of the part of a query result sent inline in the reply (`data.rowset`). A larger result
   * comes back the way Snowflake returns large JSON results: the first rows inline, the rest as gzip
   * chunk files (`data.chunks` plus a `qrmk` key) that the driver downloads from this server itself at
   * `GET /chunks/<queryId>/<n>`. Parts are cut at row boundaries by their encoded size (a single larger
   * row makes a part of its own); the chunk files double in size from twice this value up to 16 MiB
   * (or this value, if larger), as Snowflake's grow from small first chunks.
   * `Infinity` sends every result inline (no chunking).
   *
   * Default `100_000`. What it is based on, from what Snowflake returns (its server decides; a client
   * can only cap chunk files with CLIENT_RESULT_CHUNK_SIZE): the inline part and first chunks are small
   * and chunks then grow geometrically, e.g. 105 → 198 → … → 27,695 rows per chunk for a 100k-row
   * result, capped by CLIENT_RESULT_CHUNK_SIZE (default 160 MB; lightdash/lightdash#25681); 500 rows of a wide table came back with 0 rows inline
   * and two chunk files (fixer-m/snowflake-db-net-client#13); a 500k-row query carried ~12,288 rows
   * inline (arrisdb/arris#65); chunk files of one 80-chunk result ranged from 27,045 to 16,874,671
   * bytes (snowflakedb/snowflake-connector-net#71); with the default setting the largest chunks measure
   * ~16 MiB compressed (snowflakedb/snowflake-connector-nodejs#790). So ~100 KB inline: an embedding
   * batch of a dozen 768-d vectors or a few thousand narrow rows fits inline; anything bigger is chunked,
   * as it would be in Snowflake.
   */
  resultChunkBytes?: number;
  /** Where request and lifecycle logs go. Default: none. */
  logger?: WarehouseLogger;
}

/** Options after defaults and validation; what the rest of the server reads. */
export interface CompiledWarehouseOptions {
  readonly port: number;
  readonly host: string;
  readonly user: string;
  readonly password: string;
  readonly loginLatencyMs: number;
  readonly queryLatencyMs: number;
  readonly seed: number;
  readonly deals: number;
  /** Epoch ms of the anchor day's midnight (UTC). */
  readonly anchorMs: number;
  readonly dbPath: string;
  readonly connections: number;
  /** Inline part of a result, in bytes; `Infinity` when results are never chunked. */
  readonly resultChunkBytes: number;
  readonly logger: WarehouseLogger;
}

/** Injected failure mode, for tests of retries, deadlines, circuit breakers and batch splitting. */
export interface WarehouseFault {
  /**
   * - `'none'`: normal service.
   * - `'error'`: query-requests fail with a Snowflake internal error (code `000603`, SQLSTATE `XX000`).
   * - `'slow'`: requests are delayed by `slowMs` more.
   * - `'down'`: every Snowflake request has its connection reset without a reply, as if the service were
   *   unreachable (the `/fleet/*` endpoints keep working).
   * - `'poison'`: query-requests with a bound value containing `pattern` fail with a SQL error
   *   (code `100132`, SQLSTATE `22000`); the same statement without that value succeeds, so a worker
   *   that splits a failed batch can isolate the one bad item.
   * - `'chunk-error'`: downloads of result chunk files (`GET /chunks/…`) fail with HTTP `status`, the
   *   next `times` of them or all; everything else works. The driver retries 5xx, 403, 408 and 429
   *   itself (up to 10 times, sleeping 1–16 s between tries); any other status fails the result's row
   *   stream at once with driver error 402002.
   */
  mode: 'none' | 'error' | 'slow' | 'down' | 'poison' | 'chunk-error';
  /** Extra delay in `'slow'` mode. Default `1000`. */
  slowMs?: number;
  /**
   * Restricts `'error'` and `'slow'` to query-requests whose SQL text matches this regular expression
   * (case-insensitive, `.` matches newlines); logins and other calls are then unaffected. Default: all.
   */
  sqlPattern?: string;
  /** The text that makes a bound value poisonous in `'poison'` mode. Required there. */
  pattern?: string;
  /** HTTP status of a failed chunk download in `'chunk-error'` mode (400–599). Default `503`. */
  status?: number;
  /** How many chunk downloads fail in `'chunk-error'` mode before they succeed again. Default: all. */
  times?: number;
}

/** A validated fault, with its pattern compiled. */
export interface CompiledFault {
  readonly mode: WarehouseFault['mode'];
  readonly slowMs: number;
  readonly sqlPattern?: RegExp;
  readonly pattern?: string;
  /** `'chunk-error'` only: the status sent and how many downloads fail (`Infinity`: all). */
  readonly status: number;
  readonly times: number;
}

const MAX_LATENCY_MS = 10 * 60_000;
const MAX_DEALS = 1_000_000;
const MAX_RESULT_CHUNK_BYTES = 1024 * 1024 * 1024;
const FAULT_MODES: ReadonlyArray<WarehouseFault['mode']> = ['none', 'error', 'slow', 'down', 'poison', 'chunk-error'];

const silentLogger: WarehouseLogger = { debug() {}, info() {}, warn() {}, error() {} };

function fail(option: string, expectation: string, value: unknown): never {
  throw new RangeError(`local warehouse option \`${option}\` must be ${expectation}, got ${JSON.stringify(value) ?? String(value)}`);
}

function integerIn(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(option, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** A delay in ms: finite, not negative, at most ten minutes. */
export function validLatency(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_LATENCY_MS) {
    fail(option, `a number of milliseconds from 0 to ${MAX_LATENCY_MS}`, value);
  }
  return value;
}

function nonEmptyString(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) fail(option, 'a non-empty string', value);
  return value;
}

/** Applies defaults, then rejects any bad value with an error that names the option. */
export function compileOptions(opts: LocalWarehouseOptions = {}): CompiledWarehouseOptions {
  if (typeof opts !== 'object' || opts === null) fail('options', 'an object', opts);
  const o = {
    port: 0,
    host: '127.0.0.1',
    user: 'fleet',
    password: 'fleet',
    loginLatencyMs: 300,
    queryLatencyMs: 0,
    seed: 42,
    deals: 10_000,
    dbPath: ':memory:',
    connections: 4,
    resultChunkBytes: 100_000,
    ...stripUndefined(opts),
  };
  const logger = o.logger ?? silentLogger;
  for (const method of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof (logger as unknown as Record<string, unknown>)[method] !== 'function') fail('logger', `an object with a ${method}() method`, typeof logger);
  }
  return Object.freeze({
    port: integerIn('port', o.port, 0, 65535),
    host: nonEmptyString('host', o.host),
    user: nonEmptyString('user', o.user),
    password: nonEmptyString('password', o.password),
    loginLatencyMs: validLatency('loginLatencyMs', o.loginLatencyMs),
    queryLatencyMs: validLatency('queryLatencyMs', o.queryLatencyMs),
    seed: integerIn('seed', o.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    deals: integerIn('deals', o.deals, 0, MAX_DEALS),
    anchorMs: anchorDay(o.anchorDate ?? new Date()),
    dbPath: nonEmptyString('dbPath', o.dbPath),
    connections: integerIn('connections', o.connections, 1, 64),
    resultChunkBytes: resultChunkBytes(o.resultChunkBytes),
    logger,
  });
}

function resultChunkBytes(value: unknown): number {
  if (value === Infinity) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_RESULT_CHUNK_BYTES) {
    fail('resultChunkBytes', `an integer from 1 to ${MAX_RESULT_CHUNK_BYTES} (bytes), or Infinity for no chunking`, value);
  }
  return value;
}

/** Validates a fault, fills in `slowMs` and compiles `sqlPattern`. */
export function compileFault(f: WarehouseFault): CompiledFault {
  if (typeof f !== 'object' || f === null) fail('fault', "an object like { mode: 'none' }", f);
  if (!FAULT_MODES.includes(f.mode)) {
    fail('fault.mode', `one of ${FAULT_MODES.map((m) => `'${m}'`).join(', ')}`, f.mode);
  }
  const slowMs = f.slowMs === undefined ? 1000 : validLatency('fault.slowMs', f.slowMs);
  let sqlPattern: RegExp | undefined;
  if (f.sqlPattern !== undefined) {
    if (typeof f.sqlPattern !== 'string' || f.sqlPattern === '') fail('fault.sqlPattern', 'a non-empty regular expression', f.sqlPattern);
    try {
      sqlPattern = new RegExp(f.sqlPattern, 'is');
    } catch (err) {
      fail('fault.sqlPattern', `a valid regular expression (${(err as Error).message})`, f.sqlPattern);
    }
  }
  if (f.mode === 'poison' && (typeof f.pattern !== 'string' || f.pattern === '')) {
    fail('fault.pattern', "a non-empty string in 'poison' mode", f.pattern);
  }
  const status = f.status === undefined ? 503 : integerIn('fault.status', f.status, 400, 599);
  const times = f.times === undefined ? Infinity : integerIn('fault.times', f.times, 1, Number.MAX_SAFE_INTEGER);
  return Object.freeze({ mode: f.mode, slowMs, sqlPattern, pattern: f.pattern, status, times });
}

function anchorDay(value: unknown): number {
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) fail('anchorDate', 'a Date or an ISO date string', value);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
