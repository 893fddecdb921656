import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import { bindingsContain, readBindings } from './binds';
import { ddlTarget, objectExists, withDdlStatus } from './ddl-status';
import type { DuckPool } from './duck-pool';
import { fromDuckDBError } from './duckdb-errors';
import { undoDuplicateRename } from './duplicate-columns';
import { describeStatement, type Execution, executeStatement, STATEMENT_TYPE_ID } from './executor';
import type { JsonBody } from './http-io';
import { materializeHistory, readHistoryCall } from './information-schema-history';
import { multiStatementCount, splitStatements, statementBindings, statementCountMismatch } from './multi-statement';
import type { CompiledFault, WarehouseLogger } from './options';
import { encodeQueryReply, errorReply, okReply, queryStatusReply } from './protocol';
import { QueryHistory, type QueryHistoryEntry, type QueryHistoryFilter } from './query-history';
import { ReplayCache, type StoredReply } from './replay-cache';
import { chunkLimits, packResultChunks, type ResultChunks } from './result-chunks';
import { singleTextResult, statusResult } from './result-encoding';
import { writeRowsetSegments } from './rowset-segments';
import { readParameterObject, type SessionSettings, sessionTimeZone } from './session-parameters';
import type { Session } from './sessions';
import { SnowflakeError } from './snowflake-error';
import { rewriteSql } from './sql-rewrite';
import { applySessionChange, applySettingsChange, effectiveParameters, parseAlterSession, readStatementParameters } from './statement-parameters';
import { classifyQuery, type StatsRecorder } from './stats';
import { readSystemWait, runSystemWait } from './system-wait';
import { isUserStatement, redactUserStatementSecrets, type UserStatements } from './user-statements';

/** What the query service needs from the server; read on every request so changes apply at once. */
export interface QueryServiceContext {
  readonly pool: DuckPool;
  readonly stats: StatsRecorder;
  readonly logger: WarehouseLogger;
  /** Configured per-query latency. */
  queryLatencyMs(): number;
  /** The injected fault, if any (`mode: 'none'` otherwise). */
  fault(): CompiledFault;
  /** Aborted when the server closes, to cut every pending delay short. */
  readonly closing: AbortSignal;
  /** Bytes of a result sent inline; larger results are chunked (`Infinity`: never). */
  readonly resultChunkBytes: number;
  /** CREATE/ALTER/DROP/DESC USER, which never reach DuckDB. */
  readonly userStatements: UserStatements;
}

interface RunningQuery {
  readonly queryId: string;
  readonly requestKey: string;
  readonly abort: AbortController;
  conn?: DuckDBConnection;
  /** Set when the statement timeout, not the client, canceled it. */
  timedOutAfterS?: number;
  /** One statement of a multi-statement request: runs as one statement, whatever MULTI_STATEMENT_COUNT says. */
  readonly child?: boolean;
}

type QueryStatus = { status: 'RUNNING' | 'SUCCESS' | 'FAILED_WITH_ERROR' | 'ABORTED'; error?: SnowflakeError };

const STATUS_HISTORY = 10_000;

/** The replay cache's key of a request id: request ids are scoped to their session. */
const requestKeyOf = (session: Session, requestId: string) => `${session.id}\u0000${requestId}`;

// Injected failures say so in `data.injected`; they are never replayed (see `execute`).
const injectedFailure = () =>
  new SnowflakeError('000603', 'SQL execution internal error: Processing aborted due to error 300002:2523180465; incident 1234567.', 'XX000', {
    internalError: true,
    injected: true,
  });

// Snowflake's answer to a statement that outran STATEMENT_TIMEOUT_IN_SECONDS (e.g. "000630 (57014):
// Statement reached its statement or warehouse timeout of 120 second(s) and was canceled.").
const statementTimeout = (seconds: number) =>
  new SnowflakeError('000630', `Statement reached its statement or warehouse timeout of ${seconds} second(s) and was canceled.`, '57014');

const abortError = () => Object.assign(new Error('statement canceled'), { name: 'AbortError' });

