/**
 * A lexer for Snowflake SQL that keeps every character: joining the tokens' `text` gives the input back.
 * The dialect translators work on these tokens, so string literals, quoted identifiers, comments and
 * binds are single tokens that no translation can reach into.
 */
export type TokenKind =
  | 'space' // whitespace
  | 'comment' // `-- …`, `// …`, `/* … *\/`
  | 'string' // '…' (Snowflake: backslash escapes and '' doubling) or $$…$$
  | 'quoted' // "identifier"
  | 'word' // identifier or keyword
  | 'number' // 12, 1.5, .5, 1e-3
  | 'bind' // ?, :1
  | 'punct'; // ( ) , . ; :: => and any other operator character(s)

export interface Token {
  kind: TokenKind;
  text: string;
}

const isWordStart = (ch: string) => /[\p{L}_]/u.test(ch);
const isWordChar = (ch: string | undefined) => ch !== undefined && /[\p{L}\p{N}_$]/u.test(ch);
const isDigit = (ch: string | undefined) => ch !== undefined && ch >= '0' && ch <= '9';

/** Splits `sql` into tokens (see `TokenKind`). Never throws: an unterminated region runs to the end. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  const push = (kind: TokenKind, end: number) => {
    tokens.push({ kind, text: sql.slice(i, end) });
    i = end;
  };
  while (i < n) {
    const ch = sql[i];
    const next = sql[i + 1];
    if (/\s/.test(ch)) {
      let j = i + 1;
      while (j < n && /\s/.test(sql[j])) j++;
      push('space', j);
    } else if ((ch === '-' && next === '-') || (ch === '/' && next === '/')) {
      const end = sql.indexOf('\n', i);
      push('comment', end < 0 ? n : end);
    } else if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      push('comment', end < 0 ? n : end + 2);
    } else if (ch === "'") {
      let j = i + 1;
      while (j < n) {
        if (sql[j] === '\\') j += 2;
        else if (sql[j] === "'" && sql[j + 1] === "'") j += 2;
        else if (sql[j] === "'") break;
        else j++;
      }
      push('string', Math.min(j + 1, n));
    } else if (ch === '$' && next === '$') {
      const end = sql.indexOf('$$', i + 2);
      push('string', end < 0 ? n : end + 2);
    } else if (ch === '"') {
      let j = i + 1;
      while (j < n && !(sql[j] === '"' && sql[j + 1] !== '"')) j += sql[j] === '"' ? 2 : 1;
      push('quoted', Math.min(j + 1, n));
    } else if (isWordStart(ch)) {
      let j = i + 1;
      while (isWordChar(sql[j])) j++;
      push('word', j);
    } else if (isDigit(ch) || (ch === '.' && isDigit(next))) {
      let j = i;
      while (isDigit(sql[j])) j++;
      if (sql[j] === '.') {
        j++;
        while (isDigit(sql[j])) j++;
      }
      if ((sql[j] === 'e' || sql[j] === 'E') && (isDigit(sql[j + 1]) || ((sql[j + 1] === '-' || sql[j + 1] === '+') && isDigit(sql[j + 2])))) {
        j += 2;
        while (isDigit(sql[j])) j++;
      }
      push('number', j);
    } else if (ch === '?') {
      push('bind', i + 1);
    } else if (ch === ':' && next === ':') {
      push('punct', i + 2);
    } else if (ch === ':' && isDigit(next) && !isWordChar(sql[i - 1])) {
      let j = i + 1;
      while (isDigit(sql[j])) j++;
      push('bind', j);
    } else if (ch === '=' && next === '>') {
      push('punct', i + 2);
    } else {
      push('punct', i + 1);
    }
  }
  return tokens;
}

/** Joins tokens back into text. */
export function render(tokens: readonly Token[]): string {
  let s = '';
  for (const t of tokens) s += t.text;
  return s;
}

/** True for a `word` token spelling `word` (case-insensitive). */
export function isWord(t: Token | undefined, ...words: string[]): boolean {
  if (t?.kind !== 'word') return false;
  const upper = t.text.toUpperCase();
  return words.length === 0 || words.includes(upper);
}

export function isPunct(t: Token | undefined, text: string): boolean {
  return t !== undefined && t.kind === 'punct' && t.text === text;
}

/** Index of the next token at or after `i` that is not whitespace or a comment (`tokens.length` if none). */
export function skipSpace(tokens: readonly Token[], i: number): number {
  while (i < tokens.length && (tokens[i].kind === 'space' || tokens[i].kind === 'comment')) i++;
  return i;
}

/** Index of the previous token before `i` that is not whitespace or a comment (-1 if none). */
export function prevSignificant(tokens: readonly Token[], i: number): number {
  i--;
  while (i >= 0 && (tokens[i].kind === 'space' || tokens[i].kind === 'comment')) i--;
  return i;
}

/** Index of the `)` matching the `(` at `open`, or -1 when it is unbalanced. */
export function matchingParen(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (isPunct(tokens[i], '(')) depth++;
    else if (isPunct(tokens[i], ')')) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/**
 * Splits the tokens between `from` and `to` (exclusive) at top-level commas; each part is a
 * `[start, end)` index range.
 */
export function splitTopLevel(tokens: readonly Token[], from: number, to: number): Array<[number, number]> {
  const parts: Array<[number, number]> = [];
  let depth = 0;
  let start = from;
  for (let i = from; i < to; i++) {
    const t = tokens[i];
    if (isPunct(t, '(') || isPunct(t, '[') || isPunct(t, '{')) depth++;
    else if (isPunct(t, ')') || isPunct(t, ']') || isPunct(t, '}')) depth--;
    else if (depth === 0 && isPunct(t, ',')) {
      parts.push([start, i]);
      start = i + 1;
    }
  }
  parts.push([start, to]);
  return parts;
}

/** A token holding text produced by a translation (its kind only matters to later translations). */
export function synthetic(text: string, kind: TokenKind = 'word'): Token {
  return { kind, text };
}
