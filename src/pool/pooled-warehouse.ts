import type snowflake from 'snowflake-sdk';
import { CircuitBreaker } from '../resilience/circuit-breaker';
import { withWarehouseSpan } from '../telemetry/tracing';
import { CircuitOpenError, PoolAcquireTimeoutError, WarehouseError, WarehouseTimeoutError } from '../warehouse/errors';
import type { BindValue, QueryOptions, Row, StatementTag, Warehouse } from '../warehouse/types';
import type { CostMeter } from './cost';
import { isSessionBroken, isSessionGone, toWarehouseError } from './snowflake-connector';
import type { PooledConnection, WarehousePool } from './warehouse-pool';

/** Reported after every warehouse call (one per attempt), for metrics and slow-query logs. */
export interface WarehouseCallEvent {
  label: string;
  durationMs: number;
  ok: boolean;
  rows: number;
  attempt: number;
  error?: WarehouseError;
  /** Snowflake's query id of the attempt's statement, when it reached the warehouse (a failed one: from its error). */
  queryId?: string;
}

export interface PooledWarehouseOptions {
  pool: WarehousePool;
  /** Deadline of one attempt, including waiting for a session. Default 30,000 ms. */
  timeoutMs?: number;
  /** Retries of transient failures (network, timeout, session gone). Default 3. */
  retries?: number;
  /** First backoff between retries; doubles each time, with jitter. Default 200 ms. */
  retryBaseMs?: number;
  /**
   * The breaker shared by every call of this client; default a new one with its defaults (5 failures, 10 s).
   * Only the warehouse's own transient failures count: a SQL error says the warehouse is up, and an
   * exhausted pool (every session busy with other calls) says nothing about it.
   */
  breaker?: CircuitBreaker;
  /** Called after every attempt. A throwing listener is ignored. */
  onCall?: (event: WarehouseCallEvent) => void;
  /** The process's role, named in every statement's QUERY_TAG. Default `fleet`. */
  role?: string;
  /** Counts the credits of every statement, per queue; none when omitted. */
  cost?: CostMeter;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The QUERY_TAG of a statement: JSON naming the fleet, role, operation, queue, batch and job count, so a
 * Snowflake admin can group QUERY_HISTORY by the fleet's work (`TRY_PARSE_JSON(QUERY_TAG):queue`).
 * Each string is cut to 200 characters, so the tag stays well within Snowflake's limit of 2,000.
 */
function queryTag(role: string, label: string, tag: StatementTag | undefined, attempt: number): string {
  const cut = (v: string | undefined) => (v === undefined ? undefined : v.slice(0, 200));
  return JSON.stringify({
    app: 'warehouse-fleet',
    role: cut(role),
    op: cut(label),
    queue: cut(tag?.queue),
    batch: cut(tag?.batchId),
    jobs: tag?.jobs,
    attempt: attempt > 0 ? attempt : undefined,
  });
}

/**
 * The production `Warehouse`: each call borrows a session from the shared pool, runs one bound
 * statement under its own deadline, retries what is transient with backoff, and fails fast while the
 * circuit is open. A session that broke mid-call is destroyed, not returned.
 *
 * Results are streamed (`streamResult`): rows reach the caller as the driver has them, the inline part
 * first and then each chunk file it downloads, so a large result is never held whole twice. Every
 * statement carries a QUERY_TAG and a STATEMENT_TIMEOUT_IN_SECONDS that follows the call's deadline, so
 * Snowflake itself stops a statement whose caller has died. The query id of the statement that answered
 * goes to the call's `onQueryId` and every attempt's `onCall` event, so a caller can name it (a batch record).
 */
export class PooledWarehouse implements Warehouse {
  readonly breaker: CircuitBreaker;
  private readonly pool: WarehousePool;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly onCall?: (event: WarehouseCallEvent) => void;
  private readonly role: string;
  readonly cost?: CostMeter;
  /** Statements sent to the warehouse (attempts, including retries). */
  calls = 0;

  constructor(opts: PooledWarehouseOptions) {
    if (!opts?.pool) throw new TypeError('PooledWarehouse: option `pool` is required');
    this.pool = opts.pool;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = opts.retries ?? 3;
    this.retryBaseMs = opts.retryBaseMs ?? 200;
    this.breaker = opts.breaker ?? new CircuitBreaker();
    this.onCall = opts.onCall;
    this.role = opts.role ?? 'fleet';
    this.cost = opts.cost;
    if (!(this.timeoutMs > 0)) throw new RangeError(`PooledWarehouse: option \`timeoutMs\` must be > 0, got ${opts.timeoutMs}`);
    if (!Number.isInteger(this.retries) || this.retries < 0)
      throw new RangeError(`PooledWarehouse: option \`retries\` must be an integer >= 0, got ${opts.retries}`);
  }