const poisonFailure = (pattern: string) =>
  new SnowflakeError('100132', `SQL execution error:\nInvalid input: a bound value contains the poison pattern '${pattern}'.`, '22000', {
    injected: true,
  });

/**
 * `query-request` and everything around it: replay by request id, latency, the Snowflake statements
 * DuckDB does not know (session commands, transactions pinned to one connection), statement parameters
 * (QUERY_TAG, STATEMENT_TIMEOUT_IN_SECONDS), execution, large results cut into chunk files, result
 * retrieval by query id, status, cancellation and the query history.
 */
export class QueryService {
  private readonly replay = new ReplayCache({ maxEntries: 2000, maxBytes: 128 * 1024 * 1024, ttlMs: 10 * 60_000 });
  private readonly running = new Map<string, RunningQuery>();
  private readonly runningByRequest = new Map<string, string>();
  private readonly statuses = new Map<string, QueryStatus>();
  private readonly history = new QueryHistory();

  constructor(private readonly ctx: QueryServiceContext) {}

  /**
   * Handles one `POST /queries/v1/query-request`; resolves to the reply body. `origin` (e.g.
   * `http://127.0.0.1:54321`) is where the client reached this server: chunk URLs point there.
   */
  async query(session: Session, requestId: string | undefined, body: Record<string, unknown>, origin: string): Promise<JsonBody> {
    const sqlText = body.sqlText;
    if (typeof sqlText !== 'string') {
      return errorReply(new SnowflakeError('000900', 'SQL compilation error:\nsqlText is missing or not a string.', '42000'));
    }
    // Request ids are remembered per session, as Snowflake does: the same id on another connection is
    // another statement (code that leans on cross-connection de-duplication would double-insert there).
    const requestKey = requestId ? requestKeyOf(session, requestId) : `once\u0000${randomUUID()}`;
    const { reply, replayed } = await this.replay.run(requestKey, () =>
      body.asyncExec === true ? this.startDetached(session, requestKey, sqlText, body, origin) : this.execute(session, requestKey, sqlText, body, origin),
    );
    if (replayed) this.ctx.stats.counters.replayedRequests++;
    return reply.body;
  }

  /**
   * `asyncExec`: starts the statement and answers at once with `333334` and its query id. The client
   * then polls `/monitoring/queries/<id>` and fetches the result from `/queries/<id>/result`, where it is
   * kept like any other (see `result`). A retried request gets the same query id back.
   */
  private async startDetached(
    session: Session,
    requestKey: string,
    sqlText: string,
    body: Record<string, unknown>,
    origin: string,
  ): Promise<{ reply: StoredReply; keep: boolean }> {
    const queryId = randomUUID();
    const resultKey = `detached\u0000${queryId}`;
    // Registered (RUNNING) before the reply leaves, so the client's first status poll finds it.
    const started = this.replay.run(resultKey, () => this.execute(session, requestKey, sqlText, body, origin, queryId));
    started.catch((err) => this.ctx.logger.warn({ err, queryId }, 'local warehouse detached query failed unexpectedly'));
    const reply = JSON.stringify({
      data: { queryId, getResultUrl: `/queries/${queryId}/result`, queryAbortsAfterSecs: 300, progressDesc: null },
      code: '333334',
      message: 'Asynchronous execution in progress. Use provided query id to perform query monitoring and management.',
      success: true,
    });
    return { reply: { queryId, body: Buffer.from(reply, 'utf8'), isResult: false }, keep: true };
  }

