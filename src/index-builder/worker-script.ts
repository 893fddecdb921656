import { existsSync } from 'node:fs';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread from a TypeScript module of this package, whether we run compiled or not.
 *
 * - Compiled (`dist/**`): the sibling `<name>.js` exists and is started directly.
 * - From source (jest with ts-jest, ts-node): only `<name>.ts` exists and ts-jest does not reach into
 *   worker threads. The thread then starts from a small inline CommonJS bootstrap (`eval: true`) that
 *   registers a `.ts` require hook built on `typescript.transpileModule` (transpile only, no type
 *   check: `isolatedModules` is on, so per-file transpiling is exact), then requires the `.ts` entry.
 *   Its imports (`./namespaced-index`, ...) resolve to `.ts` through the same hook; packages load as usual.
 *
 * Keeping the bootstrap inline (not a `.js` file beside the sources) means `tsc` needs no `allowJs` and
 * nothing extra has to be copied into `dist`. `typescript` is a dev dependency: only the source path needs it.
 *
 * @param modulePath absolute path without extension, e.g. `join(__dirname, 'index-worker')`
 */
export function startWorkerScript(modulePath: string, options: WorkerOptions = {}): Worker {
  if (existsSync(`${modulePath}.js`)) return new Worker(`${modulePath}.js`, options);
  const ts = `${modulePath}.ts`;
  if (!existsSync(ts)) throw new Error(`worker script not found: neither ${modulePath}.js nor ${ts} exists`);
  return new Worker(tsBootstrap(ts), { ...options, eval: true });
}

/**
 * CommonJS source run by the thread when only the `.ts` entry exists. Transpiled output is cached in
 * `<tmpdir>/fleet-ts-threads/` by content hash, so only the first thread pays for loading `typescript`.
 */
export function tsBootstrap(entry: string): string {
  return `
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const entry = ${JSON.stringify(entry)};
if (!require.extensions['.ts']) {
  const cacheDir = path.join(os.tmpdir(), 'fleet-ts-threads');
  let ts;
  const transpile = (source, filename) => {
    ts ??= require(require.resolve('typescript', { paths: [path.dirname(entry)] }));
    return ts.transpileModule(source, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, inlineSourceMap: true },
    }).outputText;
  };
  require.extensions['.ts'] = function (module, filename) {
    const source = fs.readFileSync(filename, 'utf8');
    const cached = path.join(cacheDir, crypto.createHash('sha256').update(filename).update('|').update(source).digest('hex') + '.js');
    let js;
    try {
      js = fs.readFileSync(cached, 'utf8');
    } catch {
      js = transpile(source, filename);
      try {
        fs.mkdirSync(cacheDir, { recursive: true });
        const tmp = cached + '.' + process.pid + '.' + Math.random().toString(36).slice(2);
        fs.writeFileSync(tmp, js);
        fs.renameSync(tmp, cached);
      } catch {}
    }
    module._compile(js, filename);
  };
}
require(entry);
`;
}
