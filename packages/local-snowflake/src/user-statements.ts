import { type Execution, STATEMENT_TYPE_ID } from './executor';
import { type EncodedResult, type RowTypeEntry, statusResult } from './result-encoding';
import type { Session } from './sessions';
import { SnowflakeError } from './snowflake-error';
import {
  DAY_MS,
  DEFAULT_TOKEN_DAYS,
  MAX_TOKEN_DAYS,
  USER_TYPES,
  type UserProperties,
  type UserProperty,
  type UserRegistry,
  type UserType,
  userErrors,
} from './users';

/**
 * Snowflake's user statements, which DuckDB does not have: parsed here and applied to the
 * {@link UserRegistry}, never sent to DuckDB.
 *
 *   CREATE [OR REPLACE] USER [IF NOT EXISTS] <name> [<property> = <value> …]
 *   ALTER USER [IF EXISTS] <name> SET <property> = <value> [, …]   |   UNSET <property> [, …]
 *   ALTER USER [IF EXISTS] [<name>] ADD {PROGRAMMATIC ACCESS TOKEN | PAT} [IF NOT EXISTS] <token>
 *         [ROLE_RESTRICTION = '<role>'] [DAYS_TO_EXPIRY = <n>] [COMMENT = '<text>']
 *   ALTER USER [IF EXISTS] [<name>] REMOVE {PROGRAMMATIC ACCESS TOKEN | PAT} <token>
 *   DROP USER [IF EXISTS] <name>
 *   DESC[RIBE] USER <name>
 *
 * Properties: TYPE, PASSWORD, RSA_PUBLIC_KEY, RSA_PUBLIC_KEY_2, DEFAULT_ROLE, DEFAULT_WAREHOUSE,
 * DEFAULT_NAMESPACE, COMMENT. Keywords are case-insensitive; unquoted identifiers are upper-cased and
 * quoted ones kept as written, as in Snowflake. Only the admin user may run them, except DESC USER on
 * oneself.
 */

type TokenKind = 'word' | 'quoted' | 'string' | 'number' | 'symbol' | 'end';

interface Token {
  readonly kind: TokenKind;
  /** Words upper-cased, quoted identifiers and strings unescaped, symbols as is. */
  readonly value: string;
  /** The source text, for error messages. */
  readonly text: string;
  readonly pos: number;
}

const PROPERTIES: Readonly<Record<string, UserProperty>> = {
  TYPE: 'type',
  PASSWORD: 'password',
  RSA_PUBLIC_KEY: 'rsaPublicKey',
  RSA_PUBLIC_KEY_2: 'rsaPublicKey2',
  DEFAULT_ROLE: 'defaultRole',
  DEFAULT_WAREHOUSE: 'defaultWarehouse',
  DEFAULT_NAMESPACE: 'defaultNamespace',
  COMMENT: 'comment',
};

/** Properties whose value must be a string literal (the rest also take an identifier). */
const STRING_PROPERTIES = new Set(['PASSWORD', 'RSA_PUBLIC_KEY', 'RSA_PUBLIC_KEY_2', 'COMMENT']);

const ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '0': '\0' };

function syntaxError(sql: string, token: Token): SnowflakeError {
  const before = sql.slice(0, token.pos);
  const line = before.split('\n').length;
  const position = token.pos - (before.lastIndexOf('\n') + 1);
  const unexpected = token.kind === 'end' ? '<EOF>' : token.text;
  return new SnowflakeError('001003', `SQL compilation error:\nsyntax error line ${line} at position ${position} unexpected '${unexpected}'.`, '42000');
}