  async query<R extends Row = Row>(sql: string, binds: readonly BindValue[] = [], opts: QueryOptions = {}): Promise<R[]> {
    let rows: R[] = [];
    // Each attempt starts a fresh array: a retried statement delivers its rows again.
    await this.run<R>(sql, binds, opts, () => {
      rows = [];
      return (row) => rows.push(row);
    });
    return rows;
  }

  each<R extends Row = Row>(sql: string, binds: readonly BindValue[], onRow: (row: R) => void, opts: QueryOptions = {}): Promise<number> {
    return this.run<R>(sql, binds, opts, () => onRow);
  }

  private async run<R>(sql: string, binds: readonly BindValue[], opts: QueryOptions, sinkForAttempt: () => (row: R) => void): Promise<number> {
    const label = opts.label ?? 'query';
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    // `retried` counts the retries spent (WAREHOUSE_RETRIES); `freshSessions` the calls sent again because the
    // borrowed session was gone, which spend none.
    for (let attempt = 0, retried = 0, freshSessions = 0; ; attempt++) {
      // Read before allow(): a half-open circuit hands its single probe to this call.
      const probe = this.breaker.state === 'half-open';
      if (!this.breaker.allow()) throw new CircuitOpenError(this.breaker.retryInMs(), this.breaker.lastError);
      const started = performance.now();
      try {
        const { rows, queryId } = await withWarehouseSpan(label, () => this.attempt<R>(sql, binds, opts, label, timeoutMs, attempt, sinkForAttempt()), {
          'fleet.attempt': attempt,
        });
        this.breaker.success();
        this.report({ label, durationMs: performance.now() - started, ok: true, rows, attempt, ...(queryId ? { queryId } : {}) });
        // The statement whose rows the caller got: a retried call's last attempt.
        if (queryId && opts.onQueryId) {
          try {
            opts.onQueryId(queryId);
          } catch {
            // a listener must never fail a call that succeeded
          }
        }
        return rows;
      } catch (e) {
        const err = toWarehouseError(e, `warehouse call ${label} failed`);
        // A session from before a warehouse restart (or an expired one) says nothing about the warehouse, which
        // answered: it must not open the circuit (a full pool of them would), nor spend a retry. The session was
        // destroyed; go again at once on a new one - at most pool-max times, in case every new session is dropped.
        const sessionGone = isSessionGone(err) && freshSessions < this.pool.stats().max && !opts.signal?.aborted;
        if (err instanceof PoolAcquireTimeoutError && err.exhausted) {
          // Other calls hold every session: the warehouse was never asked, so there is no verdict to count.
          // A probe that could not go out keeps the circuit open for another cool-down, for the same reason.
          if (probe) this.breaker.failure(this.breaker.lastError);
        } else {
          this.breaker.failure(err, err.transient && !sessionGone);
        }
        this.report({
          label,
          durationMs: performance.now() - started,
          ok: false,
          rows: 0,
          attempt,
          error: err,
          ...(err.queryId ? { queryId: err.queryId } : {}),
        });
        if (sessionGone) {
          freshSessions++;
          continue;
        }
        if (!err.transient || err instanceof CircuitOpenError || retried >= this.retries || opts.signal?.aborted) throw err;
        const backoff = this.retryBaseMs * 2 ** retried * (0.5 + Math.random() / 2);
        retried++;
        await sleep(backoff);
      }
    }
  }

  private report(event: WarehouseCallEvent): void {
    try {
      this.onCall?.(event);
    } catch {
      // metrics must never fail a call
    }
  }