  private async execute(
    session: Session,
    requestKey: string,
    sqlText: string,
    body: Record<string, unknown>,
    origin: string,
    queryId: string = randomUUID(),
    child = false,
  ): Promise<{ reply: StoredReply; keep: boolean }> {
    const counters = this.ctx.stats.counters;
    counters.queries++;
    counters.queriesByKind[classifyQuery(sqlText)]++;
    const run: RunningQuery = { queryId, requestKey, abort: new AbortController(), child };
    this.running.set(queryId, run);
    this.runningByRequest.set(requestKey, queryId);
    this.setStatus(queryId, { status: 'RUNNING' });
    const sessionLevel = effectiveParameters(session.parameters, {});
    const entry = this.history.start({
      queryId,
      sessionId: session.id,
      user: session.user,
      // CREATE/ALTER USER … PASSWORD = '…' must not be kept (and served over HTTP) as written.
      queryText: redactUserStatementSecrets(sqlText),
      queryTag: sessionLevel.queryTag,
      statementTimeoutS: sessionLevel.statementTimeoutS,
    });
    let timeout: NodeJS.Timeout | undefined;
    try {
      const params = effectiveParameters(session.parameters, readStatementParameters(body.parameters));
      entry.queryTag = params.queryTag;
      entry.statementTimeoutS = params.statementTimeoutS;
      // The limit counts from arrival, covers latency and injected slowness too, and holds whether or
      // not the client is still waiting.
      if (params.statementTimeoutS > 0) {
        timeout = setTimeout(() => this.timeOut(run, params.statementTimeoutS), params.statementTimeoutS * 1000);
        timeout.unref();
      }
      const fault = this.ctx.fault();
      const targeted = !fault.sqlPattern || fault.sqlPattern.test(sqlText);
      const delay = this.ctx.queryLatencyMs() + (fault.mode === 'slow' && targeted ? fault.slowMs : 0);
      if (delay > 0) await sleep(delay, undefined, { signal: AbortSignal.any([run.abort.signal, this.ctx.closing]) });
      if (fault.mode === 'error' && targeted) throw injectedFailure();
      if (fault.mode === 'poison' && bindingsContain(body.bindings, fault.pattern!)) throw poisonFailure(fault.pattern!);
      const execution = await this.runRequest(session, run, sqlText, body, origin);
      const numberOfBinds = typeof body.bindings === 'object' && body.bindings ? Object.keys(body.bindings).length : 0;
      const reply = await this.encodeReply(session, queryId, execution, numberOfBinds, origin, readParameterObject(body.parameters));
      counters.rowsReturned += execution.result.rowset.length;
      this.setStatus(queryId, { status: 'SUCCESS' });
      this.history.finish(entry, {
        status: 'SUCCESS',
        rowsProduced: execution.result.rowset.length,
        bytesInline: reply.body.length,
        chunkCount: reply.chunks?.files.length ?? 0,
        bytesInChunks: reply.chunks?.descriptors.reduce((n, d) => n + d.uncompressedSize, 0) ?? 0,
        bytesInChunksCompressed: reply.chunks?.descriptors.reduce((n, d) => n + d.compressedSize, 0) ?? 0,
      });
      return { reply, keep: true };
    } catch (err) {
      counters.failedQueries++;
      const aborted = run.abort.signal.aborted || (err as Error)?.name === 'AbortError';
      const error =
        run.timedOutAfterS !== undefined
          ? statementTimeout(run.timedOutAfterS)
          : aborted
            ? new SnowflakeError('000604', 'SQL execution canceled', '57014')
            : fromDuckDBError(err);
      if (run.timedOutAfterS !== undefined) counters.statementTimeouts++;
      // SQL mistakes are the caller's business; anything that is not a DuckDB or Snowflake error is ours.
      const expected = aborted || err instanceof SnowflakeError || /^[A-Za-z ]+ Error:/.test(String((err as Error)?.message));
      if (expected) this.ctx.logger.debug({ queryId, code: error.code }, 'local warehouse query failed');
      else this.ctx.logger.warn({ err, queryId }, 'local warehouse query failed unexpectedly');
      const status = aborted ? 'ABORTED' : 'FAILED_WITH_ERROR';
      this.setStatus(queryId, { status, error });
      const replyBody = Buffer.from(errorReply(error, { queryId }), 'utf8');
      this.history.finish(entry, { status, errorCode: error.code, errorMessage: error.message, bytesInline: replyBody.length });
      // Injected faults and cancellations are not replayed: a retry after the fault clears must run.
      const keep = !aborted && error.data.injected !== true;
      return { reply: { queryId, body: replyBody }, keep };
    } finally {
      clearTimeout(timeout);
      this.running.delete(queryId);
      if (this.runningByRequest.get(requestKey) === queryId) this.runningByRequest.delete(requestKey);
    }
  }

