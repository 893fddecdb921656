import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHUNK_PATH, ChunkDownloads } from './chunk-downloads';
import { type DatasetCounts, loadDemoDataset } from './dataset-load';
import { DuckPool } from './duck-pool';
import { registerCortexFunctions } from './functions';
import { asObject, BadRequestError, bearerToken, type JsonBody, readJsonBody, sendJson } from './http-io';
import { type LoginIdentity, LoginVerifier, readLoginRequest } from './login';
import { LoginRefusedError } from './login-refused-error';
import {
  type CompiledFault,
  type CompiledWarehouseOptions,
  compileFault,
  compileOptions,
  type LocalWarehouseOptions,
  validLatency,
  type WarehouseFault,
} from './options';
import { errorReply, loginRefusedReply, loginReply, okReply, renewReply } from './protocol';
import type { QueryExecutionStatus, QueryHistoryEntry, QueryHistoryFilter } from './query-history';
import { QueryService } from './query-service';
import { readParameterObject } from './session-parameters';
import { type Session, SessionStore } from './sessions';
import { SnowflakeError } from './snowflake-error';
import { readStatementParameters } from './statement-parameters';
import { StatsRecorder, type WarehouseStats } from './stats';
import { registerTimeLimitedGenerator } from './time-limited-generator';
import { UserStatements } from './user-statements';
import {
  DAY_MS,
  DEFAULT_OAUTH_TTL_MS,
  DEFAULT_TOKEN_DAYS,
  type UserProperties,
  type UserProperty,
  UserRegistry,
  userErrors,
  userName,
  validTokenOptions,
} from './users';

/** A running local warehouse. */
export interface LocalWarehouse {
  /** Base URL to give the driver as `accessUrl`, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  readonly port: number;
  /** Rows generated at start (zeros when an existing database file was reused) and the timeline's anchor day. */
  readonly dataset: DatasetCounts;
  /** Counters since start or the last reset; also served as JSON at `GET /fleet/stats`. */
  stats(): WarehouseStats;
  /** Zeroes the counters (also `POST /fleet/reset-stats`). */
  resetStats(): void;
  /** Changes the simulated latencies from the next request on. */
  setLatency(latency: { loginMs?: number; queryMs?: number }): void;
  /**
   * Drops every session, as if they had expired server-side. The driver's next call on any existing
   * connection gets Snowflake's `390111` (session gone), after which that connection is unusable (the
   * call fails with driver error 407002) and a pool must replace it.
   */
  forgetSessions(): void;
  /** Injects (or clears, with `{ mode: 'none' }`) a failure mode; see {@link WarehouseFault}. */
  setFault(fault: WarehouseFault): void;

  // Users and credentials. The same as the user statements the admin user can run over the driver
  // (CREATE/ALTER/DROP USER, ALTER USER … ADD/REMOVE PROGRAMMATIC ACCESS TOKEN), for tests and tools.
  // Names are read like SQL identifiers: `svc` is `SVC`, a name that could not be unquoted is kept as
  // written. Refusals throw the `SnowflakeError` the statement would return (e.g. `002002` when the user
  // exists, `001008` for a SERVICE user with a password or a value that is no RSA public key).

