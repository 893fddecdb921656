/**
 * `node --require test/helpers/hide-dev-dependencies.js …`: the process cannot find the development
 * dependencies, as in the production image (`npm ci --omit=dev`): `local-snowflake` and DuckDB fail with
 * MODULE_NOT_FOUND; with FLEET_HIDE_BENCH=1 the benchmarks (dist/bench) do too. With
 * FLEET_HIDDEN_REQUIRES_LOG=<file>, each refused request is appended to that file with the module that
 * asked (`<request> <- <file>`), so a test can say who reached for them.
 *
 * test/dev-only-imports.test.ts runs the fleet this way; test/production-tree.test.ts installs the real tree.
 */
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');

const DEV_ONLY = /^(local-snowflake|@duckdb\/)(\/|$)/;
const BENCH = path.join(__dirname, '..', '..', 'dist', 'bench') + path.sep;
const resolveFilename = Module._resolveFilename;

Module._resolveFilename = function resolveWithoutDevDependencies(request, parent, ...rest) {
  if (DEV_ONLY.test(request)) throw refused(request, parent);
  const file = resolveFilename.call(this, request, parent, ...rest);
  if (process.env.FLEET_HIDE_BENCH === '1' && file.startsWith(BENCH)) throw refused(request, parent);
  return file;
};

function refused(request, parent) {
  const from = parent?.filename || '<none>';
  if (process.env.FLEET_HIDDEN_REQUIRES_LOG) fs.appendFileSync(process.env.FLEET_HIDDEN_REQUIRES_LOG, `${request} <- ${from}\n`);
  // Node's own wording and code: what the fleet's loader (src/app/local-snowflake.ts) recognises.
  return Object.assign(new Error(`Cannot find module '${request}'\nRequire stack:\n- ${from}`), { code: 'MODULE_NOT_FOUND' });
}
