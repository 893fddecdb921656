import genericPool, { type Pool } from 'generic-pool';
import type snowflake from 'snowflake-sdk';
import { withDeadlineOr } from '../resilience/deadline';
import { PoolAcquireTimeoutError } from '../warehouse/errors';
import type { Connector } from './snowflake-connector';

/** How long close() waits for logins in flight before it abandons them (a late one is logged out as it arrives). */
const LOGIN_GRACE_MS = 1_000;
const ABANDONED = new Error('WarehousePool: closed while this login was in flight');

export interface WarehousePoolOptions {
  /** Opens and closes sessions (the real driver in production). Required. */
  connector: Connector;
  /** Sessions kept open when idle. Default 1. */
  min?: number;
  /** Most sessions at once. Default 8. */
  max?: number;
  /** How long `acquire` waits for a session before failing. Default 10,000 ms. */
  acquireTimeoutMs?: number;
  /** Idle sessions above `min` are closed after this long. Default 300,000 ms. */
  idleTimeoutMs?: number;
  /** Sessions older than this are closed on their next borrow or idle check and replaced. Default 1 h. */
  maxLifetimeMs?: number;
  /**
   * A session idle for longer than this is checked with a heartbeat before it is handed out; a
   * session used more recently is handed out without one, so a busy pool pays no round trip per query
   * (as HikariCP skips its alive check for recently used connections). Default 30,000 ms.
   */
  validateAfterIdleMs?: number;
  /** Deadline of that heartbeat. Default 5,000 ms. */
  validateTimeoutMs?: number;
  /** Clock, injectable for tests. Default `Date.now`. */
  now?: () => number;
  /** Called with the wait of every successful acquire (ms), for metrics. A throwing listener is ignored. */
  onAcquire?: (waitMs: number) => void;
}

/** One session in the pool with the facts the pool decides on. */
export interface PooledConnection {
  readonly id: number;
  readonly connection: snowflake.Connection;
  readonly createdAt: number;
  lastUsedAt: number;
}

export interface PoolStats {
  /** Sessions open (idle + borrowed). */
  size: number;
  available: number;
  borrowed: number;
  /** Callers waiting for a session. */
  pending: number;
  min: number;
  max: number;
  /** Sessions opened since start (each one a warehouse login). */
  created: number;
  destroyed: number;
  /** Heartbeats sent on borrow, and how many found the session dead. */
  validations: number;
  validationFailures: number;
  /** Sessions closed because they reached maxLifetimeMs. */
  recycled: number;
  createErrors: number;
}

const DEFAULTS = {
  min: 1,
  max: 8,
  acquireTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxLifetimeMs: 3_600_000,
  validateAfterIdleMs: 30_000,
  validateTimeoutMs: 5_000,
};

/**
 * The process's one pool of warehouse sessions, built on generic-pool. Create it at the entry point and
 * inject it; there is no module-level instance.
 *
 * @example
 *   const pool = new WarehousePool({ connector: snowflakeConnector(settings), max: 8 });
 *   const conn = await pool.acquire();
 *   try { ... } finally { pool.release(conn); }
 *   await pool.close();
 */
export class WarehousePool {
  private readonly opts: Required<Omit<WarehousePoolOptions, 'connector' | 'onAcquire'>> & Pick<WarehousePoolOptions, 'connector' | 'onAcquire'>;
  private readonly pool: Pool<PooledConnection>;
  private nextId = 1;
  private counters = { created: 0, destroyed: 0, validations: 0, validationFailures: 0, recycled: 0, createErrors: 0 };
  private lastCreateError: unknown;
  private closing?: Promise<void>;
  /** Rejects when close() stops waiting for logins in flight (see `close`). */
  private readonly loginsAbandoned: Promise<never>;
  private abandonLogins!: (err: Error) => void;