  /**
   * Creates a user, as `CREATE [OR REPLACE] USER` does.
   *
   * @example
   *   wh.createUser('svc_loader', { type: 'SERVICE', rsaPublicKey: publicKeyPem, defaultRole: 'LOADER' });
   */
  createUser(name: string, properties?: UserProperties, options?: { orReplace?: boolean }): void;
  /**
   * Changes a user, as `ALTER USER … SET` / `UNSET` does; e.g. key rotation: set `rsaPublicKey2`, move the
   * clients to the new key, then unset `rsaPublicKey`.
   */
  alterUser(name: string, change: { set?: UserProperties; unset?: UserProperty[] }): void;
  /** Drops a user (not the admin), as `DROP USER` does; its tokens stop working. */
  dropUser(name: string): void;
  /**
   * Adds a programmatic access token to a user and returns its secret (the only time it is shown), as
   * `ALTER USER … ADD PROGRAMMATIC ACCESS TOKEN` does. `ttlMs` is the local equivalent of
   * `DAYS_TO_EXPIRY` (default 15 days, at most 365), so a test can make a token that expires in a second.
   * `roleRestriction` is required for SERVICE users, as in Snowflake.
   *
   * @example
   *   const secret = wh.issueProgrammaticAccessToken('svc_loader', 'ci', { roleRestriction: 'LOADER', ttlMs: 1000 });
   *   snowflake.createConnection({ …, username: 'svc_loader', authenticator: 'PROGRAMMATIC_ACCESS_TOKEN', token: secret });
   */
  issueProgrammaticAccessToken(user: string, tokenName: string, options?: { ttlMs?: number; roleRestriction?: string }): string;
  /** Revokes a programmatic access token, as `ALTER USER … REMOVE PROGRAMMATIC ACCESS TOKEN` does. */
  revokeProgrammaticAccessToken(user: string, tokenName: string): void;
  /**
   * Issues an OAuth access token for a user, standing in for an external OAuth server (Snowflake's
   * default lifetime: `ttlMs` 10 minutes). Log in with `authenticator: 'OAUTH', token`; an expired token
   * gets Snowflake's 390318, an unknown one 390303.
   */
  issueOAuthToken(user: string, options?: { ttlMs?: number; role?: string }): string;
  /**
   * The most recent 10,000 statements executed (replays are not executions), newest first: query id,
   * session, user, the first 1,000 characters of the SQL, the QUERY_TAG and STATEMENT_TIMEOUT_IN_SECONDS
   * in effect, times, status, error code, rows and bytes inline and in chunk files. Also served as JSON
   * at `GET /fleet/query-history?queryTag=…&sessionId=…&user=…&status=…&limit=…`.
   *
   * @example
   *   const [last] = wh.queryHistory({ queryTag: 'nightly-load', limit: 1 });
   */
  queryHistory(filter?: QueryHistoryFilter): QueryHistoryEntry[];
  /** Stops listening, ends open connections and closes the database. Idempotent. */
  close(): Promise<void>;
}

const SWEEP_INTERVAL_MS = 60_000;
const QUERY_RESULT_PATH = /^\/queries\/([0-9a-f-]{36})\/result$/i;
const QUERY_ABORT_PATH = /^\/queries\/([0-9a-f-]{36})\/abort-request$/i;
const MONITORING_PATH = /^\/monitoring\/queries\/([0-9a-f-]{36})$/i;

/**
 * The server behind {@link startLocalWarehouse}: one Node HTTP server speaking the Snowflake REST
 * protocol snowflake-sdk 3.3 uses, over one DuckDB database. Request routing lives here; query
 * handling in `QueryService`, sessions in `SessionStore`.
 */
class LocalWarehouseServer implements LocalWarehouse {
  readonly url: string;
  readonly port: number;
  private loginMs: number;
  private queryMs: number;
  private fault: CompiledFault = compileFault({ mode: 'none' });
  private readonly sessions = new SessionStore();
  private readonly users: UserRegistry;
  private readonly logins: LoginVerifier;
  private readonly queries: QueryService;
  private readonly chunkDownloads: ChunkDownloads;
  private readonly sweeper: NodeJS.Timeout;
  private closePromise?: Promise<void>;

