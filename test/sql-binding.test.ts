import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * User text reaches SQL only as a bound parameter. Every `${...}` inside a SQL template in the query files
 * must be one of the fixed pieces below: a placeholder list (its length is the only input-dependent part) or
 * a table/column fragment chosen from a constant map by a closed enum. Anything else fails this test.
 */
const ALLOWED = [
  /^placeholders\([\w.]+(, '[(?, )]+')?\)$/, // `?, ?, ?` (or `(?, ?), …`) for n values
  /^s\.(select|join|order)$/, // collect-source: per-source fragments of a constant map
  /^(text|table)$/, // analyze-texts / read-source-texts: constant map entries picked by a typed enum
  /^INDEX_SOURCES\[source\]\.table$/,
];
const SQL = /\b(SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|VALUES|JOIN)\b/;

function splicedExpressions(source: string): string[] {
  const out: string[] = [];
  for (const tpl of source.match(/`[^`]*`/g) ?? []) {
    if (!SQL.test(tpl)) continue;
    for (const m of tpl.matchAll(/\$\{([^}]*)\}/g)) out.push(m[1].trim());
  }
  return out;
}

describe('security: no user value is spliced into SQL', () => {
  const dir = path.join(__dirname, '..', 'src', 'warehouse', 'queries');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));

  it('finds the query files', () => {
    expect(files).toEqual(expect.arrayContaining(['embed-texts.ts', 'get-deals.ts', 'collect-source.ts', 'analyze-texts.ts']));
  });

  it.each(files)('%s splices only placeholders and constant fragments', (file) => {
    const bad = splicedExpressions(readFileSync(path.join(dir, file), 'utf8')).filter((e) => !ALLOWED.some((re) => re.test(e)));
    expect(bad).toEqual([]);
  });

  it('the detector catches string-built SQL (so the check above can fail)', () => {
    const sample = 'const sql = `SELECT * FROM DEALS WHERE ID = \'${dealId}\'`; const ok = `WHERE ID IN (${placeholders(ids.length)})`;';
    const bad = splicedExpressions(sample).filter((e) => !ALLOWED.some((re) => re.test(e)));
    expect(bad).toEqual(['dealId']);
  });
});