  private attempt<R>(
    sql: string,
    binds: readonly BindValue[],
    opts: QueryOptions,
    label: string,
    timeoutMs: number,
    attemptNo: number,
    onRow: (row: R) => void,
  ): Promise<{ rows: number; queryId?: string }> {
    const signal = opts.signal;
    return new Promise<{ rows: number; queryId?: string }>((resolve, reject) => {
      let settled = false;
      let pc: PooledConnection | undefined;
      let statement: snowflake.RowStatement | undefined;
      let costToken: number | undefined;
      /** Rows delivered so far, and the result's total once the statement has run (its chunks may still be coming). */
      let delivered = 0;
      let total: number | undefined;
      /** Snowflake's id of the statement, once it has run. */
      let queryId: string | undefined;
      const charsColumns = (opts.cortex ?? []).filter((c) => c.charsColumn !== undefined);
      const chars = new Map<string, number>(charsColumns.map((c) => [c.charsColumn!, 0]));
      const finish = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (costToken !== undefined) {
          const cortex = err
            ? []
            : (opts.cortex ?? []).map((c) => ({ function: c.function, model: c.model, chars: c.inputChars ?? chars.get(c.charsColumn ?? '') ?? 0 }));
          this.cost?.end(costToken, opts.tag?.queue ?? 'none', cortex);
        }
        if (err) reject(err);
        else resolve({ rows: delivered, queryId });
      };
      const giveBack = (err?: WarehouseError) => {
        const borrowed = pc;
        pc = undefined;
        if (borrowed) err && isSessionBroken(err) ? this.pool.destroy(borrowed) : this.pool.release(borrowed);
      };
      const abandon = (err: WarehouseError) => {
        // The statement may still be running: cancel it and never hand this session out again.
        try {
          statement?.cancel(() => undefined);
        } catch {
          /* already finished */
        }
        if (pc) this.pool.destroy(pc);
        pc = undefined;
        finish(err);
      };
      const timer = setTimeout(() => {
        // Still waiting for a session when the deadline came: the pool's verdict, not the warehouse's.
        if (!pc && !statement) return finish(this.pool.timeoutError(timeoutMs));
        const detail = total === undefined ? undefined : `the statement ran; ${delivered} of ${total} rows received (result chunks still downloading)`;
        abandon(new WarehouseTimeoutError(label, timeoutMs, detail));
      }, timeoutMs);
      const onAbort = () => abandon(new WarehouseError(`warehouse call ${label} aborted`, { transient: false, code: 'FLEET_ABORTED' }));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });

      this.pool.acquire().then(
        (conn) => {
          if (settled) return this.pool.release(conn); // deadline passed while waiting
          pc = conn;
          this.calls++;
          costToken = this.cost?.begin();
          statement = conn.connection.execute({
            sqlText: sql,
            binds: binds as snowflake.Binds,
            streamResult: true,
            parameters: {
              QUERY_TAG: queryTag(this.role, label, opts.tag, attemptNo),
              // Snowflake's own limit, so a statement stops even when this process died mid-call.
              STATEMENT_TIMEOUT_IN_SECONDS: Math.max(1, Math.ceil(timeoutMs / 1000)),
            },
            complete: (err, stmt) => {
              if (settled) return;
              if (err) {
                const wErr = toWarehouseError(err, `warehouse call ${label} failed`);
                giveBack(wErr);
                return finish(wErr);
              }
              total = stmt.getNumRows();
              queryId = stmt.getQueryId() || undefined;
              const rows = stmt.streamRows();
              rows.on('data', (row: R) => {
                if (settled) return;
                try {
                  for (const [column, sum] of chars) chars.set(column, sum + Number((row as Record<string, unknown>)[column] ?? 0));
                  onRow(row);
                  delivered++;
                } catch (rowErr) {
                  rows.destroy();
                  giveBack();
                  finish(rowErr);
                }
              });
              rows.on('error', (streamErr: unknown) => {
                if (settled) return;
                // A chunk the driver could not download (after its own retries): the session is fine.
                const cause = toWarehouseError(streamErr, 'result download failed');
                giveBack();
                finish(
                  new WarehouseError(
                    `warehouse call ${label}: the statement ran, but its result could not be read (${delivered} of ${total} rows): ${cause.message}`,
                    {
                      code: cause.code,
                      transient: true,
                      queryId,
                      cause: streamErr,
                    },
                  ),
                );
              });
              rows.on('end', () => {
                if (settled) return;
                giveBack();
                finish(undefined);
              });
            },
          }) as snowflake.RowStatement;
        },
        (err) =>
          finish(
            err instanceof PoolAcquireTimeoutError
              ? err
              : new WarehouseError((err as Error).message, { transient: true, code: 'FLEET_POOL_TIMEOUT', cause: err }),
          ),
      );
    });
  }
}
