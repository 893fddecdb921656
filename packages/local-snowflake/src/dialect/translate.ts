import { columnNames } from './column-names';
import { isPunct, isWord, matchingParen, prevSignificant, render, skipSpace, splitTopLevel, synthetic, type Token, tokenize } from './tokens';
import { translateTypes } from './types';

/** Snowflake SQL translated to DuckDB's, and what the server must know to run it as Snowflake would. */
/** The session's current database and schema: names qualified with them refer to the one database here. */
export interface SessionNames {
  readonly database: string;
  readonly schema: string;
}

export interface TranslatedSql {
  readonly sql: string;
  /**
   * `TRUNCATE TABLE IF EXISTS t` runs as `TRUNCATE t`: when this is set, "table does not exist" from
   * DuckDB means success.
   */
  readonly missingTableIsSuccess: boolean;
}

/**
 * Translates the Snowflake-only constructs of one request's SQL into DuckDB's (see docs/dialect.md),
 * token by token: string literals, quoted identifiers, comments and binds are never rewritten, and
 * binds keep their order. Constructs DuckDB already reads the same way pass through unchanged.
 *
 * @example translateDialect('select seq4() from table(generator(rowcount => 3))').sql
 * // 'select (row_number() OVER () - 1) AS "SEQ4()" from range(3)'
 */
export function translateDialect(input: string, session?: SessionNames): TranslatedSql {
  let tokens = tokenize(input);
  if (session) tokens = sessionQualifiedNames(tokens, session);
  let missingTableIsSuccess = false;
  const truncate = truncateIfExists(tokens);
  if (truncate) {
    tokens = truncate;
    missingTableIsSuccess = true;
  }
  tokens = columnNames(tokens);
  tokens = translateTypes(tokens);
  tokens = functionNames(tokens);
  tokens = fromValues(tokens);
  tokens = tableFunctions(tokens);
  tokens = variantPaths(tokens);
  return { sql: render(tokens), missingTableIsSuccess };
}

const identifierName = (t: Token) => (t.kind === 'quoted' ? t.text.slice(1, -1).replace(/""/g, '"') : t.text.toUpperCase());
const isName = (t: Token | undefined) => t !== undefined && (t.kind === 'word' || t.kind === 'quoted');

const RESERVED_CATALOGS = new Set(['SNOWFLAKE', 'SYSTEM', 'TEMP', 'MEMORY']);
// Words after which a name is a table's (struct field paths like `t.obj.field` are left alone).
const TABLE_POSITION = ['FROM', 'JOIN', 'INTO', 'TABLE', 'UPDATE', 'EXISTS', 'USING', 'CLONE', 'TRUNCATE'];

/**
 * Where a table name is expected (after FROM, JOIN, INTO, TABLE…): `DB.SCHEMA.T` → `T` (any database
 * but DuckDB's own catalogs), and `SCHEMA.T` with the session's schema → `T`: the session's database
 * and schema are the local database's one schema, whatever the client named them.
 */
function sessionQualifiedNames(tokens: Token[], session: SessionNames): Token[] {
  const db = session.database.toUpperCase();
  const schema = session.schema.toUpperCase();
  const out = tokens.slice();
  for (let i = out.length - 3; i >= 0; i--) {
    if (!isName(out[i]) || isPunct(out[i - 1], '.')) continue;
    const before = prevSignificant(out, i);
    const tablePosition = isWord(out[before], ...TABLE_POSITION) || (isPunct(out[before], ',') && inFromClause(out, before));
    if (!tablePosition) continue;
    if (isName(out[i + 2]) && isPunct(out[i + 1], '.') && isPunct(out[i + 3], '.') && isName(out[i + 4])) {
      // There is one database: any database's name refers to it, except the catalogs DuckDB itself uses
      // (`snowflake` holds the Snowflake functions, e.g. SNOWFLAKE.CORTEX.EMBED_TEXT_768).
      const name = identifierName(out[i]).toUpperCase();
      if (name === db || !RESERVED_CATALOGS.has(name)) out.splice(i, 4);
      continue;
    }
    if (isPunct(out[i + 1], '.') && isName(out[i + 2]) && !isPunct(out[i + 3], '.') && identifierName(out[i]).toUpperCase() === schema) {
      out.splice(i, 2);
    }
  }
  return out;
}