  /** Cancels a statement that reached its STATEMENT_TIMEOUT_IN_SECONDS, as `abort` cancels one on request. */
  private timeOut(run: RunningQuery, seconds: number): void {
    if (!this.running.has(run.queryId)) return;
    run.timedOutAfterS = seconds;
    run.abort.abort();
    this.interrupt(run);
  }

  /**
   * Interrupts the run's DuckDB statement, and again every 50 ms until the run ends: an interrupt that lands
   * while the connection is between statements (the session's SET TimeZone, a history table, the DDL check)
   * is lost, and the statement that follows would run to its end (an hour, for GENERATOR(TIMELIMIT => 3600)).
   */
  private interrupt(run: RunningQuery): void {
    run.conn?.interrupt();
    const timer = setInterval(() => {
      if (this.running.get(run.queryId) !== run) clearInterval(timer);
      else run.conn?.interrupt();
    }, 50);
    timer.unref();
  }

  /**
   * The reply bytes: the whole rowset inline, or for a result larger than `resultChunkBytes` its first
   * rows inline and the rest in chunk files kept with the reply.
   */
  private async encodeReply(
    session: Session,
    queryId: string,
    execution: Execution,
    numberOfBinds: number,
    origin: string,
    statementParameters: SessionSettings,
  ): Promise<StoredReply> {
    const segments = writeRowsetSegments(execution.result.rowset, chunkLimits(this.ctx.resultChunkBytes));
    let chunks: ResultChunks | undefined;
    if (segments.length > 1) {
      chunks = await packResultChunks(queryId, origin, segments.slice(1));
      this.ctx.stats.counters.chunkedResults++;
    }
    const layout = { inline: segments[0], chunks };
    const body = encodeQueryReply(session, queryId, execution.result, execution.statementTypeId, numberOfBinds, layout, {
      statementParameters,
      resultIds: execution.resultIds,
    });
    return { queryId, body, chunks };
  }

  /**
   * Runs a request's SQL: one statement, or several when MULTI_STATEMENT_COUNT allows it, each as a
   * child query with its own id, history entry and stored result, one after the other; the first that
   * fails fails the request (the ones before it stay done, as in Snowflake).
   */
  private async runRequest(session: Session, run: RunningQuery, sqlText: string, body: Record<string, unknown>, origin: string): Promise<Execution> {
    const statements = run.child ? [] : splitStatements(sqlText);
    if (statements.length === 0) return this.runStatement(session, run, sqlText, body);
    const statementLevel = readParameterObject(body.parameters).get('MULTI_STATEMENT_COUNT');
    const desired = multiStatementCount(statementLevel ?? session.settings.get('MULTI_STATEMENT_COUNT') ?? 1);
    if (desired !== 0 && desired !== statements.length) throw statementCountMismatch(statements.length, desired);
    if (statements.length === 1) return this.runStatement(session, run, sqlText, body);

    const resultIds: string[] = [];
    let offset = 0;
    for (const statement of statements) {
      if (run.abort.signal.aborted) throw abortError();
      const childId = randomUUID();
      const childKey = `child\u0000${childId}`;
      resultIds.push(childId);
      const childBody = { ...body, sqlText: statement.text, bindings: statementBindings(body.bindings, statement, offset) };
      offset += statement.positionalBinds;
      // Canceling the request cancels the child that is running.
      const cancelChild = () => this.abort(session, { queryId: childId });
      run.abort.signal.addEventListener('abort', cancelChild, { once: true });
      try {
        await this.replay.run(childKey, () => this.execute(session, childKey, statement.text, childBody, origin, childId, true));
      } finally {
        run.abort.signal.removeEventListener('abort', cancelChild);
      }
      const outcome = this.statuses.get(childId);
      if (outcome?.status !== 'SUCCESS')
        throw outcome?.error ?? new SnowflakeError('000603', 'SQL execution internal error: a statement of the request did not finish.', 'XX000');
    }
    return {
      result: singleTextResult('multiple statement execution', 'Multiple statements executed successfully.'),
      statementTypeId: STATEMENT_TYPE_ID.multiStatement,
      resultIds,
    };
  }

