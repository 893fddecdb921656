import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { connectionSettings } from './functions';

/** One DuckDB connection on loan; give it back exactly once with `release()`. */
export interface DuckLease {
  readonly conn: DuckDBConnection;
  release(): void;
}

/**
 * One DuckDB database and a fixed set of connections to it. A DuckDB connection runs one statement at a
 * time and carries transaction state, so each HTTP query borrows a connection for its whole execution
 * (including the BEGIN/COMMIT around a batch insert) and waits in FIFO order when all are busy.
 */
export class DuckPool {
  private readonly idle: DuckDBConnection[] = [];
  private leased = 0;
  private onAllReturned?: () => void;
  private readonly waiters: Array<{ resolve: (conn: DuckDBConnection) => void; reject: (err: Error) => void }> = [];
  private closed = false;

  private constructor(
    readonly instance: DuckDBInstance,
    private readonly all: readonly DuckDBConnection[],
  ) {
    this.idle.push(...all);
  }

  /**
   * Opens the database (`:memory:` or a file path) with `size` connections. `setup` runs once on the
   * first connection before the others are opened (it registers functions and attaches catalogs, which
   * every connection then sees).
   */
  static async open(dbPath: string, size: number, setup: (conn: DuckDBConnection) => Promise<void>): Promise<DuckPool> {
    const instance = await DuckDBInstance.create(dbPath);
    const conns: DuckDBConnection[] = [];
    try {
      const first = await instance.connect();
      conns.push(first);
      await setup(first);
      const catalog = (await first.runAndReadAll('SELECT current_database()')).getRows()[0][0] as string;
      for (const sql of connectionSettings(catalog)) await first.run(sql);
      for (let i = 1; i < size; i++) {
        const conn = await instance.connect();
        conns.push(conn);
        for (const sql of connectionSettings(catalog)) await conn.run(sql);
      }
    } catch (err) {
      for (const c of conns) c.closeSync();
      instance.closeSync();
      throw err;
    }
    return new DuckPool(instance, conns);
  }

  /** Waits for a free connection. Rejects once the pool is closed. */
  acquire(): Promise<DuckLease> {
    if (this.closed) return Promise.reject(new Error('local warehouse database is closed'));
    const conn = this.idle.pop();
    if (conn) return Promise.resolve(this.lease(conn));
    return new Promise((resolve, reject) => this.waiters.push({ resolve: (c) => resolve(this.lease(c)), reject }));
  }

  /** Borrows a connection for the duration of `fn`. */
  async with<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const lease = await this.acquire();
    try {
      return await fn(lease.conn);
    } finally {
      lease.release();
    }
  }

  private lease(conn: DuckDBConnection): DuckLease {
    let released = false;
    this.leased++;
    return {
      conn,
      release: () => {
        if (released) return;
        released = true;
        this.leased--;
        const next = this.waiters.shift();
        if (next) next.resolve(conn);
        else this.idle.push(conn);
        if (this.leased === 0) this.onAllReturned?.();
      },
    };
  }

  /**
   * Interrupts running statements, waits (up to `graceMs`) for borrowed connections to come back so no
   * statement is mid-flight when its connection is destroyed, then closes every connection and the
   * database. Later calls are no-ops.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new Error('local warehouse database is closed'));
    for (const c of this.all) {
      try {
        c.interrupt();
      } catch {
        // Nothing running on it.
      }
    }
    if (this.leased > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.onAllReturned = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const c of this.all) {
      try {
        c.closeSync();
      } catch {
        // A connection that fails to close must not keep the others (or the database) open.
      }
    }
    this.instance.closeSync();
  }
}