  constructor(
    private readonly opts: CompiledWarehouseOptions,
    private readonly http: Server,
    private readonly pool: DuckPool,
    private readonly recorder: StatsRecorder,
    private readonly closing: AbortController,
    readonly dataset: DatasetCounts,
  ) {
    const address = http.address() as AddressInfo;
    this.port = address.port;
    this.url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${this.port}`;
    this.loginMs = opts.loginLatencyMs;
    this.queryMs = opts.queryLatencyMs;
    this.users = new UserRegistry({ name: opts.user, password: opts.password });
    this.logins = new LoginVerifier(this.users);
    this.queries = new QueryService({
      pool,
      stats: recorder,
      logger: opts.logger,
      queryLatencyMs: () => this.queryMs,
      fault: () => this.fault,
      closing: closing.signal,
      resultChunkBytes: opts.resultChunkBytes,
      userStatements: new UserStatements(this.users),
    });
    this.chunkDownloads = new ChunkDownloads((queryId) => this.queries.chunks(queryId), recorder);
    this.sweeper = setInterval(() => {
      for (const s of this.sessions.sweepExpired()) void this.queries.releaseSession(s);
    }, SWEEP_INTERVAL_MS);
    this.sweeper.unref();
    http.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err) => {
        opts.logger.error({ err }, 'local warehouse request handler crashed');
        if (!res.headersSent) res.destroy();
      });
    });
  }

  stats(): WarehouseStats {
    return this.recorder.snapshot(this.sessions.size);
  }

  resetStats(): void {
    this.recorder.reset();
  }

  setLatency(latency: { loginMs?: number; queryMs?: number }): void {
    const loginMs = latency.loginMs === undefined ? this.loginMs : validLatency('loginMs', latency.loginMs);
    const queryMs = latency.queryMs === undefined ? this.queryMs : validLatency('queryMs', latency.queryMs);
    this.loginMs = loginMs;
    this.queryMs = queryMs;
  }

  forgetSessions(): void {
    for (const s of this.sessions.clear()) void this.queries.releaseSession(s);
  }

  setFault(fault: WarehouseFault): void {
    this.fault = compileFault(fault);
    this.chunkDownloads.setFault(this.fault);
    this.opts.logger.info({ fault: fault.mode, sqlPattern: fault.sqlPattern, pattern: fault.pattern }, 'local warehouse fault set');
  }

  queryHistory(filter?: QueryHistoryFilter): QueryHistoryEntry[] {
    return this.queries.queryHistory(filter);
  }

  createUser(name: string, properties: UserProperties = {}, options: { orReplace?: boolean } = {}): void {
    this.users.create(userName(name), properties, { orReplace: options.orReplace === true });
  }

  alterUser(name: string, change: { set?: UserProperties; unset?: UserProperty[] }): void {
    if (!this.users.alter(userName(name), change)) throw userErrors.noSuchUser(userName(name));
  }

  dropUser(name: string): void {
    if (!this.users.drop(userName(name))) throw userErrors.noSuchUser(userName(name));
  }

  issueProgrammaticAccessToken(user: string, tokenName: string, options: { ttlMs?: number; roleRestriction?: string } = {}): string {
    const { ttlMs, role } = validTokenOptions('issueProgrammaticAccessToken', options.ttlMs, options.roleRestriction, DEFAULT_TOKEN_DAYS * DAY_MS);
    return this.users.addToken(userName(user), userName(tokenName), { ttlMs, roleRestriction: role })!;
  }

  revokeProgrammaticAccessToken(user: string, tokenName: string): void {
    this.users.removeToken(userName(user), userName(tokenName));
  }

  issueOAuthToken(user: string, options: { ttlMs?: number; role?: string } = {}): string {
    const { ttlMs, role } = validTokenOptions('issueOAuthToken', options.ttlMs, options.role, DEFAULT_OAUTH_TTL_MS);
    return this.users.issueOAuthToken(userName(user), ttlMs, role);
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    await step(() => clearInterval(this.sweeper));
    await step(() => this.closing.abort());
    await step(
      () =>
        new Promise<void>((resolve, reject) => {
          this.http.close((err) => (err ? reject(err) : resolve()));
          this.http.closeAllConnections();
        }),
    );
    await step(() => this.forgetSessions());
    await step(() => this.pool.close());
    if (errors.length > 0) throw new AggregateError(errors, 'local warehouse did not close cleanly');
    this.opts.logger.info({ url: this.url }, 'local warehouse closed');
  }

  /**
   * Where the client reached this server (its `Host` header), so the chunk URLs in a reply work from
   * wherever the client is (another pod, a port-forward); the listening address otherwise.
   */
  private origin(req: IncomingMessage): string {
    const host = req.headers.host;
    return host && /^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(host) ? `http://${host}` : this.url;
  }

  /** Injected slowness for requests other than queries (which get theirs in QueryService). */
  private slowMs(): number {
    return this.fault.mode === 'slow' && !this.fault.sqlPattern ? this.fault.slowMs : 0;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const path = url.pathname;
    if (path.startsWith('/fleet/')) return this.handleFleet(req, res, path);
    if (this.fault.mode === 'down') {
      // As if unreachable: no reply at all, the client sees a reset connection.
      req.socket.destroy();
      return;
    }
    try {
      if (this.slowMs() > 0 && path !== '/session/v1/login-request' && path !== '/queries/v1/query-request') {
        await sleep(this.slowMs(), undefined, { signal: this.closing.signal });
      }
      const chunk = req.method === 'GET' ? CHUNK_PATH.exec(path) : null;
      if (chunk) return this.chunkDownloads.serve(req, res, chunk[1], Number(chunk[2]));
      sendJson(res, await this.route(req, url));
    } catch (err) {
      if (err instanceof BadRequestError) {
        sendJson(res, JSON.stringify({ success: false, code: null, message: err.message, data: null }), err.status);
      } else if (err instanceof SnowflakeError) {
        sendJson(res, errorReply(err), err.httpStatus);
      } else if ((err as Error)?.name === 'AbortError' && this.closing.signal.aborted) {
        res.destroy();
      } else {
        // Never a 5xx: the driver would retry it (up to its retry limit) with the same request id.
        this.opts.logger.error({ err, path }, 'local warehouse internal error');
        sendJson(res, errorReply(new SnowflakeError('000603', `SQL execution internal error: ${(err as Error)?.message ?? String(err)}`, 'XX000')));
      }
    }
  }

