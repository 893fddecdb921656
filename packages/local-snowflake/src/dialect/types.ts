import { isPunct, isWord, matchingParen, render, skipSpace, splitTopLevel, type Token } from './tokens';

/**
 * Snowflake type names → DuckDB types, wherever a type is written: after `::`, after `AS` in
 * `CAST(…)` / `TRY_CAST(…)`, in the column list of `CREATE TABLE`, in `ALTER TABLE … ADD [COLUMN]`,
 * and inside the structured types `OBJECT(…)`, `ARRAY(…)`, `MAP(…, …)`.
 *
 * | Snowflake | DuckDB |
 * |---|---|
 * | `NUMBER`, `NUMERIC`, `DECIMAL` `[(p[, s])]` | `DECIMAL(p, s)` (default `(38, 0)`) |
 * | `INT`, `INTEGER`, `BIGINT`, `SMALLINT`, `TINYINT`, `BYTEINT` | `BIGINT` (Snowflake's are NUMBER(38,0)) |
 * | `FLOAT`, `FLOAT4`, `FLOAT8`, `DOUBLE [PRECISION]`, `REAL` | `DOUBLE` (all Snowflake floats are 64-bit) |
 * | `VARCHAR(n)`, `STRING`, `TEXT`, `CHAR[ACTER] [VARYING](n)`, `NCHAR`, `NVARCHAR[2]` | `VARCHAR` |
 * | `BINARY(n)`, `VARBINARY(n)` | `BLOB` |
 * | `TIMESTAMP[_NTZ](n)`, `DATETIME`, `TIMESTAMPNTZ` | `TIMESTAMP` (the default TIMESTAMP_TYPE_MAPPING) |
 * | `TIMESTAMP_LTZ(n)`, `TIMESTAMP_TZ(n)`, `TIMESTAMPLTZ`, `TIMESTAMPTZ` | `TIMESTAMPTZ` |
 * | `TIME(n)` | `TIME` |
 * | `VARIANT`, `OBJECT`, `ARRAY` (semi-structured) | `JSON` |
 * | `OBJECT(a T, …)`, `ARRAY(T)`, `MAP(K, V)` (structured) | `STRUCT("a" T, …)`, `T[]`, `MAP(K, V)` |
 *
 * Other names (DuckDB's own, `VECTOR(…)`, `GEOGRAPHY`) are left as written.
 */
export function translateTypes(tokens: readonly Token[]): Token[] {
  const edits: Array<{ start: number; end: number; text: string }> = [];
  const addType = (at: number) => {
    const i = skipSpace(tokens, at);
    const t = readType(tokens, i);
    if (t) edits.push({ start: i, end: t.end, text: t.text });
    return t ? t.end : i;
  };

  // Open parentheses, with the function word before each (to recognise CAST( … AS type)).
  const parens: string[] = [];
  let i = 0;
  while (i < tokens.length) {
    const t = tokens[i];
    if (isPunct(t, '::')) {
      const literal = prevSignificantIndex(tokens, i);
      const target = skipSpace(tokens, i + 1);
      const zone = timestampKind(tokens, target);
      if (zone && tokens[literal]?.kind === 'string') {
        // Text to timestamp: Snowflake's AUTO format (RFC 2822, offsets with a space…) via TO_TIMESTAMP_*.
        const end = readType(tokens, target)!.end;
        edits.push({ start: literal, end, text: `sf_to_timestamp_${zone}(${tokens[literal].text})` });
        i = end;
        continue;
      }
      i = Math.max(addType(i + 1), i + 1);
      continue;
    }
    if (isPunct(t, '(')) {
      const prev = previousWord(tokens, i);
      parens.push(prev);
    } else if (isPunct(t, ')')) {
      parens.pop();
    } else if (isWord(t, 'AS') && (parens.at(-1) === 'CAST' || parens.at(-1) === 'TRY_CAST')) {
      i = Math.max(addType(i + 1), i + 1);
      continue;
    } else if (isWord(t, 'CREATE')) {
      const cols = createTableColumns(tokens, i);
      if (cols) {
        for (const [s, e] of splitTopLevel(tokens, cols.open + 1, cols.close)) columnDefinition(tokens, s, e, addType);
        i = cols.close + 1;
        continue;
      }
    } else if (isWord(t, 'ADD')) {
      // ALTER TABLE t ADD [COLUMN] [IF NOT EXISTS] name type
      let j = skipSpace(tokens, i + 1);
      if (isWord(tokens[j], 'COLUMN')) j = skipSpace(tokens, j + 1);
      if (isWord(tokens[j], 'IF')) j = skipSpace(tokens, skipSpace(tokens, skipSpace(tokens, j + 1) + 1) + 1);
      if (isAlterTable(tokens, i) && (tokens[j]?.kind === 'word' || tokens[j]?.kind === 'quoted')) {
        i = Math.max(addType(j + 1), j + 1);
        continue;
      }
    }
    i++;
  }
  if (edits.length === 0) return tokens.slice();
  const out = tokens.slice();
  for (const e of edits.sort((a, b) => b.start - a.start)) out.splice(e.start, e.end - e.start, { kind: 'word', text: e.text });
  return out;
}

