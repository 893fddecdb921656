import { BIGINT, DOUBLE, type DuckDBConnection, DuckDBTableFunction } from '@duckdb/node-api';

/**
 * The DuckDB table function behind Snowflake's `TABLE(GENERATOR(TIMELIMIT => s))`: rows (one column,
 * `SEQ`, counting from 0) for `s` seconds from the first one, then the end. Like Snowflake's, it makes a
 * query that runs for as long as asked while doing real work, so a client's cancel or a statement
 * timeout interrupts a running statement (DuckDB checks for interrupts between chunks), not one that
 * already failed or ended. It is what the dialect translation is to map the Snowflake form onto.
 *
 * @example
 *   SELECT count(*) FROM fleet_local_generator_time_limit(3600)   -- runs an hour, or until canceled
 */
const TIME_LIMITED_GENERATOR = 'fleet_local_generator_time_limit';

const CHUNK_ROWS = 2048;

/** Registers the function (in DuckDB's system catalog: every connection of the database sees it). */
export function registerTimeLimitedGenerator(conn: DuckDBConnection): void {
  conn.registerTableFunction(
    DuckDBTableFunction.create({
      name: TIME_LIMITED_GENERATOR,
      parameterTypes: [DOUBLE],
      bindFunction: (info) => {
        const seconds = Number(info.getParameter(0));
        if (!Number.isFinite(seconds) || seconds < 0) {
          info.setError(`GENERATOR: TIMELIMIT must be a non-negative number of seconds, got ${String(info.getParameter(0))}`);
          return;
        }
        info.addResultColumn('SEQ', BIGINT);
        info.setBindData({ ms: seconds * 1000 });
      },
      initFunction: (info) => info.setInitData({ deadline: undefined, next: 0n }),
      mainFunction: (info, output) => {
        const { ms } = info.bindData as { ms: number };
        const state = info.initData as { deadline?: number; next: bigint };
        state.deadline ??= Date.now() + ms;
        if (Date.now() >= state.deadline) {
          output.rowCount = 0;
          return;
        }
        output.rowCount = CHUNK_ROWS;
        const seq = output.getColumnVector(0);
        for (let i = 0; i < CHUNK_ROWS; i++) seq.setItem(i, state.next + BigInt(i));
        seq.flush();
        state.next += BigInt(CHUNK_ROWS);
      },
    }),
  );
}