/** `TRUNCATE [TABLE] IF EXISTS t` → `TRUNCATE t` (DuckDB has no IF EXISTS there). */
function truncateIfExists(tokens: Token[]): Token[] | undefined {
  const first = skipSpace(tokens, 0);
  if (!isWord(tokens[first], 'TRUNCATE')) return undefined;
  let j = skipSpace(tokens, first + 1);
  if (isWord(tokens[j], 'TABLE')) j = skipSpace(tokens, j + 1);
  if (!isWord(tokens[j], 'IF')) return undefined;
  const not = skipSpace(tokens, j + 1);
  if (!isWord(tokens[not], 'EXISTS')) return undefined;
  const out = tokens.slice();
  out.splice(j, skipSpace(tokens, not + 1) - j);
  return out;
}

/**
 * `FROM VALUES (…), (…) [[AS] t[(a, b)]]` → `FROM (VALUES (…), (…)) AS t(COLUMN1, COLUMN2)`: Snowflake
 * takes VALUES without parentheses and names its columns COLUMN1…n.
 */
function fromValues(tokens: Token[]): Token[] {
  const out = tokens.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    if (!isWord(out[i], 'VALUES')) continue;
    const before = prevSignificant(out, i);
    if (!isWord(out[before], 'FROM', 'JOIN') && !(isPunct(out[before], ',') && inFromClause(out, before))) continue;
    // The rows: ( … ) [, ( … )]*
    let j = skipSpace(out, i + 1);
    let columns = 0;
    let end = -1;
    while (isPunct(out[j], '(')) {
      const close = matchingParen(out, j);
      if (close < 0) break;
      if (columns === 0) columns = splitTopLevel(out, j + 1, close).length;
      end = close + 1;
      const k = skipSpace(out, close + 1);
      if (!isPunct(out[k], ',') || !isPunct(out[skipSpace(out, k + 1)], '(')) break;
      j = skipSpace(out, k + 1);
    }
    if (end < 0 || columns === 0) continue;
    // An alias, with or without a column list, may follow.
    let k = skipSpace(out, end);
    let aliasText = '"VALUES"';
    let aliasEnd = end;
    if (isWord(out[k], 'AS')) k = skipSpace(out, k + 1);
    if ((out[k]?.kind === 'word' && !isClauseWord(out[k])) || out[k]?.kind === 'quoted') {
      aliasText = out[k].text;
      aliasEnd = k + 1;
      const open = skipSpace(out, k + 1);
      if (isPunct(out[open], '(')) continue; // t(a, b): DuckDB reads the rest once parenthesized below
    }
    const names = Array.from({ length: columns }, (_, c) => `COLUMN${c + 1}`).join(', ');
    const rows = render(out.slice(i, end));
    out.splice(i, aliasEnd - i, synthetic(`(${rows}) AS ${aliasText}(${names})`));
  }
  // VALUES followed by an alias with its own column list: only the parentheses are missing.
  for (let i = out.length - 1; i >= 0; i--) {
    if (!isWord(out[i], 'VALUES') || !isWord(out[prevSignificant(out, i)], 'FROM', 'JOIN')) continue;
    let j = skipSpace(out, i + 1);
    let end = -1;
    while (isPunct(out[j], '(')) {
      const close = matchingParen(out, j);
      if (close < 0) break;
      end = close + 1;
      const k = skipSpace(out, close + 1);
      if (!isPunct(out[k], ',') || !isPunct(out[skipSpace(out, k + 1)], '(')) break;
      j = skipSpace(out, k + 1);
    }
    if (end < 0) continue;
    out.splice(i, end - i, synthetic(`(${render(out.slice(i, end))})`));
  }
  return out;
}

const CLAUSE_WORDS = new Set([
  'WHERE',
  'GROUP',
  'HAVING',
  'QUALIFY',
  'ORDER',
  'LIMIT',
  'OFFSET',
  'UNION',
  'EXCEPT',
  'INTERSECT',
  'MINUS',
  'JOIN',
  'INNER',
  'LEFT',
  'RIGHT',
  'FULL',
  'CROSS',
  'NATURAL',
  'ON',
  'USING',
  'WINDOW',
  'FETCH',
  'LATERAL',
]);

function isClauseWord(t: Token): boolean {
  return t.kind === 'word' && CLAUSE_WORDS.has(t.text.toUpperCase());
}

