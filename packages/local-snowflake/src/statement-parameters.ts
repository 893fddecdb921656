import { tokenize as lex } from './dialect/tokens';
import { type ParameterValue, parameterValue, type SessionSettings } from './session-parameters';
import { SnowflakeError } from './snowflake-error';

/** Snowflake's limit on a QUERY_TAG, in characters. */
const QUERY_TAG_MAX_CHARS = 2000;
/** STATEMENT_TIMEOUT_IN_SECONDS: Snowflake's default (two days) and largest value (seven days, also what `0` means). */
const STATEMENT_TIMEOUT_DEFAULT_S = 172_800;
const STATEMENT_TIMEOUT_MAX_S = 604_800;

/**
 * The session parameters the local warehouse acts on, as set at one level (session or statement); a
 * field is absent when that level leaves it alone. Every other parameter is accepted and ignored.
 */
export interface StatementParameters {
  queryTag?: string;
  statementTimeoutS?: number;
}

/** What applies to one statement: statement level first, then session, then Snowflake's defaults. */
export interface EffectiveParameters {
  readonly queryTag: string;
  /** Seconds; `0` is no limit here (Snowflake reads it as its seven-day maximum). */
  readonly statementTimeoutS: number;
}

type ParameterName = 'QUERY_TAG' | 'STATEMENT_TIMEOUT_IN_SECONDS';
const FIELD: Record<ParameterName, keyof StatementParameters> = {
  QUERY_TAG: 'queryTag',
  STATEMENT_TIMEOUT_IN_SECONDS: 'statementTimeoutS',
};

/** Snowflake's refusal of a parameter value, e.g. `invalid value ['abc'] for parameter 'STATEMENT_TIMEOUT_IN_SECONDS'`. */
function invalidValue(name: ParameterName, value: unknown): SnowflakeError {
  const shown = typeof value === 'string' ? `'${value}'` : String(value);
  return new SnowflakeError('001008', `SQL compilation error:\ninvalid value [${shown}] for parameter '${name}'`, '22023');
}

/** A parameter value from SQL (a literal or a bind) or from a request's `parameters`. */
interface RawValue {
  readonly value: unknown;
  /** Numeric text counts as a number (binds and JSON carry numbers as text); a SQL string literal does not. */
  readonly numericText: boolean;
}

function validated(name: ParameterName, raw: RawValue): string | number {
  const { value } = raw;
  if (name === 'QUERY_TAG') {
    if (typeof value !== 'string' || value.length > QUERY_TAG_MAX_CHARS) throw invalidValue(name, value);
    return value;
  }
  const n = typeof value === 'number' ? value : raw.numericText && typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > STATEMENT_TIMEOUT_MAX_S) throw invalidValue(name, value);
  return n;
}

function parameterName(name: string): ParameterName | undefined {
  const upper = name.toUpperCase();
  return upper === 'QUERY_TAG' || upper === 'STATEMENT_TIMEOUT_IN_SECONDS' ? upper : undefined;
}

/**
 * Reads the `parameters` object a query-request carries (`connection.execute({ parameters })`, e.g.
 * `{ QUERY_TAG: '…', STATEMENT_TIMEOUT_IN_SECONDS: 30 }`); names are case-insensitive. A bad value of
 * one of ours fails the statement with Snowflake's `001008`.
 */
export function readStatementParameters(raw: unknown): StatementParameters {
  const out: StatementParameters = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return out;
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const name = parameterName(key);
    if (name && value !== undefined && value !== null) {
      (out as Record<string, unknown>)[FIELD[name]] = validated(name, { value, numericText: true });
    }
  }
  return out;
}

/** The values that apply to a statement: statement level wins over session level. */
export function effectiveParameters(session: StatementParameters | undefined, statement: StatementParameters): EffectiveParameters {
  return {
    queryTag: statement.queryTag ?? session?.queryTag ?? '',
    statementTimeoutS: statement.statementTimeoutS ?? session?.statementTimeoutS ?? STATEMENT_TIMEOUT_DEFAULT_S,
  };
}