function prevSignificantIndex(tokens: readonly Token[], i: number): number {
  let j = i - 1;
  while (j >= 0 && (tokens[j].kind === 'space' || tokens[j].kind === 'comment')) j--;
  return j;
}

/** `ntz`, `ltz` or `tz` when the type at `i` is a Snowflake timestamp type. */
function timestampKind(tokens: readonly Token[], i: number): 'ntz' | 'ltz' | 'tz' | undefined {
  const t = tokens[i];
  if (t?.kind !== 'word') return undefined;
  const name = t.text.toUpperCase();
  if (name === 'TIMESTAMP_LTZ' || name === 'TIMESTAMPLTZ') return 'ltz';
  if (name === 'TIMESTAMP_TZ' || name === 'TIMESTAMPTZ') return 'tz';
  if (name === 'TIMESTAMP_NTZ' || name === 'TIMESTAMPNTZ' || name === 'DATETIME') return 'ntz';
  return undefined;
}

function previousWord(tokens: readonly Token[], i: number): string {
  let j = i - 1;
  while (j >= 0 && tokens[j].kind === 'space') j--;
  return j >= 0 && tokens[j].kind === 'word' ? tokens[j].text.toUpperCase() : '';
}

function isAlterTable(tokens: readonly Token[], addIndex: number): boolean {
  const words = tokens
    .slice(0, addIndex)
    .filter((t) => t.kind === 'word')
    .map((t) => t.text.toUpperCase());
  return words[0] === 'ALTER' && words[1] === 'TABLE';
}

const CONSTRAINT_WORDS = ['PRIMARY', 'UNIQUE', 'FOREIGN', 'CONSTRAINT', 'CHECK'];

/** One `name type [options]` entry of a CREATE TABLE column list; table constraints are skipped. */
function columnDefinition(tokens: readonly Token[], start: number, end: number, addType: (at: number) => number): void {
  const nameAt = skipSpace(tokens, start);
  if (nameAt >= end) return;
  const name = tokens[nameAt];
  if (name.kind !== 'word' && name.kind !== 'quoted') return;
  if (name.kind === 'word' && CONSTRAINT_WORDS.includes(name.text.toUpperCase())) return;
  addType(nameAt + 1);
}

/** For `CREATE [OR REPLACE] [TEMP…] TABLE [IF NOT EXISTS] name (`, the parentheses of the column list. */
function createTableColumns(tokens: readonly Token[], createAt: number): { open: number; close: number } | undefined {
  let j = skipSpace(tokens, createAt + 1);
  while (isWord(tokens[j], 'OR', 'REPLACE', 'LOCAL', 'GLOBAL', 'TEMP', 'TEMPORARY', 'VOLATILE', 'TRANSIENT')) j = skipSpace(tokens, j + 1);
  if (!isWord(tokens[j], 'TABLE')) return undefined;
  j = skipSpace(tokens, j + 1);
  if (isWord(tokens[j], 'IF')) {
    j = skipSpace(tokens, j + 1); // NOT
    j = skipSpace(tokens, j + 1); // EXISTS
    j = skipSpace(tokens, j + 1);
  }
  // The (possibly dotted, possibly quoted) table name.
  while (tokens[j] && (tokens[j].kind === 'word' || tokens[j].kind === 'quoted')) {
    j = skipSpace(tokens, j + 1);
    if (!isPunct(tokens[j], '.')) break;
    j = skipSpace(tokens, j + 1);
  }
  if (!isPunct(tokens[j], '(')) return undefined;
  const close = matchingParen(tokens, j);
  return close < 0 ? undefined : { open: j, close };
}

