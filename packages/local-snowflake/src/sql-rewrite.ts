import { type SessionNames, translateDialect } from './dialect/translate';

/**
 * Turns Snowflake SQL into SQL DuckDB accepts, without ever touching values: binds stay binds.
 * The Snowflake-only constructs (types, GENERATOR, FLATTEN, FROM VALUES, paths, column names…) are
 * translated first, token by token (`dialect/translate.ts`, docs/dialect.md); then this pass.
 *
 * One pass over the text that knows Snowflake's lexical regions (single-quoted strings with backslash
 * escapes, `"identifiers"`, `$$dollar strings$$`, `--` / `//` / `/* *\/` comments), and outside them only:
 * - `?` becomes `$1`, `$2`, … in order, and `:N` becomes `$N` (`::` casts are left alone);
 * - `VECTOR(FLOAT, n)` / `VECTOR(INT, n)` become DuckDB's fixed-size arrays `FLOAT[n]` / `INTEGER[n]`;
 * - the bare date part of `DATEADD(day, …)` and its relatives is quoted (`'day'`);
 * - `// comment` becomes `-- comment` (in DuckDB `//` is integer division);
 * - a single-quoted literal containing a backslash gets DuckDB's `E` prefix, because Snowflake reads
 *   `'it\'s'` as an escape and DuckDB's plain strings do not.
 * It also counts statements (Snowflake rejects several in one request unless asked) and reports the
 * leading keywords, which decide how a statement is handled.
 */
export interface RewrittenSql {
  /** The DuckDB text. */
  readonly sql: string;
  /** Highest parameter index referenced (`?` count or largest `:N`); binds beyond it are unused. */
  readonly parameterCount: number;
  /** Number of non-empty statements separated by `;`. */
  readonly statementCount: number;
  /** Up to three leading words of the first statement, upper-case (e.g. `['ALTER', 'SESSION', 'SET']`). */
  readonly leadingWords: readonly string[];
  /** `TRUNCATE TABLE IF EXISTS`: DuckDB's "table does not exist" means success (see `translateDialect`). */
  readonly missingTableIsSuccess: boolean;
}

const VECTOR_TYPE = /\bVECTOR\s*\(\s*(FLOAT|INT)\s*,\s*(\d+)\s*\)/gi;

function isIdentChar(ch: string | undefined): boolean {
  return ch !== undefined && /[\p{L}\p{N}_$]/u.test(ch);
}