// --- ALTER SESSION -------------------------------------------------------------------------------

type Token =
  | { kind: 'word'; text: string; pos: number }
  | { kind: 'string'; value: string; text: string; pos: number }
  | { kind: 'number'; text: string; pos: number }
  | { kind: 'bind'; index: number; text: string; pos: number }
  | { kind: 'punct'; text: string; pos: number };

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '0': '\0' };

function syntaxError(sql: string, pos: number, found: string): SnowflakeError {
  const before = sql.slice(0, pos).split('\n');
  return new SnowflakeError(
    '001003',
    `SQL compilation error:\nsyntax error line ${before.length} at position ${before[before.length - 1].length} unexpected '${found}'.`,
    '42000',
  );
}

/** The text of a string literal token (`'…'` with Snowflake's escapes, or `$$…$$`); an unterminated one is a syntax error. */
function stringValue(sql: string, text: string): string {
  const eof = () => syntaxError(sql, sql.length, '<EOF>');
  if (text.startsWith('$$')) {
    if (text.length < 4 || !text.endsWith('$$')) throw eof();
    return text.slice(2, -2);
  }
  let value = '';
  for (let j = 1; ; ) {
    if (j >= text.length) throw eof();
    const c = text[j];
    if (c === '\\' && j + 1 < text.length) {
      value += ESCAPES[text[j + 1]] ?? text[j + 1];
      j += 2;
    } else if (c === "'" && text[j + 1] === "'") {
      value += "'";
      j += 2;
    } else if (c === "'") {
      return value;
    } else {
      value += c;
      j++;
    }
  }
}

/** The statement's significant tokens, read with the dialect lexer: strings decoded, binds numbered, signs joined to numbers. */
function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  const lexed = lex(sql);
  let positional = 0;
  let pos = 0;
  for (let k = 0; k < lexed.length; pos += lexed[k].text.length, k++) {
    const { kind, text } = lexed[k];
    if (kind === 'space' || kind === 'comment') continue;
    if (kind === 'string') out.push({ kind: 'string', value: stringValue(sql, text), text, pos });
    else if (kind === 'quoted') {
      if (text.length < 2 || !text.endsWith('"')) throw syntaxError(sql, sql.length, '<EOF>');
      out.push({ kind: 'word', text: text.slice(1, -1).replaceAll('""', '"'), pos });
    } else if (kind === 'word') out.push({ kind: 'word', text: text.toUpperCase(), pos });
    else if (kind === 'number') out.push({ kind: 'number', text, pos });
    else if (kind === 'bind') out.push({ kind: 'bind', index: text === '?' ? ++positional : Number(text.slice(1)), text, pos });
    else if ((text === '-' || text === '+') && lexed[k + 1]?.kind === 'number') {
      // a signed literal, e.g. `= -5`
      out.push({ kind: 'number', text: text + lexed[k + 1].text, pos });
      pos += text.length;
      k++;
    } else if (text === '=' || text === ',' || text === ';') out.push({ kind: 'punct', text, pos });
    else throw syntaxError(sql, pos, text);
  }
  return out;
}

function bindValue(bindings: unknown, index: number): unknown {
  const bind = typeof bindings === 'object' && bindings !== null ? (bindings as Record<string, { value?: unknown }>)[String(index)] : undefined;
  if (!bind || typeof bind !== 'object') throw new SnowflakeError('002049', `SQL compilation error:\nBind variable :${index} not set.`, '42601');
  return bind.value;
}

/** What one `ALTER SESSION` statement does to the parameters this server acts on, and to all of them as reported. */
export interface SessionParameterChange {
  readonly set: StatementParameters;
  readonly unset: ReadonlyArray<keyof StatementParameters>;
  /** Every parameter set (upper-case name → value), ours included: reported back in `data.parameters`. */
  readonly settings: ReadonlyArray<readonly [string, ParameterValue]>;
  /** Every parameter unset. */
  readonly unsetNames: readonly string[];
}

