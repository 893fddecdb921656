import { SnowflakeError } from './snowflake-error';

/**
 * Maps a DuckDB error to the Snowflake error a driver user would get for the same mistake, so code that
 * branches on `err.code` / `err.sqlState` behaves the same locally and in production. DuckDB's own first
 * line is kept in the message (without its caret diagram) because it names the offending object.
 */
export function fromDuckDBError(err: unknown): SnowflakeError {
  if (err instanceof SnowflakeError) return err;
  // Not `instanceof Error`: errors thrown by the native binding come from another realm under jest.
  const message = (err as { message?: unknown } | null)?.message;
  const raw = typeof message === 'string' ? message : String(err);
  // DuckDB appends "LINE 1: ..." and a caret line; Snowflake messages carry no such diagram.
  const detail = raw.split(/\n\s*\nLINE \d+:|\nLINE \d+:/)[0].trim();
  const kind = /^([A-Za-z ]+?) Error:/.exec(detail)?.[1] ?? '';
  const body = detail.replace(/^[A-Za-z ]+? Error:\s*/, '');

  if (kind === 'Parser') return new SnowflakeError('001003', `SQL compilation error:\n${body}`, '42000');
  if (kind === 'Catalog') {
    const missing = /(?:Table|View|Schema|Catalog) with name "?([^"!\s]+)"? does not exist/i.exec(body);
    if (missing) {
      return new SnowflakeError('002003', `SQL compilation error:\nObject '${missing[1].toUpperCase()}' does not exist or not authorized.`, '42S02');
    }
    const fn = /Function with name "?([^"!\s]+)"? does not exist/i.exec(body);
    if (fn) return new SnowflakeError('002140', `SQL compilation error:\nUnknown function ${fn[1].toUpperCase()}`, '42601');
    if (/already exists/i.test(body)) return new SnowflakeError('002002', `SQL compilation error:\n${body}`, '42710');
    return new SnowflakeError('002003', `SQL compilation error:\n${body}`, '42S02');
  }
  if (kind === 'Binder') {
    const column = /Referenced column "?([^"\s]+)"? not found/i.exec(body);
    if (column) return new SnowflakeError('000904', `SQL compilation error:\ninvalid identifier '${column[1].toUpperCase()}'`, '42000');
    return new SnowflakeError('002023', `SQL compilation error:\n${body}`, '22000');
  }
  if (kind === 'Conversion') return new SnowflakeError('100038', body, '22018');
  if (kind === 'Out of Range') return new SnowflakeError('100035', body, '22003');
  if (kind === 'Constraint') return new SnowflakeError('100072', body, '22000');
  if (kind === 'INTERRUPT' || /interrupted/i.test(detail)) {
    return new SnowflakeError('000604', 'SQL execution canceled', '57014');
  }
  if (kind === 'Invalid Input' && /Values were not provided for the following prepared statement parameters/.test(body)) {
    return new SnowflakeError('002049', `SQL compilation error:\nBind variable not set: ${body}`, '42601');
  }
  // Anything else failed while running (function errors, I/O, transaction conflicts).
  return new SnowflakeError('100132', `SQL execution error:\n${detail}`, '22000');
}
