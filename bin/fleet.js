#!/usr/bin/env node

// The CLI is compiled TypeScript; `npm ci` builds it through the `prepare` script.
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('fleet: dist/ is missing; run `npm run build` (npm ci does this for you)\n');
  process.exit(1);
}
// `bench coalesce` and `bench fairness` measure the embeddings worker, so they run under the V8 heap setting
// the embeddings Deployment sets in NODE_OPTIONS (a 64 MB young generation, ops/k8s/base/embeddings.yaml). The
// flag only takes effect at start-up, hence one child process; any flag the caller gave wins. Other benchmarks
// measure roles that keep V8's default.
const SEMI_SPACE = '--max-semi-space-size';
if (
  process.argv[2] === 'bench' &&
  ['coalesce', 'fairness'].includes(process.argv[3]) &&
  ![...process.execArgv, process.env.NODE_OPTIONS || ''].some((a) => a.includes(SEMI_SPACE))
) {
  const { spawn } = require('node:child_process');
  const { EMBEDDINGS_NODE_OPTIONS } = require(path.join(__dirname, '..', 'dist', 'config', 'node-options.js'));
  const child = spawn(process.execPath, [...process.execArgv, EMBEDDINGS_NODE_OPTIONS, __filename, ...process.argv.slice(2)], { stdio: 'inherit' });
  // A signal sent to this process alone (timeout(1), a supervisor) must stop the run, not orphan it.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => {
    process.stderr.write(`fleet: could not start the benchmark: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (require('node:os').constants.signals[signal] ?? 0) : 1)));
} else {
  require(entry);
}
