import type snowflake from 'snowflake-sdk';
import { CircuitOpenError, WarehouseError, WarehouseTimeoutError } from '../warehouse/errors';
import type { BindValue, QueryOptions, Row, Warehouse } from '../warehouse/types';
import { withWarehouseSpan } from '../telemetry/tracing';
import { CircuitBreaker } from './circuit-breaker';
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
}

export interface PooledWarehouseOptions {
  pool: WarehousePool;
  /** Deadline of one attempt, including waiting for a session. Default 30,000 ms. */
  timeoutMs?: number;
  /** Retries of transient failures (network, timeout, session gone). Default 3. */
  retries?: number;
  /** First backoff between retries; doubles each time, with jitter. Default 200 ms. */
  retryBaseMs?: number;
  /** The breaker shared by every call of this client; default a new one with its defaults. */
  breaker?: CircuitBreaker;
  /** Called after every attempt. A throwing listener is ignored. */
  onCall?: (event: WarehouseCallEvent) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The production `Warehouse`: each call borrows a session from the shared pool, runs one bound
 * statement under its own deadline, retries what is transient with backoff, and fails fast while the
 * circuit is open. A session that broke mid-call is destroyed, not returned.
 */
export class PooledWarehouse implements Warehouse {
  readonly breaker: CircuitBreaker;
  private readonly pool: WarehousePool;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly onCall?: (event: WarehouseCallEvent) => void;
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
    if (!(this.timeoutMs > 0)) throw new RangeError(`PooledWarehouse: option \`timeoutMs\` must be > 0, got ${opts.timeoutMs}`);
    if (!Number.isInteger(this.retries) || this.retries < 0) throw new RangeError(`PooledWarehouse: option \`retries\` must be an integer >= 0, got ${opts.retries}`);
  }

  async query<R extends Row = Row>(sql: string, binds: readonly BindValue[] = [], opts: QueryOptions = {}): Promise<R[]> {
    const label = opts.label ?? 'query';
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    // `retried` counts the retries spent (WAREHOUSE_RETRIES); `freshSessions` the calls sent again because the
    // borrowed session was gone, which spend none.
    for (let attempt = 0, retried = 0, freshSessions = 0; ; attempt++) {
      this.breaker.before();
      const started = performance.now();
      try {
        const rows = await withWarehouseSpan(label, () => this.attempt<R>(sql, binds, label, timeoutMs, opts.signal), { 'fleet.attempt': attempt });
        this.breaker.success();
        this.report({ label, durationMs: performance.now() - started, ok: true, rows: rows.length, attempt });
        return rows;
      } catch (e) {
        const err = toWarehouseError(e, `warehouse call ${label} failed`);
        // A session from before a warehouse restart (or an expired one) says nothing about the warehouse, which
        // answered: it must not open the circuit (a full pool of them would), nor spend a retry. The session was
        // destroyed; go again at once on a new one - at most pool-max times, in case every new session is dropped.
        const sessionGone = isSessionGone(err) && freshSessions < this.pool.stats().max && !opts.signal?.aborted;
        this.breaker.failure(err, err.transient && !sessionGone);
        this.report({ label, durationMs: performance.now() - started, ok: false, rows: 0, attempt, error: err });
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

  private attempt<R>(sql: string, binds: readonly BindValue[], label: string, timeoutMs: number, signal?: AbortSignal): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      let settled = false;
      let pc: PooledConnection | undefined;
      let statement: snowflake.RowStatement | undefined;
      const finish = (err: unknown, rows?: R[]) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(rows ?? []);
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
      const timer = setTimeout(() => abandon(new WarehouseTimeoutError(label, timeoutMs)), timeoutMs);
      const onAbort = () => abandon(new WarehouseError(`warehouse call ${label} aborted`, { transient: false, code: 'FLEET_ABORTED' }));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });

      this.pool.acquire().then(
        (conn) => {
          if (settled) return this.pool.release(conn); // deadline passed while waiting
          pc = conn;
          this.calls++;
          statement = conn.connection.execute({
            sqlText: sql,
            binds: binds as snowflake.Binds,
            complete: (err, _stmt, rows) => {
              const borrowed = pc;
              pc = undefined;
              if (err) {
                const wErr = toWarehouseError(err, `warehouse call ${label} failed`);
                if (borrowed) (isSessionBroken(wErr) ? this.pool.destroy(borrowed) : this.pool.release(borrowed));
                finish(wErr);
              } else {
                if (borrowed) this.pool.release(borrowed);
                finish(undefined, (rows ?? []) as R[]);
              }
            },
          }) as snowflake.RowStatement;
        },
        (err) => finish(new WarehouseError((err as Error).message, { transient: true, code: 'FLEET_POOL_TIMEOUT', cause: err })),
      );
    });
  }
}