  private async runStatement(session: Session, run: RunningQuery, sqlText: string, body: Record<string, unknown>): Promise<Execution> {
    const rewritten = rewriteSql(sqlText, session);
    if (rewritten.statementCount === 0) throw new SnowflakeError('000900', 'Empty SQL statement.', '42000');
    if (rewritten.statementCount > 1) {
      throw new SnowflakeError('000008', `Actual statement count ${rewritten.statementCount} did not match the desired statement count 1.`, '0A000');
    }
    const [w1, w2] = rewritten.leadingWords;
    if (w1 === 'ALTER' && w2 === 'SESSION') {
      // QUERY_TAG and STATEMENT_TIMEOUT_IN_SECONDS act here; every setting (TIMEZONE, output formats…) is
      // reported back in the replies' parameters, which is how the driver applies them.
      const change = parseAlterSession(sqlText, body.bindings);
      session.parameters = applySessionChange(session.parameters, change);
      applySettingsChange(session.settings, change);
      return { result: statusResult('Statement executed successfully.'), statementTypeId: STATEMENT_TYPE_ID.session };
    }
    if (w1 === 'USE') {
      // USE WAREHOUSE/ROLE/DATABASE have nothing to change here.
      return { result: statusResult('Statement executed successfully.'), statementTypeId: STATEMENT_TYPE_ID.session };
    }
    const wait = readSystemWait(sqlText);
    if (wait) return runSystemWait(wait, AbortSignal.any([run.abort.signal, this.ctx.closing]));
    if (isUserStatement(sqlText)) return this.ctx.userStatements.execute(session, sqlText);
    if (w1 === 'BEGIN' || (w1 === 'START' && w2 === 'TRANSACTION')) return this.begin(session);
    if (w1 === 'COMMIT' || w1 === 'ROLLBACK') return this.end(session, w1);

    const columnName = (duckName: string, index: number, all: readonly string[]) => {
      const name = undoDuplicateRename(duckName, index, all, sqlText);
      return sqlText.includes(`"${name}"`) ? name : name.toUpperCase();
    };
    const work = async (conn: DuckDBConnection, inTransaction: boolean) => {
      // Canceled (or timed out) while waiting for a connection: do not start.
      if (run.abort.signal.aborted) throw abortError();
      // The session's TIMEZONE reads and converts TIMESTAMP_LTZ values for this statement, as in Snowflake.
      const zone = sessionTimeZone(session.settings);
      run.conn = conn;
      try {
        if (zone) await conn.run(`SET TimeZone = '${zone}'`);
        const history = readHistoryCall(rewritten.sql, session);
        if (history) await materializeHistory(conn, this.history.list(history.filter), session);
        const sql = history?.sql ?? rewritten.sql;
        if (body.describeOnly === true) return await describeStatement(conn, sql, columnName);
        const binds = readBindings(body.bindings, rewritten.parameterCount);
        const ddl = ddlTarget(sqlText);
        const existedBefore = ddl?.conditional ? await objectExists(conn, ddl) : undefined;
        // Canceled while the statements above ran: an interrupt between statements does not stop the next one.
        if (run.abort.signal.aborted) throw abortError();
        try {
          return withDdlStatus(await executeStatement(conn, sql, binds, { inTransaction, columnName }), ddl, existedBefore);
        } catch (err) {
          // TRUNCATE TABLE IF EXISTS of a missing table (see translateDialect).
          if (rewritten.missingTableIsSuccess && /Table with name .* does not exist/i.test(String((err as Error)?.message))) {
            return { result: statusResult('Statement executed successfully.'), statementTypeId: STATEMENT_TYPE_ID.ddl };
          }
          throw err;
        }
      } finally {
        run.conn = undefined;
        // Back to the pool's UTC, whatever happened; a failure here must not hide the statement's own.
        if (zone) {
          await conn.run(`SET TimeZone = 'UTC'`).catch((err) => this.ctx.logger.warn({ err }, 'local warehouse could not reset a connection to UTC'));
        }
      }
    };
    if (session.tx) return this.inTransaction(session, (conn) => work(conn, true));
    return this.ctx.pool.with((conn) => work(conn, false));
  }