/** True when the comma at `i` separates FROM items (a FROM precedes it at the same depth). */
function inFromClause(tokens: readonly Token[], i: number): boolean {
  let depth = 0;
  for (let j = i - 1; j >= 0; j--) {
    if (isPunct(tokens[j], ')')) depth++;
    else if (isPunct(tokens[j], '(')) {
      if (depth === 0) return false;
      depth--;
    } else if (depth === 0 && isWord(tokens[j], 'FROM')) return true;
    else if (depth === 0 && isWord(tokens[j], 'SELECT', 'WHERE', 'SET', 'VALUES')) return false;
  }
  return false;
}

/** Named argument `NAME => value` of a table function, or the positional one at `index`. */
function argument(tokens: readonly Token[], parts: Array<[number, number]>, name: string, index: number): string | undefined {
  for (const [s, e] of parts) {
    const k = skipSpace(tokens, s);
    if (isWord(tokens[k], name) && isPunct(tokens[skipSpace(tokens, k + 1)], '=>')) {
      return render(tokens.slice(skipSpace(tokens, k + 1) + 1, e)).trim();
    }
  }
  const positional = parts.filter(([s, e]) => !isPunct(tokens[skipSpace(tokens, skipSpace(tokens, s) + 1)], '=>') && skipSpace(tokens, s) < e);
  const p = positional[index];
  return p ? render(tokens.slice(p[0], p[1])).trim() : undefined;
}

/**
 * `TABLE(GENERATOR(ROWCOUNT => n))` → `range(n)` (`TIMELIMIT => s` alone → the time-limited generator,
 * src/time-limited-generator.ts); `TABLE(FLATTEN([INPUT =>] x))` → a subquery over
 * DuckDB's `json_each` with FLATTEN's columns (SEQ, KEY, PATH, INDEX, VALUE, THIS).
 */
function tableFunctions(tokens: Token[]): Token[] {
  const out = tokens.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    if (!isWord(out[i], 'TABLE')) continue;
    const open = skipSpace(out, i + 1);
    if (!isPunct(out[open], '(')) continue;
    const close = matchingParen(out, open);
    const fn = skipSpace(out, open + 1);
    const fnOpen = skipSpace(out, fn + 1);
    if (close < 0 || !isPunct(out[fnOpen], '(')) continue;
    const fnClose = matchingParen(out, fnOpen);
    if (fnClose < 0 || skipSpace(out, fnClose + 1) !== close) continue;
    const parts = splitTopLevel(out, fnOpen + 1, fnClose);
    let replacement: string | undefined;
    if (isWord(out[fn], 'GENERATOR')) {
      const rows = argument(out, parts, 'ROWCOUNT', 0);
      // Without ROWCOUNT, TIMELIMIT (seconds) bounds the rows: a query that runs that long (cancelable).
      const seconds = rows === undefined ? argument(out, parts, 'TIMELIMIT', 1) : undefined;
      if (rows !== undefined) replacement = `range(${rows})`;
      else if (seconds !== undefined) replacement = `fleet_local_generator_time_limit(${seconds})`;
    } else if (isWord(out[fn], 'FLATTEN')) {
      const input = argument(out, parts, 'INPUT', 0);
      if (input !== undefined) {
        replacement =
          "(SELECT 1 AS SEQ, CASE WHEN f.fullkey LIKE '%]' THEN NULL ELSE f.key END AS KEY, " +
          "substr(f.fullkey, 2) AS PATH, CASE WHEN f.fullkey LIKE '%]' THEN CAST(f.key AS BIGINT) END AS INDEX, " +
          `f.value AS VALUE, CAST(__flatten_input AS JSON) AS THIS FROM (SELECT ${input} AS __flatten_input) AS __flatten_src, ` +
          'json_each(__flatten_input) AS f)';
      }
    }
    if (replacement) out.splice(i, close + 1 - i, synthetic(replacement));
  }
  return out;
}

/**
 * Semi-structured paths: `col:a.b[0]` → `json_extract(col, '$.a.b[0]')` (a VARIANT-typed result, JSON
 * in DuckDB). The path starts after an identifier (optionally qualified); `::` casts and `:1` binds are
 * other tokens.
 */