/** Splits a statement into tokens, skipping whitespace and comments (`--`, `//`, block comments). */
function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql[i];
    const next = sql[i + 1];
    if (/\s/.test(ch)) {
      i++;
    } else if ((ch === '-' && next === '-') || (ch === '/' && next === '/')) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end;
    } else if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else if (/[A-Za-z_]/.test(ch)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(sql[j])) j++;
      tokens.push({ kind: 'word', value: sql.slice(i, j).toUpperCase(), text: sql.slice(i, j), pos: i });
      i = j;
    } else if (ch === '"') {
      let value = '';
      let j = i + 1;
      for (; j < n; j++) {
        if (sql[j] === '"' && sql[j + 1] === '"') value += sql[j++];
        else if (sql[j] === '"') break;
        else value += sql[j];
      }
      if (j >= n) throw syntaxError(sql, { kind: 'end', value: '', text: '', pos: n });
      tokens.push({ kind: 'quoted', value, text: sql.slice(i, j + 1), pos: i });
      i = j + 1;
    } else if (ch === "'") {
      let value = '';
      let j = i + 1;
      for (; j < n; j++) {
        const c = sql[j];
        if (c === '\\' && j + 1 < n) value += ESCAPES[sql[++j]] ?? sql[j];
        else if (c === "'" && sql[j + 1] === "'") value += sql[j++];
        else if (c === "'") break;
        else value += c;
      }
      if (j >= n) throw syntaxError(sql, { kind: 'end', value: '', text: '', pos: n });
      tokens.push({ kind: 'string', value, text: sql.slice(i, Math.min(j + 1, i + 40)), pos: i });
      i = j + 1;
    } else if (ch === '$' && next === '$') {
      const end = sql.indexOf('$$', i + 2);
      if (end < 0) throw syntaxError(sql, { kind: 'end', value: '', text: '', pos: n });
      tokens.push({ kind: 'string', value: sql.slice(i + 2, end), text: '$$', pos: i });
      i = end + 2;
    } else if (/[0-9]/.test(ch) || (ch === '-' && next !== undefined && /[0-9]/.test(next))) {
      let j = i + 1;
      while (j < n && /[0-9]/.test(sql[j])) j++;
      tokens.push({ kind: 'number', value: sql.slice(i, j), text: sql.slice(i, j), pos: i });
      i = j;
    } else {
      tokens.push({ kind: 'symbol', value: ch, text: ch, pos: i });
      i++;
    }
  }
  tokens.push({ kind: 'end', value: '', text: '', pos: n });
  return tokens;
}

/**
 * Whether a statement is one of the user statements handled here (and not, say, CREATE TABLE). Cheap:
 * reads at most the first five words.
 *
 * @example
 *   isUserStatement('create or replace user svc type = service') // true
 *   isUserStatement('CREATE OR REPLACE TABLE T (A INT)')          // false
 */
export function isUserStatement(sql: string): boolean {
  const words: string[] = [];
  const leading = /\s+|--[^\n]*|\/\/[^\n]*|\/\*[\s\S]*?\*\/|([A-Za-z_][A-Za-z0-9_$]*)/y;
  let m: RegExpExecArray | null;
  while (words.length < 4 && (m = leading.exec(sql)) !== null) if (m[1]) words.push(m[1].toUpperCase());
  const [w1, w2, w3, w4] = words;
  if (w1 === 'ALTER' || w1 === 'DROP' || w1 === 'DESC' || w1 === 'DESCRIBE') return w2 === 'USER';
  if (w1 === 'CREATE') return w2 === 'USER' || (w2 === 'OR' && w3 === 'REPLACE' && w4 === 'USER');
  return false;
}

/**
 * The statement with the values of `PASSWORD = '…'` masked, for anything that keeps statement text
 * (query history): Snowflake does not show passwords in its query history either. Other statements,
 * and user statements without a password, come back unchanged.
 *
 * @example
 *   redactUserStatementSecrets("CREATE USER u PASSWORD = 'hunter2'") // "CREATE USER u PASSWORD = '****'"
 */
export function redactUserStatementSecrets(sql: string): string {
  if (!isUserStatement(sql)) return sql;
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch {
    return sql.replace(/(PASSWORD\s*=\s*)[\s\S]*$/i, "$1'****'"); // unterminated literal: mask to the end
  }
  let out = '';
  let copied = 0;
  for (let k = 2; k < tokens.length; k++) {
    const t = tokens[k];
    if (t.kind === 'string' && tokens[k - 1].value === '=' && tokens[k - 2].value === 'PASSWORD') {
      const end = t.text === '$$' ? sql.indexOf('$$', t.pos + 2) + 2 : endOfQuoted(sql, t.pos);
      out += `${sql.slice(copied, t.pos)}'****'`;
      copied = end;
    }
  }
  return out + sql.slice(copied);
}

