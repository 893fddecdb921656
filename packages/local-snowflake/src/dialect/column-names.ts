import { isPunct, isWord, render, skipSpace, splitTopLevel, synthetic, type Token } from './tokens';

// Words that end a SELECT list.
const LIST_END = new Set([
  'FROM',
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
  'INTO',
  'WINDOW',
  'FETCH',
]);

// Words after which a trailing identifier is part of the expression, not an alias (`x IS NULL`, `CASE … END`).
const NOT_ALIAS = new Set([
  'END',
  'NULL',
  'TRUE',
  'FALSE',
  'IS',
  'NOT',
  'AND',
  'OR',
  'LIKE',
  'ILIKE',
  'IN',
  'BETWEEN',
  'THEN',
  'ELSE',
  'WHEN',
  'CASE',
  'DISTINCT',
  'AS',
  'ESCAPE',
  'DATE',
  'TIME',
  'TIMESTAMP',
  'INTERVAL',
]);

/**
 * Snowflake names an unaliased expression column by its text, upper-cased: `SELECT 1+1` has a column
 * `1+1`, `SELECT count(*)` one named `COUNT(*)`. DuckDB names them differently (`(1 + 1)`,
 * `count_star()`), so every such select item gets that name as an explicit alias. Plain column
 * references, `*`, and items with an alias are left alone; so are items with a bind (their name would
 * be the bind's text).
 */
export function columnNames(tokens: Token[]): Token[] {
  const out = tokens.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    if (!isWord(out[i], 'SELECT')) continue;
    let start = skipSpace(out, i + 1);
    while (isWord(out[start], 'DISTINCT', 'ALL')) start = skipSpace(out, start + 1);
    if (isWord(out[start], 'TOP')) start = skipSpace(out, skipSpace(out, start + 1) + 1);
    const end = listEnd(out, start);
    const items = splitTopLevel(out, start, end);
    for (let k = items.length - 1; k >= 0; k--) {
      const [s, e] = items[k];
      const name = expressionName(out, s, e);
      if (name === undefined) continue;
      let last = e - 1;
      while (last > s && (out[last].kind === 'space' || out[last].kind === 'comment')) last--;
      out.splice(last + 1, 0, synthetic(` AS "${name.replace(/"/g, '""')}"`, 'quoted'));
    }
  }
  return out;
}

function listEnd(tokens: readonly Token[], from: number): number {
  let depth = 0;
  for (let i = from; i < tokens.length; i++) {
    const t = tokens[i];
    if (isPunct(t, '(') || isPunct(t, '[') || isPunct(t, '{')) depth++;
    else if (isPunct(t, ')') || isPunct(t, ']') || isPunct(t, '}')) {
      if (depth === 0) return i;
      depth--;
    } else if (depth === 0 && (isPunct(t, ';') || (t.kind === 'word' && LIST_END.has(t.text.toUpperCase())))) return i;
  }
  return tokens.length;
}

/** The Snowflake name of the select item in `[s, e)` when it needs an alias, otherwise undefined. */
function expressionName(tokens: readonly Token[], s: number, e: number): string | undefined {
  const significant: number[] = [];
  for (let i = s; i < e; i++) if (tokens[i].kind !== 'space' && tokens[i].kind !== 'comment') significant.push(i);
  if (significant.length === 0) return undefined;
  const sig = significant.map((i) => tokens[i]);
  if (sig.some((t) => t.kind === 'bind')) return undefined;
  // A lone literal: DuckDB's name for it is its text, which the server upper-cases already.
  if (sig.length === 1 && (sig[0].kind === 'string' || sig[0].kind === 'number')) return undefined;
  let depth = 0;
  for (const t of sig) {
    if (isPunct(t, '(') || isPunct(t, '[') || isPunct(t, '{')) depth++;
    else if (isPunct(t, ')') || isPunct(t, ']') || isPunct(t, '}')) depth--;
    else if (depth === 0 && isWord(t, 'AS')) return undefined;
  }
  if (sig.some((t) => isPunct(t, '*') && sig.length <= 3)) return undefined; // *, t.*
  if (sig.some((t) => t.kind === 'word' && (t.text.toUpperCase() === 'EXCLUDE' || t.text.toUpperCase() === 'COLUMNS'))) return undefined;
  // A (qualified) column reference: ident (. ident)*
  if (sig.every((t, k) => (k % 2 === 0 ? t.kind === 'word' || t.kind === 'quoted' : isPunct(t, '.'))) && sig.length % 2 === 1) return undefined;
  // A trailing alias without AS: `expr alias`.
  const last = sig[sig.length - 1];
  if (sig.length >= 2 && (last.kind === 'word' || last.kind === 'quoted')) {
    const before = sig[sig.length - 2];
    const lastIsKeyword = last.kind === 'word' && NOT_ALIAS.has(last.text.toUpperCase());
    const beforeEndsExpression =
      isPunct(before, ')') ||
      isPunct(before, ']') ||
      before.kind === 'string' ||
      before.kind === 'number' ||
      before.kind === 'quoted' ||
      (before.kind === 'word' && !NOT_ALIAS.has(before.text.toUpperCase()));
    if (!lastIsKeyword && beforeEndsExpression) return undefined;
  }
  // The text as written, upper-cased (Snowflake caps names at 255 characters here; longer stay DuckDB's).
  const text = render(tokens.slice(significant[0], significant[significant.length - 1] + 1));
  if (text.length > 255) return undefined;
  return text.toUpperCase();
}