  private async route(req: IncomingMessage, url: URL): Promise<JsonBody> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'POST' && path === '/session/v1/login-request') return this.login(req, url);
    if (method === 'POST' && path === '/telemetry/send') {
      await readJsonBody(req); // accepted and ignored
      return okReply('Log Received');
    }
    if (method === 'POST' && path === '/session/token-request') {
      await readJsonBody(req);
      const session = this.sessions.renew(bearerToken(req));
      this.recorder.counters.tokenRenewals++;
      return renewReply(session);
    }

    const session = this.sessions.authenticate(bearerToken(req));
    if (method === 'POST' && path === '/queries/v1/query-request') {
      const body = asObject(await readJsonBody(req), 'query-request');
      return this.queries.query(session, url.searchParams.get('requestId') ?? undefined, body, this.origin(req));
    }
    if (method === 'GET' && QUERY_RESULT_PATH.test(path)) return this.queries.result(QUERY_RESULT_PATH.exec(path)![1]);
    if (method === 'POST' && path === '/session/heartbeat') {
      this.recorder.counters.heartbeats++;
      return okReply(null);
    }
    if (method === 'POST' && path === '/session' && url.searchParams.get('delete') === 'true') {
      this.sessions.delete(session);
      await this.queries.releaseSession(session);
      return okReply(null);
    }
    if (method === 'POST' && path === '/queries/v1/abort-request') {
      const body = asObject(await readJsonBody(req), 'abort-request');
      this.queries.abort(session, { requestId: typeof body.requestId === 'string' ? body.requestId : undefined });
      return okReply(null);
    }
    if (method === 'POST' && QUERY_ABORT_PATH.test(path)) {
      this.queries.abort(session, { queryId: QUERY_ABORT_PATH.exec(path)![1] });
      return okReply(null);
    }
    if (method === 'GET' && MONITORING_PATH.test(path)) return this.queries.status(MONITORING_PATH.exec(path)![1]);
    throw new BadRequestError(404, `the local warehouse does not serve ${method} ${path}`);
  }

  /**
   * `POST /session/v1/login-request`: a password, key-pair JWT, programmatic access token or OAuth token
   * checked against the user registry (see `LoginVerifier`). A refusal is a Snowflake login error reply,
   * logged with its reason and incident id, never with the credential.
   */
  private async login(req: IncomingMessage, url: URL): Promise<string> {
    const body = asObject(await readJsonBody(req), 'login-request');
    const data = (typeof body.data === 'object' && body.data !== null ? body.data : {}) as Record<string, unknown>;
    const request = readLoginRequest(data);
    const delay = this.loginMs + this.slowMs();
    if (delay > 0) await sleep(delay, undefined, { signal: this.closing.signal });
    let identity: LoginIdentity;
    try {
      identity = this.logins.verify(request);
    } catch (err) {
      if (!(err instanceof LoginRefusedError)) throw err;
      this.recorder.countFailedLogin(err.reason);
      this.opts.logger.info(
        { loginName: request.loginName, authenticator: request.authenticator, code: err.code, reason: err.reason, incident: err.incident },
        'local warehouse refused a login',
      );
      return loginRefusedReply(err, request.loginName);
    }
    const { user } = identity;
    const param = (name: string, fallback: string) => (url.searchParams.get(name) || fallback).toUpperCase();
    // Parameters the client sets at login (its queryTag, jsTreatIntegerAsBigInt, keep-alive…).
    const loginParameters = data.SESSION_PARAMETERS;
    const statementParameters = readStatementParameters(loginParameters);
    const session: Session = this.sessions.create(
      {
        user: user.name,
        database: param('databaseName', 'FLEET'),
        schema: param('schemaName', 'PUBLIC'),
        warehouse: param('warehouse', user.defaultWarehouse ?? 'LOCAL_WH'),
        // A token's role restriction is the session's role, whatever the client asked for.
        role: identity.role?.toUpperCase() ?? param('roleName', user.defaultRole ?? 'PUBLIC'),
      },
      readParameterObject(loginParameters),
    );
    if (Object.keys(statementParameters).length > 0) session.parameters = statementParameters;
    this.recorder.countLogin(identity.authenticator);
    return loginReply(session);
  }

  private async handleFleet(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    try {
      if (req.method === 'GET' && path === '/fleet/stats') return sendJson(res, JSON.stringify(this.stats()));
      if (req.method === 'GET' && path === '/fleet/query-history') {
        return sendJson(res, JSON.stringify(this.queryHistory(historyFilter(new URL(req.url ?? '/', 'http://local').searchParams))));
      }
      if (req.method === 'POST' && path === '/fleet/reset-stats') {
        this.resetStats();
        return sendJson(res, JSON.stringify({ ok: true }));
      }
      if (req.method === 'POST' && path === '/fleet/fault') {
        this.setFault((await readJsonBody(req)) as WarehouseFault);
        return sendJson(res, JSON.stringify({ ok: true, fault: { ...this.fault, sqlPattern: this.fault.sqlPattern?.source } }));
      }
      sendJson(res, JSON.stringify({ error: `no such endpoint: ${req.method} ${path}` }), 404);
    } catch (err) {
      sendJson(res, JSON.stringify({ error: (err as Error).message }), 400);
    }
  }
}

