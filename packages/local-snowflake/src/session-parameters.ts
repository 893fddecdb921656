import { SnowflakeError } from './snowflake-error';

/**
 * The session parameters a reply reports in `data.parameters` (login and every query result). The driver
 * decodes each result with them: `TIMEZONE` for TIMESTAMP_LTZ, the `*_OUTPUT_FORMAT`s for values fetched
 * as strings, `JS_TREAT_INTEGER_AS_BIGINT` for integers; and it updates its own settings
 * (`CLIENT_SESSION_KEEP_ALIVE`, `MULTI_STATEMENT_COUNT`…) from them. A parameter sent at login
 * (`SESSION_PARAMETERS`, e.g. the connection's `queryTag` or `jsTreatIntegerAsBigInt`) or set with
 * `ALTER SESSION SET` is reported from then on, as Snowflake does; `ALTER SESSION UNSET` restores the
 * default.
 */

/** A parameter value as Snowflake reports it: text, a number or a boolean. */
export type ParameterValue = string | number | boolean;

export interface ReportedParameter {
  readonly name: string;
  readonly value: ParameterValue;
}

/**
 * Snowflake's defaults for the parameters a client reads, except `TIMEZONE`: the local warehouse runs
 * in UTC (Snowflake's default is America/Los_Angeles) so that results do not depend on the machine.
 */
const DEFAULT_SESSION_PARAMETERS: readonly ReportedParameter[] = [
  { name: 'TIMEZONE', value: 'UTC' },
  { name: 'TIMESTAMP_OUTPUT_FORMAT', value: 'YYYY-MM-DD HH24:MI:SS.FF3 TZHTZM' },
  { name: 'TIMESTAMP_NTZ_OUTPUT_FORMAT', value: 'YYYY-MM-DD HH24:MI:SS.FF3' },
  { name: 'TIMESTAMP_LTZ_OUTPUT_FORMAT', value: '' },
  { name: 'TIMESTAMP_TZ_OUTPUT_FORMAT', value: '' },
  { name: 'DATE_OUTPUT_FORMAT', value: 'YYYY-MM-DD' },
  { name: 'TIME_OUTPUT_FORMAT', value: 'HH24:MI:SS' },
  { name: 'BINARY_OUTPUT_FORMAT', value: 'HEX' },
  { name: 'CLIENT_RESULT_CHUNK_SIZE', value: 160 },
  { name: 'JS_TREAT_INTEGER_AS_BIGINT', value: false },
  { name: 'CLIENT_SESSION_KEEP_ALIVE', value: false },
  { name: 'MULTI_STATEMENT_COUNT', value: 1 },
  { name: 'QUERY_TAG', value: '' },
];

const DEFAULTS = new Map(DEFAULT_SESSION_PARAMETERS.map((p) => [p.name, p.value]));

/** The parameters set on a session (at login or by ALTER SESSION), by upper-case name. */
export type SessionSettings = Map<string, ParameterValue>;

/** A parameter value from JSON (login `SESSION_PARAMETERS`, a request's `parameters`); other shapes are ignored. */
export function parameterValue(raw: unknown): ParameterValue | undefined {
  return typeof raw === 'string' || typeof raw === 'boolean' || (typeof raw === 'number' && Number.isFinite(raw)) ? raw : undefined;
}

/** Reads a JSON object of parameters (names case-insensitive) into settings. */
export function readParameterObject(raw: unknown): SessionSettings {
  const out: SessionSettings = new Map();
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return out;
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const v = parameterValue(value);
    if (v !== undefined) out.set(name.toUpperCase(), v);
  }
  return out;
}

/** What `data.parameters` holds for a session, with a statement's own parameters on top: defaults, then what was set. */
export function reportedParameters(session: SessionSettings, statement?: SessionSettings): ReportedParameter[] {
  const merged = new Map(DEFAULTS);
  for (const [name, value] of session) merged.set(name, value);
  if (statement) for (const [name, value] of statement) merged.set(name, value);
  return [...merged].map(([name, value]) => ({ name, value }));
}

/**
 * The session's TIMEZONE when it is not the server's UTC, for DuckDB's `SET TimeZone` (which then reads
 * and converts TIMESTAMP_LTZ values in it); undefined for UTC or a value that is no zone name (DuckDB
 * refuses unknown zones itself).
 *
 * @throws SnowflakeError `001008` for a value that cannot be a time zone name
 */
export function sessionTimeZone(settings: SessionSettings): string | undefined {
  const zone = settings.get('TIMEZONE');
  if (zone === undefined || (typeof zone === 'string' && zone.toUpperCase() === 'UTC')) return undefined;
  if (typeof zone !== 'string' || !/^[A-Za-z0-9_+\-/]+$/.test(zone)) {
    throw new SnowflakeError('001008', `SQL compilation error:\ninvalid value [${String(zone)}] for parameter 'TIMEZONE'`, '22023');
  }
  return zone;
}