  /** Runs `fn` on the session's pinned connection, one statement at a time. */
  private inTransaction<T>(session: Session, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const next = session.txQueue.then(() => {
      if (!session.tx) throw new SnowflakeError('000603', 'Transaction ended while the statement was queued.', 'XX000');
      return fn(session.tx.conn);
    });
    session.txQueue = next.catch(() => undefined);
    return next;
  }

  private async begin(session: Session): Promise<Execution> {
    // Like Snowflake, a BEGIN inside an open transaction is ignored.
    if (!session.tx) {
      const lease = await this.ctx.pool.acquire();
      try {
        await lease.conn.run('BEGIN TRANSACTION');
      } catch (err) {
        lease.release();
        throw err;
      }
      session.tx = lease;
    }
    return { result: statusResult('Statement executed successfully.'), statementTypeId: STATEMENT_TYPE_ID.transaction };
  }

  private async end(session: Session, verb: 'COMMIT' | 'ROLLBACK'): Promise<Execution> {
    if (session.tx) {
      await this.inTransaction(session, async (conn) => {
        const lease = session.tx!;
        session.tx = undefined;
        try {
          await conn.run(verb);
        } finally {
          lease.release();
        }
      });
    }
    return { result: statusResult('Statement executed successfully.'), statementTypeId: STATEMENT_TYPE_ID.transaction };
  }

  /** Rolls back and releases a session's open transaction (logout, forgotten or expired session). */
  async releaseSession(session: Session): Promise<void> {
    const lease = session.tx;
    if (!lease) return;
    session.tx = undefined;
    try {
      await lease.conn.run('ROLLBACK');
    } catch {
      // The connection goes back to the pool either way; a failed rollback means nothing was open.
    } finally {
      lease.release();
    }
  }

  /** The chunk files of a stored result, while its reply is kept (see `ReplayCache`). */
  chunks(queryId: string): ResultChunks | undefined {
    return this.replay.getByQueryId(queryId)?.chunks;
  }

  /** Executed statements, newest first (see {@link QueryHistory}). */
  queryHistory(filter?: QueryHistoryFilter): QueryHistoryEntry[] {
    return this.history.list(filter);
  }

  /** `GET /queries/<id>/result`: the stored reply, "in progress" while running, or not found. */
  result(queryId: string): JsonBody {
    const stored = this.replay.getByQueryId(queryId);
    if (stored) return stored.body;
    if (this.running.has(queryId)) {
      return JSON.stringify({
        data: { queryId, getResultUrl: `/queries/${queryId}/result` },
        code: '333333',
        message: 'Query execution in progress',
        success: true,
        headers: null,
      });
    }
    return errorReply(new SnowflakeError('000709', `Statement ${queryId} not found`, '02000'), { queryId });
  }

  /** `GET /monitoring/queries/<id>`, read by `connection.getQueryStatus()`. */
  status(queryId: string): string {
    const s = this.statuses.get(queryId);
    return s ? queryStatusReply(queryId, s.status, s.error) : okReply({ queries: [] });
  }

  /** Cancels a running statement by query id or request id; unknown or finished ones are ignored. */
  abort(session: Session, target: { queryId?: string; requestId?: string }): void {
    this.ctx.stats.counters.aborts++;
    const queryId = target.queryId ?? (target.requestId ? this.runningByRequest.get(requestKeyOf(session, target.requestId)) : undefined);
    const run = queryId ? this.running.get(queryId) : undefined;
    if (!run) return;
    run.abort.abort();
    this.interrupt(run);
  }

  private setStatus(queryId: string, status: QueryStatus): void {
    this.statuses.delete(queryId);
    this.statuses.set(queryId, status);
    if (this.statuses.size > STATUS_HISTORY) this.statuses.delete(this.statuses.keys().next().value!);
  }
}