/** The filter of `GET /fleet/query-history` from its query string; a bad value is a 400. */
function historyFilter(params: URLSearchParams): QueryHistoryFilter {
  const filter: QueryHistoryFilter = {};
  const integer = (name: string) => {
    const text = params.get(name);
    if (text === null) return undefined;
    if (!/^\d+$/.test(text)) throw new Error(`query-history \`${name}\` must be a non-negative integer, got ${JSON.stringify(text)}`);
    return Number(text);
  };
  if (params.has('queryTag')) filter.queryTag = params.get('queryTag')!;
  if (params.has('user')) filter.user = params.get('user')!;
  filter.sessionId = integer('sessionId');
  filter.limit = integer('limit');
  const status = params.get('status');
  if (status !== null) {
    const statuses: QueryExecutionStatus[] = ['RUNNING', 'SUCCESS', 'FAILED_WITH_ERROR', 'ABORTED'];
    if (!statuses.includes(status as QueryExecutionStatus))
      throw new Error(`query-history \`status\` must be one of ${statuses.join(', ')}, got ${JSON.stringify(status)}`);
    filter.status = status as QueryExecutionStatus;
  }
  return filter;
}

/**
 * Starts a local Snowflake-protocol server backed by an embedded DuckDB database holding the seeded
 * demo dataset (`DEALS`, `GONG_CALLS`, `SLACK_MESSAGES`, `LINEAR_ISSUES`), with local stand-ins for
 * `SNOWFLAKE.CORTEX.EMBED_TEXT_768`, `SENTIMENT` and `SUMMARIZE`. Point the real driver at it:
 *
 * @example
 *   const wh = await startLocalWarehouse({ deals: 1000, loginLatencyMs: 0 });
 *   const conn = snowflake.createConnection({ account: 'local', username: 'fleet', password: 'fleet', accessUrl: wh.url });
 *   // … conn.connect(), conn.execute({ sqlText: 'SELECT * FROM DEALS WHERE ID = ?', binds: ['D-1'] }) …
 *   await wh.close();
 */
export async function startLocalWarehouse(options: LocalWarehouseOptions = {}): Promise<LocalWarehouse> {
  const opts = compileOptions(options);
  const started = performance.now();
  const recorder = new StatsRecorder();
  let dataset: DatasetCounts | undefined;
  const pool = await DuckPool.open(opts.dbPath, opts.connections, async (conn) => {
    await registerCortexFunctions(conn, (n) => {
      recorder.counters.embeddedTexts += n;
    });
    registerTimeLimitedGenerator(conn);
    dataset = await loadDemoDataset(conn, opts.seed >>> 0, opts.deals, opts.anchorMs);
  });
  const http = createServer({ keepAlive: true });
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(opts.port, opts.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await pool.close();
    throw new Error(`local warehouse could not listen on ${opts.host}:${opts.port}: ${(err as Error).message}`, { cause: err });
  }
  // Every sleeping query (and slow login) listens on this one signal: dozens at once are normal, not a leak.
  const closing = new AbortController();
  setMaxListeners(0, closing.signal);
  const server = new LocalWarehouseServer(opts, http, pool, recorder, closing, dataset!);
  opts.logger.info({ url: server.url, dataset, startupMs: Math.round(performance.now() - started) }, 'local warehouse listening');
  return server;
}
