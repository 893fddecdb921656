/**
 * Reads JSON the way Snowflake's PARSE_JSON does, which is laxer than the standard: unquoted and
 * single-quoted keys and strings, a leading `+`, and the non-JSON values `NaN`, `Infinity`,
 * `-Infinity` and `undefined`. Returns compact JSON text; the non-JSON values are written as is, which
 * is what Snowflake sends for them and what snowflake-sdk reads back (it falls back to evaluating
 * variants that JSON.parse refuses).
 *
 * @example normalizeRelaxedJson("{a : 1, b : [1, -Infinity, undefined]}") // '{"a":1,"b":[1,-Infinity,undefined]}'
 * @throws SyntaxError for text that is not even relaxed JSON.
 */
export function normalizeRelaxedJson(text: string): string {
  const p = new RelaxedJsonReader(text);
  p.space();
  const value = p.value();
  p.space();
  if (!p.atEnd()) p.fail('unexpected text after the value');
  return value;
}

const BARE_WORDS: Record<string, string> = {
  true: 'true',
  false: 'false',
  null: 'null',
  NaN: 'NaN',
  Infinity: 'Infinity',
  undefined: 'undefined',
};

class RelaxedJsonReader {
  private i = 0;
  constructor(private readonly s: string) {}

  atEnd(): boolean {
    return this.i >= this.s.length;
  }

  fail(why: string): never {
    throw new SyntaxError(`Error parsing JSON: ${why}, pos ${this.i + 1}`);
  }

  space(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }

  value(): string {
    const ch = this.s[this.i];
    if (ch === '{') return this.object();
    if (ch === '[') return this.array();
    if (ch === '"' || ch === "'") return JSON.stringify(this.quoted());
    if (ch === '-' || ch === '+' || ch === '.' || (ch >= '0' && ch <= '9')) return this.number();
    const word = this.word();
    if (word in BARE_WORDS) return BARE_WORDS[word];
    if (word === '') this.fail(ch === undefined ? 'unexpected end of input' : `unexpected character '${ch}'`);
    // Snowflake reads any other bare word as a string.
    return JSON.stringify(word);
  }

  private object(): string {
    this.i++; // {
    const entries: string[] = [];
    this.space();
    if (this.s[this.i] === '}') {
      this.i++;
      return '{}';
    }
    for (;;) {
      this.space();
      const ch = this.s[this.i];
      const key = ch === '"' || ch === "'" ? this.quoted() : this.word();
      if (key === '') this.fail('missing object key');
      this.space();
      if (this.s[this.i] !== ':') this.fail("expected ':'");
      this.i++;
      this.space();
      entries.push(`${JSON.stringify(key)}:${this.value()}`);
      this.space();
      if (this.s[this.i] === ',') {
        this.i++;
        continue;
      }
      if (this.s[this.i] === '}') {
        this.i++;
        return `{${entries.join(',')}}`;
      }
      this.fail("expected ',' or '}'");
    }
  }

  private array(): string {
    this.i++; // [
    const items: string[] = [];
    this.space();
    if (this.s[this.i] === ']') {
      this.i++;
      return '[]';
    }
    for (;;) {
      this.space();
      items.push(this.value());
      this.space();
      if (this.s[this.i] === ',') {
        this.i++;
        continue;
      }
      if (this.s[this.i] === ']') {
        this.i++;
        return `[${items.join(',')}]`;
      }
      this.fail("expected ',' or ']'");
    }
  }

  private quoted(): string {
    const quote = this.s[this.i++];
    let out = '';
    while (this.i < this.s.length && this.s[this.i] !== quote) {
      const ch = this.s[this.i++];
      if (ch !== '\\') {
        out += ch;
        continue;
      }
      const esc = this.s[this.i++];
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '/': '/', '\\': '\\', '"': '"', "'": "'" };
      if (esc === 'u') {
        out += String.fromCharCode(parseInt(this.s.slice(this.i, this.i + 4), 16));
        this.i += 4;
      } else out += simple[esc] ?? esc;
    }
    if (this.s[this.i] !== quote) this.fail('unterminated string');
    this.i++;
    return out;
  }

  private number(): string {
    const m = /^[+-]?(Infinity|NaN|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)/.exec(this.s.slice(this.i));
    if (!m) this.fail('bad number');
    this.i += m[0].length;
    let text = m[0].startsWith('+') ? m[0].slice(1) : m[0];
    if (text.startsWith('.')) text = `0${text}`;
    if (text.startsWith('-.')) text = `-0${text.slice(1)}`;
    if (text.endsWith('.')) text = text.slice(0, -1);
    return text;
  }

  private word(): string {
    const m = /^[A-Za-z_$][\w$]*/.exec(this.s.slice(this.i));
    if (!m) return '';
    this.i += m[0].length;
    return m[0];
  }
}
