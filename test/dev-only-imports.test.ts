import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCAL_SNOWFLAKE_MISSING } from '../src/app/local-snowflake';
import { importsOf, sourceFiles } from './helpers/imports';
import { launch, launchFleet } from './helpers/processes';
import { testRedisUrl } from './helpers/redis';

/**
 * What production does not install stays out of what production loads: the benchmarks (src/bench) and the
 * local warehouse (the `local-snowflake` dev dependency, DuckDB inside, absent from the image) are reached
 * only by the commands that need them. Checked by running the built fleet with those packages made
 * unfindable (test/helpers/hide-dev-dependencies.js), in seconds; test/production-tree.test.ts checks the
 * same in a real `npm ci --omit=dev` tree (minutes, not in `npm run test:fast`).
 */
const ROOT = path.join(__dirname, '..');
const HIDE = path.join(__dirname, 'helpers', 'hide-dev-dependencies.js');
/** The one module that loads local-snowflake (and says what to do when it is missing). */
const LOADER = path.join(ROOT, 'dist', 'app', 'local-snowflake.js');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-dev-only-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Environment of a process without the development dependencies; `log` collects who asked for them. */
function withoutDevDependencies(log: string, hideBench: boolean): Record<string, string> {
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${HIDE}`.trim(),
    FLEET_HIDE_BENCH: hideBench ? '1' : '',
    FLEET_HIDDEN_REQUIRES_LOG: log,
    SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true',
  };
}

/** `<request> <- <requiring file>` lines the hook wrote (none: nobody asked). */
function asked(log: string): string[] {
  try {
    return readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.replace(`${ROOT}${path.sep}`, ''));
  } catch {
    return [];
  }
}

describe('without the benchmarks and the local warehouse (as in the production image)', () => {
  it('every module the roles are built from loads, and none asks for them', async () => {
    const modules = sourceFiles(path.join(ROOT, 'src'))
      .map((f) => path.relative(path.join(ROOT, 'src'), f))
      .filter((f) => !f.startsWith(`bench${path.sep}`) && !f.endsWith('.d.ts'))
      // The CLI entry runs the program when loaded (the next test runs it); a worker thread's entry refuses
      // the main thread (its dependencies are loaded by the others).
      .filter((f) => f !== path.join('cli', 'main.ts') && f !== path.join('index-builder', 'index-worker.ts'))
      .map((f) => `./dist/${f.replace(/\.ts$/, '.js').split(path.sep).join('/')}`);
    expect(modules.length).toBeGreaterThan(50);
    const log = path.join(dir, 'modules.log');
    const script = `for (const m of ${JSON.stringify(modules)}) require(m); process.stdout.write('loaded ' + ${modules.length});`;
    const run = await launch(process.execPath, ['-e', script], { cwd: ROOT, env: withoutDevDependencies(log, true) }).finished(60_000);
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr.split('\n').slice(0, 8).join('\n') }).toEqual({
      code: 0,
      stdout: `loaded ${modules.length}`,
      stderr: '',
    });
    expect(asked(log)).toEqual([]);
  });

  it('the CLI starts and lists its commands', async () => {
    const log = path.join(dir, 'help.log');
    const help = await launchFleet(['--help'], { env: withoutDevDependencies(log, true) }).finished(30_000);
    expect({ code: help.code, stderr: help.stderr }).toEqual({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^\s+worker \[options\]/m);
    expect(asked(log)).toEqual([]);
  });

  it('`fleet up`, `fleet warehouse` and `fleet bench` say in one line that the local warehouse is a development dependency; only its loader asked for it', async () => {
    const commands = [['up'], ['warehouse', '--port', '0'], ['bench', 'pool', '--quick']];
    const runs = await Promise.all(
      commands.map(async (args) => {
        const log = path.join(dir, `${args[0]}.log`);
        const env = { ...withoutDevDependencies(log, false), REDIS_URL: testRedisUrl(), SNOWFLAKE_ACCOUNT: '', SNOWFLAKE_ACCESS_URL: '', LOG_LEVEL: 'warn' };
        const r = await launchFleet(args, { env }).finished(30_000);
        return { args, code: r.code, stderr: r.stderr, asked: asked(log) };
      }),
    );
    const loader = `local-snowflake <- ${path.relative(ROOT, LOADER)}`;
    expect(runs).toEqual(commands.map((args) => ({ args, code: 1, stderr: `fleet: ${LOCAL_SNOWFLAKE_MISSING}\n`, asked: [loader] })));
  });
});

describe('the import scan (test/helpers/imports.ts; ops-dockerfile.test.ts checks the image installs what src/ imports with it)', () => {
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
