import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadDemoDataset, type DatasetCounts } from './dataset-load';
import { DuckPool } from './duck-pool';
import { registerCortexFunctions } from './functions';
import { asObject, BadRequestError, bearerToken, readJsonBody, sendJson, type JsonBody } from './http-io';
import {
  compileFault,
  compileOptions,
  validLatency,
  type CompiledFault,
  type CompiledWarehouseOptions,
  type LocalWarehouseOptions,
  type WarehouseFault,
} from './options';
import { errorReply, loginReply, okReply, renewReply, wrongPasswordReply } from './protocol';
import { QueryService } from './query-service';
import { SessionStore, type Session } from './sessions';
import { SnowflakeError } from './snowflake-error';
import { StatsRecorder, type WarehouseStats } from './stats';

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
  private readonly queries: QueryService;
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
    this.queries = new QueryService({
      pool,
      stats: recorder,
      logger: opts.logger,
      queryLatencyMs: () => this.queryMs,
      fault: () => this.fault,
      closing: closing.signal,
    });
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
    this.opts.logger.info({ fault: fault.mode, sqlPattern: fault.sqlPattern, pattern: fault.pattern }, 'local warehouse fault set');
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
      sendJson(res, await this.route(req, url));
    } catch (err) {
      if (err instanceof BadRequestError) {
        sendJson(res, JSON.stringify({ success: false, code: null, message: err.message, data: null }), err.status);
      } else if (err instanceof SnowflakeError) {
        sendJson(res, errorReply(err));
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
      return this.queries.query(session, url.searchParams.get('requestId') ?? undefined, body);
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

  private async login(req: IncomingMessage, url: URL): Promise<string> {
    const body = asObject(await readJsonBody(req), 'login-request');
    const data = (typeof body.data === 'object' && body.data !== null ? body.data : {}) as Record<string, unknown>;
    const loginName = typeof data.LOGIN_NAME === 'string' ? data.LOGIN_NAME : '';
    const password = typeof data.PASSWORD === 'string' ? data.PASSWORD : '';
    const delay = this.loginMs + this.slowMs();
    if (delay > 0) await sleep(delay, undefined, { signal: this.closing.signal });
    if (loginName.toUpperCase() !== this.opts.user.toUpperCase() || password !== this.opts.password) {
      this.recorder.counters.failedLogins++;
      return wrongPasswordReply(loginName);
    }
    const param = (name: string, fallback: string) => (url.searchParams.get(name) || fallback).toUpperCase();
    const session: Session = this.sessions.create({
      user: this.opts.user.toUpperCase(),
      database: param('databaseName', 'FLEET'),
      schema: param('schemaName', 'PUBLIC'),
      warehouse: param('warehouse', 'LOCAL_WH'),
      role: param('roleName', 'PUBLIC'),
    });
    this.recorder.counters.logins++;
    return loginReply(session);
  }

  private async handleFleet(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    try {
      if (req.method === 'GET' && path === '/fleet/stats') return sendJson(res, JSON.stringify(this.stats()));
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
