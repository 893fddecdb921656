import { readFileSync } from 'node:fs';
import path from 'node:path';
import { importsOf, sourceFiles, type ImportRef } from './helpers/imports';

/**
 * What production does not install stays out of what production loads: the benchmarks (src/bench) and the
 * local warehouse (the `local-snowflake` dev dependency, absent from the image) are reached only lazily,
 * from the commands that need them. test/production-tree.test.ts starts the roles without them; this
 * scan says which line broke the rule.
 */
const ROOT = path.join(__dirname, '..');
const SRC = path.join(ROOT, 'src');
const BENCH = path.join(SRC, 'bench');
const CLI = path.join(SRC, 'cli');
/** The one module that loads local-snowflake (and says what to do when it is missing). */
const LOADER = path.join(SRC, 'app', 'local-snowflake.ts');

const rel = (file: string) => path.relative(ROOT, file);
const inside = (file: string, dir: string) => file === dir || file.startsWith(dir + path.sep);

function resolved(file: string, ref: ImportRef): string | undefined {
  return ref.specifier.startsWith('.') ? path.resolve(path.dirname(file), ref.specifier) : undefined;
}

const files = sourceFiles(SRC).map((file) => ({ file, refs: importsOf(readFileSync(file, 'utf8')) }));

describe('src/bench (benchmarks: development only)', () => {
  it('is imported by nothing outside src/cli and src/bench', () => {
    const offenders = files
      .filter(({ file }) => !inside(file, BENCH) && !inside(file, CLI))
      .flatMap(({ file, refs }) => refs.filter((r) => inside(resolved(file, r) ?? '', BENCH)).map((r) => `${rel(file)}: ${r.kind} import of ${r.specifier}`));
    expect(offenders).toEqual([]);
  });

  it('is loaded by the CLI only lazily, in the bench action (no static import)', () => {
    const offenders = files
      .filter(({ file }) => inside(file, CLI))
      .flatMap(({ file, refs }) => refs.filter((r) => r.kind === 'static' && inside(resolved(file, r) ?? '', BENCH)).map((r) => `${rel(file)}: ${r.specifier}`));
    expect(offenders).toEqual([]);
    const lazy = files.filter(({ file }) => inside(file, CLI)).flatMap(({ file, refs }) => refs.filter((r) => r.kind === 'lazy' && inside(resolved(file, r) ?? '', BENCH)));
    expect(lazy.length).toBeGreaterThan(0); // `fleet bench` still reaches it
  });
});

describe('local-snowflake (the local warehouse: a development dependency)', () => {
  it('is never imported statically under src/ (types only), so every module loads without it', () => {
    const offenders = files.flatMap(({ file, refs }) => refs.filter((r) => r.specifier === 'local-snowflake' && r.kind === 'static').map(() => rel(file)));
    expect(offenders).toEqual([]);
  });

  it('is loaded in one place, src/app/local-snowflake.ts, which the commands that need it call', () => {
    const loaders = files.filter(({ refs }) => refs.some((r) => r.specifier === 'local-snowflake' && r.kind === 'lazy')).map(({ file }) => rel(file));
    expect(loaders).toEqual([rel(LOADER)]);
    // Its callers: `fleet up`'s embedded warehouse (src/app), `fleet warehouse` (src/cli) and the benchmarks.
    const callers = files
      .filter(({ file, refs }) => refs.some((r) => r.kind !== 'type' && resolved(file, r) === LOADER.replace(/\.ts$/, '')))
      .map(({ file }) => rel(file))
      .sort();
    expect(callers.every((f) => /^src\/(app|cli|bench)\//.test(f))).toBe(true);
    expect(callers).toEqual(expect.arrayContaining(['src/app/warehouse.ts', 'src/cli/main.ts']));
  });
});

describe('the import scan itself', () => {
  it('tells static, type-only and lazy references apart', () => {
    const code = [
      "import type { A } from 'local-snowflake';",
      "import { type B, type C } from 'local-snowflake';",
      "import { D, type E } from 'pkg-d';",
      "import {\n  F,\n  G,\n} from 'pkg-f';",
      "import 'pkg-side-effect';",
      "export { H } from './h';",
      "export type { I } from './i';",
      "type M = typeof import('local-snowflake');",
      "const m = require('local-snowflake');",
      "const b = await import('../bench');",
    ].join('\n');
    expect(importsOf(code)).toEqual([
      { specifier: 'local-snowflake', kind: 'type' },
      { specifier: 'local-snowflake', kind: 'type' },
      { specifier: 'pkg-d', kind: 'static' },
      { specifier: 'pkg-f', kind: 'static' },
      { specifier: 'pkg-side-effect', kind: 'static' },
      { specifier: './h', kind: 'static' },
      { specifier: './i', kind: 'type' },
      { specifier: 'local-snowflake', kind: 'lazy' },
      { specifier: 'local-snowflake', kind: 'type' },
      { specifier: '../bench', kind: 'lazy' },
    ]);
  });
});