/** Index just past the single-quoted literal starting at `start`. */
function endOfQuoted(sql: string, start: number): number {
  for (let j = start + 1; j < sql.length; j++) {
    if (sql[j] === '\\') j++;
    else if (sql[j] === "'" && sql[j + 1] === "'") j++;
    else if (sql[j] === "'") return j + 1;
  }
  return sql.length;
}

/** A recursive-descent reader over one statement's tokens. */
class Parser {
  private i = 0;
  private readonly tokens: Token[];

  constructor(private readonly sql: string) {
    this.tokens = tokenize(sql);
  }

  peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)];
  }

  /** True (and consumed) if the next words are `words`. */
  accept(...words: string[]): boolean {
    for (let k = 0; k < words.length; k++) {
      const t = this.peek(k);
      if (t.kind !== 'word' || t.value !== words[k]) return false;
    }
    this.i += words.length;
    return true;
  }

  expect(...words: string[]): void {
    for (const w of words) {
      if (!this.accept(w)) throw this.unexpected();
    }
  }

  acceptSymbol(symbol: string): boolean {
    const t = this.peek();
    if (t.kind !== 'symbol' || t.value !== symbol) return false;
    this.i++;
    return true;
  }

  /** An object name: an unquoted identifier (upper-cased) or a quoted one (as written). */
  identifier(): string {
    const t = this.peek();
    if (t.kind !== 'word' && t.kind !== 'quoted') throw this.unexpected();
    this.i++;
    return t.value;
  }

  /** The text of a string literal; where `identifierToo`, also an identifier. */
  value(identifierToo: boolean): Token {
    const t = this.peek();
    if (t.kind === 'string' || (identifierToo && (t.kind === 'word' || t.kind === 'quoted'))) {
      this.i++;
      return t;
    }
    throw this.unexpected();
  }

  number(): number {
    const t = this.peek();
    if (t.kind !== 'number') throw this.unexpected();
    this.i++;
    return Number(t.value);
  }

  /** The statement must end here (a trailing `;` is allowed). */
  end(): void {
    this.acceptSymbol(';');
    if (this.peek().kind !== 'end') throw this.unexpected();
  }

  atEnd(): boolean {
    const t = this.peek();
    return t.kind === 'end' || (t.kind === 'symbol' && t.value === ';');
  }

  unexpected(): SnowflakeError {
    return syntaxError(this.sql, this.peek());
  }

  /** `NAME = value [,] NAME = value …` until the end of the statement. */
  properties(): UserProperties {
    const props: UserProperties = {};
    do {
      const nameToken = this.peek();
      const name = nameToken.kind === 'word' ? nameToken.value : '';
      const property = PROPERTIES[name];
      if (!property) throw this.unexpected();
      this.i++;
      if (!this.acceptSymbol('=')) throw this.unexpected();
      const valueToken = this.value(!STRING_PROPERTIES.has(name));
      if (property === 'type') props.type = userType(valueToken);
      else props[property] = valueToken.value;
      this.acceptSymbol(',');
    } while (!this.atEnd());
    return props;
  }

  /** `UNSET NAME [, NAME …]`. */
  propertyNames(): UserProperty[] {
    const names: UserProperty[] = [];
    do {
      const t = this.peek();
      const property = t.kind === 'word' ? PROPERTIES[t.value] : undefined;
      if (!property) throw this.unexpected();
      this.i++;
      names.push(property);
    } while (this.acceptSymbol(','));
    return names;
  }
}

