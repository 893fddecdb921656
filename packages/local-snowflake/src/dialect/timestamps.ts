/**
 * Snowflake's AUTO detection of timestamp text, as TO_TIMESTAMP_* / TO_DATE read it: ISO 8601
 * (`2016-01-21 06:32:44.123 -08:00`, `T` or space), RFC 2822 (`Thu, 21 Jan 2016 06:32:44 -0800`), and
 * integers as epoch seconds, milliseconds, microseconds or nanoseconds by magnitude.
 */
export interface ParsedTimestamp {
  /** Wall-clock fields. */
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  /** Fraction of a second, 9 digits. */
  readonly nanos: string;
  /** Offset from UTC in minutes, when the text gives one. */
  readonly offsetMinutes: number | undefined;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

const ISO = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|UTC|[+-]\d{1,2}(?::?\d{2})?)?$/i;
const RFC_2822 =
  /^(?:[A-Za-z]{3},?\s+)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?$/i;

function offsetOf(zone: string | undefined): number | undefined {
  if (!zone) return undefined;
  if (/^(Z|UTC|GMT)$/i.test(zone)) return 0;
  const m = /^([+-])(\d{1,2}):?(\d{2})?$/.exec(zone)!;
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? 0);
  return m[1] === '-' ? -minutes : minutes;
}

function fromEpoch(text: string): ParsedTimestamp {
  const value = BigInt(text);
  const abs = value < 0n ? -value : value;
  // Snowflake's rule: below 31536000000 seconds, then milliseconds, microseconds, nanoseconds.
  const perSecond = abs < 31_536_000_000n ? 1n : abs < 31_536_000_000_000n ? 1000n : abs < 31_536_000_000_000_000n ? 1_000_000n : 1_000_000_000n;
  let seconds = value / perSecond;
  let rest = value % perSecond;
  if (rest < 0n) {
    seconds -= 1n;
    rest += perSecond;
  }
  const d = new Date(Number(seconds) * 1000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    nanos: ((rest * 1_000_000_000n) / perSecond).toString().padStart(9, '0'),
    offsetMinutes: 0,
  };
}

/** Parses timestamp text; undefined when Snowflake's AUTO format would not recognise it either. */
export function parseTimestampText(input: string): ParsedTimestamp | undefined {
  const text = input.trim();
  if (/^-?\d+$/.test(text)) return fromEpoch(text);
  let m = ISO.exec(text);
  if (m) {
    return {
      year: Number(m[1]),
      month: Number(m[2]),
      day: Number(m[3]),
      hour: Number(m[4] ?? 0),
      minute: Number(m[5] ?? 0),
      second: Number(m[6] ?? 0),
      nanos: (m[7] ?? '').padEnd(9, '0'),
      offsetMinutes: offsetOf(m[8]),
    };
  }
  m = RFC_2822.exec(text);
  if (m) {
    const month = MONTHS.indexOf(m[2].toLowerCase());
    if (month < 0) return undefined;
    return {
      year: Number(m[3]),
      month: month + 1,
      day: Number(m[1]),
      hour: Number(m[4] ?? 0),
      minute: Number(m[5] ?? 0),
      second: Number(m[6] ?? 0),
      nanos: (m[7] ?? '').padEnd(9, '0'),
      offsetMinutes: offsetOf(m[8]),
    };
  }
  return undefined;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * The text DuckDB casts: the wall clock (`YYYY-MM-DD HH:MM:SS.ffffff`), followed for `withZone` by the
 * offset (`+HH:MM`) when the text had one. Without one DuckDB reads the wall clock in the session's time
 * zone (TIMEZONE, which the server sets per statement), as Snowflake reads TIMESTAMP_LTZ/TZ text.
 */
export function duckTimestampText(t: ParsedTimestamp, withZone: boolean): string {
  const wall = `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)} ${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}.${t.nanos.slice(0, 6)}`;
  if (!withZone || t.offsetMinutes === undefined) return wall;
  const offset = t.offsetMinutes;
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${wall}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