// Snowflake takes the date part of these functions as a bare word (`DATEADD(day, -30, ts)`); DuckDB
// would read it as a column, so it is quoted.
const BARE_DATE_PART =
  /\b(DATEADD|TIMESTAMPADD|DATEDIFF|TIMESTAMPDIFF|DATE_TRUNC)\s*\(\s*(YEARS?|QUARTERS?|MONTHS?|WEEKS?|DAYS?|HOURS?|MINUTES?|SECONDS?|MILLISECONDS?|MICROSECONDS?)\s*,/gi;

function rewriteCode(code: string): string {
  return code
    .replace(VECTOR_TYPE, (_m, elem: string, dims: string) => `${elem.toUpperCase() === 'INT' ? 'INTEGER' : 'FLOAT'}[${dims}]`)
    .replace(BARE_DATE_PART, (_m, fn: string, part: string) => `${fn}('${part.toLowerCase()}',`);
}

/**
 * Rewrites one request's SQL text (see the module comment); `session` names the current database and
 * schema. Never throws: bad SQL is DuckDB's to report.
 */
export function rewriteSql(snowflakeSql: string, session?: SessionNames): RewrittenSql {
  const { sql: input, missingTableIsSuccess } = translateDialect(snowflakeSql, session);
  const out: string[] = [];
  let code = ''; // pending text outside strings/comments, rewritten in one go when a region starts
  let positional = 0;
  let maxNumbered = 0;
  let statementCount = 0;
  let statementHasContent = false;
  const words: string[] = [];
  let wordsDone = false;
  // Index in `out` of the last string literal: a `:1` right after one (only spaces between) is an
  // object literal's key separator (`{'x':1}`), not a bind.
  let lastLiteralAt = -1;

  const flushCode = () => {
    if (code) out.push(rewriteCode(code));
    code = '';
  };
  const lastEmittedChar = (): string | undefined => {
    if (code) return code[code.length - 1];
    const last = out[out.length - 1];
    return last ? last[last.length - 1] : undefined;
  };

  let i = 0;
  const n = input.length;
  while (i < n) {
    const ch = input[i];
    const next = input[i + 1];

    if (ch === "'") {
      let j = i + 1;
      let hasBackslash = false;
      while (j < n) {
        if (input[j] === '\\') {
          hasBackslash = true;
          j += 2;
          continue;
        }
        if (input[j] === "'") {
          if (input[j + 1] === "'") {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      const literal = input.slice(i, Math.min(j + 1, n));
      const prefix = hasBackslash && !isIdentChar(lastEmittedChar()) ? 'E' : '';
      flushCode();
      out.push(prefix + literal);
      lastLiteralAt = out.length - 1;
      statementHasContent = true;
      wordsDone = true;
      i = j + 1;
      continue;
    }
    if (ch === '"') {
      let j = i + 1;
      while (j < n && !(input[j] === '"' && input[j + 1] !== '"')) j += input[j] === '"' ? 2 : 1;
      flushCode();
      out.push(input.slice(i, Math.min(j + 1, n)));
      statementHasContent = true;
      wordsDone = true;
      i = j + 1;
      continue;
    }
    if (ch === '$' && next === '$') {
      const end = input.indexOf('$$', i + 2);
      const stop = end < 0 ? n : end + 2;
      flushCode();
      out.push(input.slice(i, stop));
      statementHasContent = true;
      wordsDone = true;
      i = stop;
      continue;
    }
    if ((ch === '-' && next === '-') || (ch === '/' && next === '/')) {
      const end = input.indexOf('\n', i);
      const stop = end < 0 ? n : end;
      flushCode();
      out.push(`--${input.slice(i + 2, stop)}`);
      i = stop;
      continue;
    }
    if (ch === '/' && next === '*') {
      const end = input.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      flushCode();
      out.push(input.slice(i, stop));
      i = stop;
      continue;
    }
    if (ch === ':' && next === ':') {
      code += '::';
      i += 2;
      continue;
    }
    const afterLiteral = lastLiteralAt === out.length - 1 && code.trim() === '';
    if (ch === ':' && next !== undefined && next >= '0' && next <= '9' && !isIdentChar(input[i - 1]) && !afterLiteral) {
      let j = i + 1;
      while (j < n && input[j] >= '0' && input[j] <= '9') j++;
      const index = Number(input.slice(i + 1, j));
      maxNumbered = Math.max(maxNumbered, index);
      code += `$${index}`;
      statementHasContent = true;
      wordsDone = true;
      i = j;
      continue;
    }
    if (ch === '?') {
      positional++;
      code += `$${positional}`;
      statementHasContent = true;
      wordsDone = true;
      i++;
      continue;
    }
    if (ch === ';') {
      if (statementHasContent) statementCount++;
      statementHasContent = false;
      wordsDone = wordsDone || words.length > 0;
      code += ch;
      i++;
      continue;
    }
    if (/\s/.test(ch)) {
      code += ch;
      i++;
      continue;
    }
    statementHasContent = true;
    if (!wordsDone && isIdentChar(ch)) {
      let j = i;
      while (j < n && isIdentChar(input[j])) j++;
      words.push(input.slice(i, j).toUpperCase());
      if (words.length >= 3) wordsDone = true;
      code += input.slice(i, j);
      i = j;
      continue;
    }
    if (!wordsDone && ch !== '(') wordsDone = words.length > 0;
    code += ch;
    i++;
  }
  flushCode();
  if (statementHasContent) statementCount++;
  return {
    sql: out.join(''),
    parameterCount: Math.max(positional, maxNumbered),
    statementCount,
    leadingWords: words,
    missingTableIsSuccess,
  };
}