/**
 * Reads `ALTER SESSION SET name = value [[,] name = value …]` or `ALTER SESSION UNSET name [[,] name …]`
 * (values are literals or binds). Other parameters are accepted and ignored; a statement that is not of
 * this shape is a syntax error (`001003`), a bad value of ours is `001008`, as in Snowflake.
 */
export function parseAlterSession(sql: string, bindings: unknown): SessionParameterChange {
  const tokens = tokenize(sql);
  let t = 0;
  const peek = () => tokens[t];
  const unexpected = () => {
    const tok = peek();
    return syntaxError(sql, tok ? tok.pos : sql.length, tok ? tok.text : '<EOF>');
  };
  const expectWord = (...words: string[]) => {
    const tok = peek();
    if (tok?.kind !== 'word' || !words.includes(tok.text)) throw unexpected();
    t++;
    return tok.text;
  };
  const atEnd = () => t >= tokens.length || (peek().kind === 'punct' && peek().text === ';' && t === tokens.length - 1);

  expectWord('ALTER');
  expectWord('SESSION');
  const verb = expectWord('SET', 'UNSET');
  const set: StatementParameters = {};
  const unset: Array<keyof StatementParameters> = [];
  const settings: Array<[string, ParameterValue]> = [];
  const unsetNames: string[] = [];
  let first = true;
  while (first || !atEnd()) {
    if (!first && peek().kind === 'punct' && peek().text === ',') t++;
    first = false;
    const nameTok = peek();
    if (nameTok?.kind !== 'word') throw unexpected();
    t++;
    const name = parameterName(nameTok.text);
    if (verb === 'UNSET') {
      unsetNames.push(nameTok.text.toUpperCase());
      if (name) unset.push(FIELD[name]);
      continue;
    }
    if (peek()?.kind !== 'punct' || peek().text !== '=') throw unexpected();
    t++;
    const valueTok = peek();
    if (!valueTok || valueTok.kind === 'punct') throw unexpected();
    t++;
    const reported = reportedValue(valueTok, bindings);
    if (reported !== undefined) settings.push([nameTok.text.toUpperCase(), reported]);
    if (!name) continue;
    const raw: RawValue =
      valueTok.kind === 'string'
        ? { value: valueTok.value, numericText: false }
        : valueTok.kind === 'number'
          ? { value: Number(valueTok.text), numericText: false }
          : valueTok.kind === 'bind'
            ? { value: bindValue(bindings, valueTok.index), numericText: true }
            : { value: valueTok.text, numericText: false };
    (set as Record<string, unknown>)[FIELD[name]] = validated(name, raw);
  }
  return { set, unset, settings, unsetNames };
}

/** A parameter's value as reported to the client: text, a number, or a boolean for `TRUE` / `FALSE`. */
function reportedValue(tok: Token, bindings: unknown): ParameterValue | undefined {
  switch (tok.kind) {
    case 'string':
      return tok.value;
    case 'number':
      return Number(tok.text);
    case 'bind':
      return parameterValue(bindValue(bindings, tok.index));
    case 'word':
      return tok.text === 'TRUE' ? true : tok.text === 'FALSE' ? false : tok.text;
    default:
      return undefined;
  }
}

/** Applies an `ALTER SESSION` to the settings reported back to the client. */
export function applySettingsChange(settings: SessionSettings, change: SessionParameterChange): void {
  for (const [name, value] of change.settings) settings.set(name, value);
  for (const name of change.unsetNames) settings.delete(name);
}

/** The session's parameters after an `ALTER SESSION`. */
export function applySessionChange(current: StatementParameters | undefined, change: SessionParameterChange): StatementParameters {
  const next: StatementParameters = { ...current, ...change.set };
  for (const field of change.unset) delete next[field];
  return next;
}