  constructor(options: WarehousePoolOptions) {
    if (!options?.connector) throw new TypeError('WarehousePool: option `connector` is required');
    const o = { ...DEFAULTS, now: Date.now, ...options };
    for (const key of ['min', 'max'] as const) {
      if (!Number.isInteger(o[key]) || o[key] < 0) throw new RangeError(`WarehousePool: option \`${key}\` must be a non-negative integer, got ${o[key]}`);
    }
    if (o.max < 1) throw new RangeError(`WarehousePool: option \`max\` must be >= 1, got ${o.max}`);
    if (o.min > o.max) throw new RangeError(`WarehousePool: option \`min\` (${o.min}) must not exceed \`max\` (${o.max})`);
    for (const key of ['acquireTimeoutMs', 'idleTimeoutMs', 'maxLifetimeMs', 'validateTimeoutMs'] as const) {
      if (!(o[key] > 0)) throw new RangeError(`WarehousePool: option \`${key}\` must be > 0 ms, got ${o[key]}`);
    }
    if (!(o.validateAfterIdleMs >= 0)) throw new RangeError(`WarehousePool: option \`validateAfterIdleMs\` must be >= 0 ms, got ${o.validateAfterIdleMs}`);
    this.opts = o;
    this.loginsAbandoned = new Promise<never>((_, reject) => {
      this.abandonLogins = reject;
    });
    this.loginsAbandoned.catch(() => undefined);

    this.pool = genericPool.createPool<PooledConnection>(
      {
        create: async () => {
          const opening = this.opts.connector.open();
          let connection: Awaited<typeof opening>;
          try {
            connection = await Promise.race([opening, this.loginsAbandoned]);
          } catch (err) {
            // Abandoned by close(): nobody will borrow this session, so if the login still succeeds it is logged out.
            if (err === ABANDONED) void opening.then((c) => this.opts.connector.close(c)).catch(() => undefined);
            throw err;
          }
          this.counters.created++;
          // Logins work again: a later acquire timeout is no longer the login's fault.
          this.lastCreateError = undefined;
          const now = this.opts.now();
          return { id: this.nextId++, connection, createdAt: now, lastUsedAt: now };
        },
        destroy: async (pc) => {
          this.counters.destroyed++;
          await this.opts.connector.close(pc.connection);
        },
        validate: (pc) => this.validate(pc),
      },
      {
        min: o.min,
        max: o.max,
        acquireTimeoutMillis: o.acquireTimeoutMs,
        // generic-pool's testOnBorrow defaults to false, and then a dead session is never replaced.
        testOnBorrow: true,
        idleTimeoutMillis: o.idleTimeoutMs,
        softIdleTimeoutMillis: -1,
        evictionRunIntervalMillis: Math.min(30_000, Math.max(1_000, Math.floor(o.idleTimeoutMs / 2))),
        numTestsPerEvictionRun: o.max,
        autostart: true,
      },
    );
    this.pool.on('factoryCreateError', (err) => {
      this.counters.createErrors++;
      this.lastCreateError = err;
    });
    // generic-pool emits this on a failed destroy; a session we could not log out of is already gone.
    this.pool.on('factoryDestroyError', () => undefined);
  }

  private async validate(pc: PooledConnection): Promise<boolean> {
    const now = this.opts.now();
    if (now - pc.createdAt >= this.opts.maxLifetimeMs) {
      this.counters.recycled++;
      return false;
    }
    if (now - pc.lastUsedAt < this.opts.validateAfterIdleMs) return pc.connection.isUp();
    this.counters.validations++;
    const ok = await withDeadlineOr(pc.connection.isValidAsync(), this.opts.validateTimeoutMs, false);
    if (!ok) this.counters.validationFailures++;
    else pc.lastUsedAt = this.opts.now();
    return ok;
  }

  /**
   * Borrows a session; rejects after `acquireTimeoutMs` with a `PoolAcquireTimeoutError` that says whether
   * the pool was exhausted (every session borrowed) or sessions could not be opened (with the last login error).
   */
  async acquire(): Promise<PooledConnection> {
    if (this.closing) throw new Error('WarehousePool is closed');
    const started = performance.now();
    try {
      const pc = await this.pool.acquire();
      try {
        this.opts.onAcquire?.(performance.now() - started);
      } catch {
        // metrics must never fail an acquire
      }
      return pc;
    } catch (err) {
      // generic-pool's TimeoutError; anything else (a pool draining on close) is passed on as it is.
      if ((err as Error)?.name !== 'TimeoutError') throw err;
      throw this.timeoutError(this.opts.acquireTimeoutMs, err);
    }
  }

  /**
   * True when every session is borrowed: a caller waiting now waits for another caller, not for the
   * warehouse.
   */
  exhausted(): boolean {
    return this.pool.borrowed >= this.pool.max;
  }

  /** The error of a wait for a session that lasted `waitedMs` (the pool's own timeout or a caller's deadline). */
  timeoutError(waitedMs: number, cause?: unknown): PoolAcquireTimeoutError {
    const last = this.lastCreateError as Error | undefined;
    if (this.exhausted()) {
      const { borrowed, pending } = this.stats();
      return new PoolAcquireTimeoutError(waitedMs, true, `all ${borrowed} sessions are borrowed, ${pending} callers waiting (pool exhausted)`, cause);
    }
    return new PoolAcquireTimeoutError(waitedMs, false, last ? `last login error: ${last.message}` : 'no session could be opened in time', last ?? cause);
  }

  /** Returns a healthy session to the pool. */
  release(pc: PooledConnection): void {
    pc.lastUsedAt = this.opts.now();
    void this.pool.release(pc).catch(() => undefined);
  }

  /** Closes a session that must not be reused (its session broke mid-call) and lets the pool replace it. */
  destroy(pc: PooledConnection): void {
    void this.pool.destroy(pc).catch(() => undefined);
  }

  stats(): PoolStats {
    return {
      size: this.pool.size,
      available: this.pool.available,
      borrowed: this.pool.borrowed,
      pending: this.pool.pending,
      min: this.pool.min,
      max: this.pool.max,
      ...this.counters,
    };
  }

  /**
   * Waits for borrowed sessions to come back, then logs every session out. Logins still in flight get
   * `LOGIN_GRACE_MS`: against a warehouse that does not answer, the driver's own login retries take seconds,
   * which a shutdown should not wait out; a login that completes after that is logged out as it arrives.
   * Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.pool.drain();
      // generic-pool's clear() waits for every login in flight before it logs the idle sessions out.
      const timer = setTimeout(() => this.abandonLogins(ABANDONED), LOGIN_GRACE_MS);
      try {
        await this.pool.clear();
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.closing;
  }
}