function variantPaths(tokens: Token[]): Token[] {
  const out = tokens.slice();
  for (let i = 0; i < out.length; i++) {
    if (!isPunct(out[i], ':')) continue;
    const first = out[i + 1];
    if (!first || (first.kind !== 'word' && first.kind !== 'quoted')) continue;
    // The base: an identifier chain ending right before the colon.
    const baseEnd = i;
    let baseStart = i - 1;
    if (baseStart < 0 || (out[baseStart].kind !== 'word' && out[baseStart].kind !== 'quoted')) continue;
    while (baseStart >= 2 && isPunct(out[baseStart - 1], '.') && (out[baseStart - 2].kind === 'word' || out[baseStart - 2].kind === 'quoted')) baseStart -= 2;
    // The path: :key (.key | [n] | ['key'] | :key)*
    let path = '$';
    let j = i;
    for (;;) {
      const t = out[j];
      const nxt = out[j + 1];
      if ((isPunct(t, ':') || isPunct(t, '.')) && nxt && (nxt.kind === 'word' || nxt.kind === 'quoted')) {
        path += nxt.kind === 'quoted' ? `."${nxt.text.slice(1, -1).replace(/""/g, '"')}"` : `.${nxt.text}`;
        j += 2;
      } else if (isPunct(t, '[') && (out[j + 1]?.kind === 'number' || out[j + 1]?.kind === 'string') && isPunct(out[j + 2], ']')) {
        const key = out[j + 1];
        path += key.kind === 'number' ? `[${key.text}]` : `."${key.text.slice(1, -1)}"`;
        j += 3;
      } else break;
    }
    const base = render(out.slice(baseStart, baseEnd));
    const replacement = synthetic(`json_extract(${base}, '${path.replace(/'/g, "''")}')`);
    out.splice(baseStart, j - baseStart, replacement);
    i = baseStart;
  }
  return out;
}

// Snowflake functions whose DuckDB counterpart has another name, or whose name DuckDB already uses
// for something else (DuckDB's to_timestamp takes epoch seconds only): renamed at the call.
const RENAMED_FUNCTIONS: Record<string, string> = {
  ARRAY_CONSTRUCT: 'list_value',
  TO_TIMESTAMP: 'sf_to_timestamp_ntz',
  TO_TIMESTAMP_NTZ: 'sf_to_timestamp_ntz',
  TO_TIMESTAMP_LTZ: 'sf_to_timestamp_ltz',
  TO_TIMESTAMP_TZ: 'sf_to_timestamp_tz',
  PARSE_JSON: 'sf_parse_json',
  TRY_PARSE_JSON: 'sf_try_parse_json',
};

const SEQUENCE_FUNCTIONS = new Set(['SEQ1', 'SEQ2', 'SEQ4', 'SEQ8']);

/** Renames calls (see RENAMED_FUNCTIONS) and turns `SEQ4()` and friends into a row number from 0. */
function functionNames(tokens: Token[]): Token[] {
  const out = tokens.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    const t = out[i];
    if (t.kind !== 'word') continue;
    const open = skipSpace(out, i + 1);
    if (!isPunct(out[open], '(')) continue;
    if (isPunct(out[prevSignificant(out, i)], '.')) continue; // a qualified name is someone else's
    const name = t.text.toUpperCase();
    if (SEQUENCE_FUNCTIONS.has(name)) {
      const close = matchingParen(out, open);
      if (close > 0) out.splice(i, close + 1 - i, synthetic('(row_number() OVER () - 1)'));
    } else if (name === 'CONCAT') {
      // Snowflake's CONCAT is NULL when an argument is (DuckDB's skips NULLs); `||` is NULL-strict.
      const close = matchingParen(out, open);
      if (close < 0) continue;
      const parts = splitTopLevel(out, open + 1, close);
      const pieces: Token[] = [synthetic('(', 'punct')];
      parts.forEach(([s, e], k) => {
        pieces.push(synthetic(k === 0 ? 'CAST(' : ' || CAST('), ...out.slice(s, e), synthetic(' AS VARCHAR)'));
      });
      pieces.push(synthetic(')', 'punct'));
      out.splice(i, close + 1 - i, ...pieces);
    } else if (RENAMED_FUNCTIONS[name]) {
      out[i] = synthetic(RENAMED_FUNCTIONS[name]);
    }
  }
  return out;
}