const INTEGER_TYPES = new Set(['INT', 'INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'BYTEINT']);
const FLOAT_TYPES = new Set(['FLOAT', 'FLOAT4', 'FLOAT8', 'DOUBLE', 'REAL']);
const TEXT_TYPES = new Set(['VARCHAR', 'STRING', 'TEXT', 'CHAR', 'CHARACTER', 'NCHAR', 'NVARCHAR', 'NVARCHAR2']);
const NTZ_TYPES = new Set(['TIMESTAMP', 'TIMESTAMP_NTZ', 'TIMESTAMPNTZ', 'DATETIME']);
const TZ_TYPES = new Set(['TIMESTAMP_LTZ', 'TIMESTAMPLTZ', 'TIMESTAMP_TZ', 'TIMESTAMPTZ']);

/**
 * Reads the type starting at token `i` and returns its DuckDB spelling and the index after it, or
 * undefined for a name this module leaves alone.
 */
function readType(tokens: readonly Token[], i: number): { text: string; end: number } | undefined {
  const t = tokens[i];
  if (t?.kind !== 'word') return undefined;
  const name = t.text.toUpperCase();
  let end = i + 1;
  // Multi-word spellings.
  const after = skipSpace(tokens, end);
  if (name === 'DOUBLE' && isWord(tokens[after], 'PRECISION')) end = after + 1;
  if ((name === 'CHAR' || name === 'CHARACTER' || name === 'NCHAR') && isWord(tokens[after], 'VARYING')) end = after + 1;
  // Arguments: `(…)` right after the name.
  let args: Array<[number, number]> | undefined;
  const open = skipSpace(tokens, end);
  let close = -1;
  if (isPunct(tokens[open], '(')) {
    close = matchingParen(tokens, open);
    if (close < 0) return undefined;
    args = splitTopLevel(tokens, open + 1, close);
  }
  const withArgs = args ? close + 1 : end;
  const argText = (k: number) => (args?.[k] ? render(tokens.slice(args[k][0], args[k][1])).trim() : undefined);

  if (name === 'NUMBER' || name === 'NUMERIC' || name === 'DECIMAL' || name === 'DEC') {
    const p = argText(0) ?? '38';
    const s = argText(1) ?? '0';
    return { text: `DECIMAL(${p}, ${s})`, end: withArgs };
  }
  if (INTEGER_TYPES.has(name)) return { text: 'BIGINT', end };
  if (FLOAT_TYPES.has(name)) return { text: 'DOUBLE', end: args ? withArgs : end };
  if (TEXT_TYPES.has(name)) return { text: 'VARCHAR', end: withArgs };
  if (name === 'BINARY' || name === 'VARBINARY') return { text: 'BLOB', end: withArgs };
  if (NTZ_TYPES.has(name)) {
    if (name === 'TIMESTAMP' && isWord(tokens[skipSpace(tokens, withArgs)], 'WITH', 'WITHOUT')) return undefined; // DuckDB's own spelling
    return { text: 'TIMESTAMP', end: withArgs };
  }
  if (TZ_TYPES.has(name)) return { text: 'TIMESTAMPTZ', end: withArgs };
  if (name === 'TIME') return { text: 'TIME', end: withArgs };
  if (name === 'VARIANT') return { text: 'JSON', end };
  if (name === 'OBJECT') {
    if (!args) return { text: 'JSON', end };
    const fields: string[] = [];
    for (const [s, e] of args) {
      const fieldAt = skipSpace(tokens, s);
      if (fieldAt >= e) continue;
      const field = tokens[fieldAt];
      const fieldName = field.kind === 'quoted' ? field.text : `"${field.text.replace(/"/g, '""')}"`;
      fields.push(`${fieldName} ${typeText(tokens, fieldAt + 1, e)}`);
    }
    return { text: `STRUCT(${fields.join(', ')})`, end: withArgs };
  }
  if (name === 'ARRAY') {
    if (!args) return { text: 'JSON', end };
    return { text: `${typeText(tokens, args[0][0], args[0][1])}[]`, end: withArgs };
  }
  if (name === 'MAP' && args && args.length === 2) {
    return { text: `MAP(${typeText(tokens, args[0][0], args[0][1])}, ${typeText(tokens, args[1][0], args[1][1])})`, end: withArgs };
  }
  return undefined;
}

/** The DuckDB spelling of the type written in tokens `[from, to)` (with its trailing options, e.g. NOT NULL, kept). */
function typeText(tokens: readonly Token[], from: number, to: number): string {
  const i = skipSpace(tokens, from);
  const t = readType(tokens, i);
  if (!t || t.end > to) return render(tokens.slice(i, to)).trim();
  return (t.text + render(tokens.slice(t.end, to))).trim();
}