function userType(token: Token): UserType {
  const value = token.value.toUpperCase();
  if (value === 'NULL') return 'PERSON'; // Snowflake: a NULL type behaves as PERSON
  if ((USER_TYPES as readonly string[]).includes(value)) return value as UserType;
  // As Snowflake words it (e.g. "invalid value 'LEGACY_SERVICE' for property 'TYPE'" on new accounts).
  throw new SnowflakeError('001008', `SQL compilation error:\ninvalid value '${token.value}' for property 'TYPE'`, '22023');
}

function rowtype(name: string, nullable = true): RowTypeEntry {
  const length = 16_777_216;
  return { name, database: '', schema: '', table: '', nullable, type: 'text', length, byteLength: length, precision: null, scale: null, collation: null };
}

function ddl(result: EncodedResult): Execution {
  return { result, statementTypeId: STATEMENT_TYPE_ID.ddl };
}

/**
 * Runs user statements for a session against the registry. Wired into `QueryService.runStatement`
 * (see {@link isUserStatement}).
 */
export class UserStatements {
  constructor(private readonly users: UserRegistry) {}

  execute(session: Session, sql: string): Execution {
    const p = new Parser(sql);
    if (p.accept('CREATE')) return this.create(session, p);
    if (p.accept('ALTER', 'USER')) return this.alter(session, p);
    if (p.accept('DROP', 'USER')) return this.drop(session, p);
    if (p.accept('DESCRIBE', 'USER') || p.accept('DESC', 'USER')) return this.describe(session, p);
    throw p.unexpected();
  }

  private requireAdmin(session: Session, object: string): void {
    if (!this.users.isAdmin(session.user)) throw userErrors.insufficientPrivileges(object);
  }

  private create(session: Session, p: Parser): Execution {
    const orReplace = p.accept('OR', 'REPLACE');
    p.expect('USER');
    const ifNotExists = p.accept('IF', 'NOT', 'EXISTS');
    const name = p.identifier();
    const props = p.atEnd() ? {} : p.properties();
    p.end();
    this.requireAdmin(session, "account 'LOCAL'");
    if (orReplace && ifNotExists) {
      // Snowflake refuses the combination; its exact code was not found, so the generic compilation one.
      throw new SnowflakeError('001003', 'SQL compilation error:\nOR REPLACE and IF NOT EXISTS are incompatible.', '42000');
    }
    const outcome = this.users.create(name, props, { orReplace, ifNotExists });
    return ddl(statusResult(outcome === 'exists' ? `${name} already exists, statement succeeded.` : `User ${name} successfully created.`));
  }

  private alter(session: Session, p: Parser): Execution {
    const ifExists = p.accept('IF', 'EXISTS');
    // The user name may be left out before ADD/REMOVE … TOKEN: the current user.
    const tokenVerbNext = (k: number) => (p.peek(k).value === 'ADD' || p.peek(k).value === 'REMOVE') && ['PAT', 'PROGRAMMATIC'].includes(p.peek(k + 1).value);
    const name = tokenVerbNext(0) && p.peek(0).kind === 'word' ? session.user : p.identifier();
    this.requireAdmin(session, `user '${name}'`);
    if (!this.users.get(name)) {
      if (ifExists) return ddl(statusResult('Statement executed successfully.'));
      throw userErrors.noSuchUser(name);
    }
    if (p.accept('ADD')) return this.addToken(name, p);
    if (p.accept('REMOVE')) {
      this.tokenKeyword(p);
      const token = p.identifier();
      p.end();
      this.users.removeToken(name, token);
      return ddl(statusResult('Statement executed successfully.'));
    }
    if (p.accept('SET')) {
      const set = p.properties();
      p.end();
      this.users.alter(name, { set });
    } else if (p.accept('UNSET')) {
      const unset = p.propertyNames();
      p.end();
      this.users.alter(name, { unset });
    } else {
      throw p.unexpected();
    }
    return ddl(statusResult('Statement executed successfully.'));
  }

  private tokenKeyword(p: Parser): void {
    if (!p.accept('PAT')) p.expect('PROGRAMMATIC', 'ACCESS', 'TOKEN');
  }

  private addToken(owner: string, p: Parser): Execution {
    this.tokenKeyword(p);
    const ifNotExists = p.accept('IF', 'NOT', 'EXISTS');
    const tokenName = p.identifier();
    let roleRestriction: string | undefined;
    let days = DEFAULT_TOKEN_DAYS;
    let comment: string | undefined;
    while (!p.atEnd()) {
      if (p.accept('ROLE_RESTRICTION')) {
        if (!p.acceptSymbol('=')) throw p.unexpected();
        const t = p.value(true);
        roleRestriction = t.kind === 'string' ? t.value.toUpperCase() : t.value;
      } else if (p.accept('DAYS_TO_EXPIRY')) {
        if (!p.acceptSymbol('=')) throw p.unexpected();
        days = p.number();
        if (!Number.isInteger(days) || days < 1 || days > MAX_TOKEN_DAYS) throw userErrors.invalidValue(String(days), 'DAYS_TO_EXPIRY');
      } else if (p.accept('MINS_TO_BYPASS_NETWORK_POLICY_REQUIREMENT')) {
        // Accepted and ignored: the local warehouse has no network policies to bypass.
        if (!p.acceptSymbol('=')) throw p.unexpected();
        p.number();
      } else if (p.accept('COMMENT')) {
        if (!p.acceptSymbol('=')) throw p.unexpected();
        comment = p.value(false).value;
      } else {
        throw p.unexpected();
      }
      p.acceptSymbol(',');
    }
    p.end();
    const secret = this.users.addToken(owner, tokenName, { ttlMs: days * DAY_MS, roleRestriction, comment, ifNotExists });
    if (secret === undefined) return ddl(statusResult(`${tokenName} already exists, statement succeeded.`));
    // Snowflake returns the secret once, in a one-row result with these two lower-case columns.
    return ddl({ rowtype: [rowtype('token_name', false), rowtype('token_secret', false)], rowset: [[tokenName, secret]] });
  }

  private drop(session: Session, p: Parser): Execution {
    const ifExists = p.accept('IF', 'EXISTS');
    const name = p.identifier();
    p.end();
    this.requireAdmin(session, `user '${name}'`);
    if (this.users.drop(name)) return ddl(statusResult(`${name} successfully dropped.`));
    if (ifExists) return ddl(statusResult(`Drop statement executed successfully (${name} already dropped).`));
    throw userErrors.noSuchUser(name);
  }

  /** `DESC USER`: Snowflake's property/value/default/description rows, for the properties kept here. */
  private describe(session: Session, p: Parser): Execution {
    const name = p.identifier();
    p.end();
    if (name !== session.user) this.requireAdmin(session, `user '${name}'`);
    const user = this.users.get(name);
    if (!user) throw userErrors.noSuchUser(name);
    const rows: [string, string | undefined, string | undefined][] = [
      ['NAME', user.name, undefined],
      ['TYPE', user.type, 'PERSON'],
      ['HAS_PASSWORD', String(user.password !== undefined), 'false'],
      ['DEFAULT_WAREHOUSE', user.defaultWarehouse, undefined],
      ['DEFAULT_NAMESPACE', user.defaultNamespace, undefined],
      ['DEFAULT_ROLE', user.defaultRole, undefined],
      ['RSA_PUBLIC_KEY', user.rsaPublicKey?.body, undefined],
      ['RSA_PUBLIC_KEY_FP', user.rsaPublicKey?.fingerprint, undefined],
      ['RSA_PUBLIC_KEY_2', user.rsaPublicKey2?.body, undefined],
      ['RSA_PUBLIC_KEY_2_FP', user.rsaPublicKey2?.fingerprint, undefined],
      ['COMMENT', user.comment, undefined],
    ];
    return {
      result: {
        rowtype: [rowtype('property', false), rowtype('value'), rowtype('default'), rowtype('description')],
        rowset: rows.map(([property, value, dflt]) => [property, value ?? 'null', dflt ?? 'null', null]),
      },
      statementTypeId: STATEMENT_TYPE_ID.select,
    };
  }
}
