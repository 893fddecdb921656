#!/usr/bin/env node
/**
 * The judge: the official driver's own integration tests (`test/integration` of
 * snowflakedb/snowflake-connector-nodejs), run unchanged against a freshly started local server.
 *
 *   scripts/node24 npm run build -w local-snowflake
 *   git clone --branch v3.1.0 https://github.com/snowflakedb/snowflake-connector-nodejs /tmp/sf-driver
 *   (cd /tmp/sf-driver && npm install)
 *   scripts/node24 node packages/local-snowflake/scripts/driver-suite.mjs /tmp/sf-driver
 *
 * Options: `--only a.js,b.ts` (these files only), `--jobs N` (files judged at once, default 2),
 * `--verbose` (each failing test and its error), `--out FILE` (every test's outcome as JSON, to diff two
 * runs), `--no-control` (no control run, see below), `--server PATH` (the built `dist/index.js` to judge,
 * default this package's), `--file-timeout-s N` (a file's run is cut after N s, default 600).
 *
 * Each file runs in its own mocha process (`--retries 0`, the driver's own .mocharc otherwise) against
 * its own fresh server (`startLocalWarehouse({ deals: 0, loginLatencyMs: 0 })`, user fleet/fleet,
 * database FLEET, schema PUBLIC), so one file's tables or sessions cannot help or hurt another.
 *
 * What is counted. A test "needs a working server" when it is in an included file (EXCLUDED lists the
 * files left out and why, EXCLUDED_TESTS single tests), is not skipped (`it.skip`), and FAILS in the
 * control run, where the same file runs against a server that refuses every request (login included):
 * a test that passes there (e.g. "connecting with a wrong password fails") shows nothing about the
 * server, so it is reported but not scored. The control outcomes depend on the test file only and are
 * cached in `<driver>/.driver-suite-control.json` (by the file's hash). A test that never ran (its
 * `before` hook failed, mocha crashed, the run was cut) counts as failed, and so does a test with a
 * failed VACUITY_CHECKS check: one known to pass without doing what it tests. The last line printed is
 * the score as JSON.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Files of `test/integration` left out, each with the reason a local server cannot serve it. Every other
 * `test*.js` / `test*.ts` file at the top of `test/integration` is run.
 */
export const EXCLUDED = {
  'testPutGet.js': 'PUT/GET: uploads and downloads files through cloud stages (S3/Azure/GCS)',
  'testPutSmallFiles.js': 'PUT and COPY INTO through a cloud stage',
  'testPutSmkIdStringConversion.ts': 'PUT through a cloud stage (stage master key ids)',
  'testMaxLobSize.js': 'PUT through a cloud stage; and it only runs with RUN_MANUAL_TESTS_ONLY',
  'testManualConnection.js': 'manual tests (browser SSO, MFA, OAuth providers); only with RUN_MANUAL_TESTS_ONLY',
  'testConnectionWithOCSP.js': 'OCSP: certificate revocation checks need TLS and Snowflake’s OCSP responders',
  'testOcsp.js': 'OCSP: certificate revocation checks need TLS and Snowflake’s OCSP responders',
  'testCrl.ts': 'CRL: certificate revocation lists need TLS with real certificates',
  'testProxyExecute.js': 'needs an HTTP proxy between the driver and Snowflake',
  'testLoginRequestBody.ts': 'runs against wiremock (a Java mock server), not against the server under test',
  'testInbandTelemetry.ts': 'runs against wiremock (a Java mock server), not against the server under test',
  'testHttpClient.js': 'talks only to the driver’s own "hang" web server on port 12345, never to Snowflake',
  'testEncrypt.js': 'stage file encryption in the driver alone: no server involved',
  'testConnectionNegative.ts': 'createConnection() option validation in the driver alone: no server involved',
  'testHTAP.ts': 'hybrid tables and the query context cache of Unistore (Snowflake-side storage engine)',
  'testCache.js': 'file permissions of the driver’s credential cache, checked in the driver alone: no server involved',
  'testUtil.js': 'a helper module, no tests',
};

/**
 * Tests of included files left out (by full title, or a prefix of it ending in a space: a whole
 * `describe`), each with the reason, like the files above.
 */
export const EXCLUDED_TESTS = {
  'testConnection.js': {
    'Connection test Failed connection returns sanitized error':
      'connects to some-account.snowflakecomputing.com (no accessUrl): it needs the internet and Snowflake’s own hosts, never the server under test',
  },
  'testExecute.js': {
    'Execute test - variant Variant XML ': 'each test PUTs a file to a cloud stage and loads it with COPY INTO',
    'Execute test - variant Variant JSON ': 'each test PUTs a file to a cloud stage and loads it with COPY INTO',
  },
};

function excludedTest(file, title) {
  return Object.keys(EXCLUDED_TESTS[file] ?? {}).some((t) => (t.endsWith(' ') ? title.startsWith(t) : title === t));
}

/**
 * Tests known to be able to pass without doing what they test, each with a check of the judged server's
 * query history after its file ran; a test whose check fails counts as failed (a vacuous pass).
 */
export const VACUITY_CHECKS = {
  'testCancel.ts': {
    'Test Cancel Query testCancelQuerySimple': {
      why: 'its callback only checks that cancel() did not fail: the long query must really run for the 10 s before the cancel and end ABORTED',
      check: (history) => history.some((e) => /generator/i.test(e.queryText) && e.status === 'ABORTED' && e.durationMs >= 9000),
    },
  },
};

const here = dirname(fileURLToPath(import.meta.url));
/** Longest a control run of one file may take (see judgeFile). */
const CONTROL_CAP_S = 60;

function parseArgs(argv) {
  const opts = { only: undefined, out: undefined, control: true, server: join(here, '..', 'dist', 'index.js'), fileTimeoutS: 600, jobs: 2, verbose: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--only')
      opts.only = value()
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    else if (a === '--out') opts.out = resolve(value());
    else if (a === '--no-control') opts.control = false;
    else if (a === '--server') opts.server = resolve(value());
    else if (a === '--file-timeout-s') opts.fileTimeoutS = Number(value());
    else if (a === '--jobs') opts.jobs = Number(value());
    else if (a === '--verbose') opts.verbose = true;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else rest.push(a);
  }
  if (rest.length !== 1) throw new Error('usage: driver-suite.mjs <driver checkout> [--only a.js,b.ts] [--out FILE] [--no-control] [--server dist/index.js]');
  opts.driver = resolve(rest[0]);
  if (!Number.isFinite(opts.fileTimeoutS) || opts.fileTimeoutS <= 0) throw new Error('--file-timeout-s must be a positive number');
  if (!Number.isInteger(opts.jobs) || opts.jobs < 1) throw new Error('--jobs must be a positive integer');
  return opts;
}

/** A server that refuses everything, login included: what the control run judges against. */
async function startRefusingServer() {
  const http = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          data: { errorCode: '390100', nextAction: 'RETRY_LOGIN' },
          code: '390100',
          message: 'Incorrect username or password was specified.',
          success: false,
        }),
      );
    });
  });
  await new Promise((ok) => http.listen(0, '127.0.0.1', ok));
  return {
    port: http.address().port,
    close: () =>
      new Promise((ok) => {
        http.close(() => ok());
        http.closeAllConnections();
      }),
  };
}

async function startJudgedServer(serverModule) {
  const mod = await import(pathToFileURL(serverModule).href);
  const startLocalWarehouse = mod.startLocalWarehouse ?? mod.default.startLocalWarehouse;
  const wh = await startLocalWarehouse({ port: 0, deals: 0, loginLatencyMs: 0 });
  return { port: wh.port, history: () => wh.queryHistory(), close: () => wh.close() };
}

function driverEnv(port) {
  return {
    ...process.env,
    SNOWFLAKE_TEST_PROTOCOL: 'http',
    SNOWFLAKE_TEST_HOST: '127.0.0.1',
    SNOWFLAKE_TEST_PORT: String(port),
    SNOWFLAKE_TEST_ACCOUNT: 'local',
    SNOWFLAKE_TEST_USER: 'fleet',
    SNOWFLAKE_TEST_PASSWORD: 'fleet',
    SNOWFLAKE_TEST_DATABASE: 'FLEET',
    SNOWFLAKE_TEST_SCHEMA: 'PUBLIC',
    SNOWFLAKE_TEST_WAREHOUSE: 'LOCAL_WH',
    SNOWFLAKE_TEST_ROLE: 'PUBLIC',
    // The driver's .mocharc loads ts-node; type-checking its sources on every run adds ~10 s and judges nothing.
    TS_NODE_TRANSPILE_ONLY: 'true',
  };
}

/**
 * Runs mocha on one file with the `json-stream` reporter, so every test's outcome is known as it
 * happens: a run cut short (by `capS`, or a crash) keeps the outcomes it reached. Resolves to the tests
 * seen passing and failing (by full title), whether it was cut short, and the end of its stderr.
 */
function runMocha(opts, file, port, extraArgs, capS) {
  const mocha = join(opts.driver, 'node_modules', 'mocha', 'bin', 'mocha.js');
  const args = [mocha, '--retries', '0', '--reporter', 'json-stream', ...extraArgs, join('test', 'integration', file)];
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, args, { cwd: opts.driver, env: driverEnv(port), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const passed = [];
    const failed = [];
    const errors = new Map();
    let finished = false;
    let stdout = '';
    const readLines = (final) => {
      const lines = stdout.split('\n');
      stdout = final ? '' : lines.pop();
      for (const line of lines) {
        const at = line.search(/\["(pass|fail|end)",/);
        if (at < 0) continue;
        try {
          const [event, test] = JSON.parse(line.slice(at));
          if (event === 'pass') passed.push(test.fullTitle);
          else if (event === 'fail') {
            failed.push(test.fullTitle);
            if (!errors.has(test.fullTitle)) errors.set(test.fullTitle, String(test.err).slice(0, 300));
          } else if (event === 'end') finished = true;
        } catch {
          // a test's own output on the same line; the outcome is missing, so the test counts as failed
        }
      }
    };
    child.stdout.on('data', (d) => {
      stdout += d;
      readLines(false);
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    let cut = false;
    const timer = setTimeout(() => {
      cut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, capS * 1000);
    child.on('close', () => {
      clearTimeout(timer);
      readLines(true);
      resolveRun({ passed, failed, errors, finished, cut, stderr });
    });
  });
}

/** Full titles of a file's tests, from a dry run: every test and the statically skipped ones (`it.skip`). */
async function listTests(opts, file, work) {
  const output = join(work, `${file}.dry-run.json`);
  const mocha = join(opts.driver, 'node_modules', 'mocha', 'bin', 'mocha.js');
  await new Promise((ok) => {
    const child = spawn(
      process.execPath,
      [mocha, '--dry-run', '--reporter', 'json', '--reporter-option', `output=${output}`, join('test', 'integration', file)],
      {
        cwd: opts.driver,
        env: driverEnv(1),
        stdio: 'ignore',
      },
    );
    child.on('close', ok);
  });
  const report = JSON.parse(readFileSync(output, 'utf8'));
  return { titles: [...report.passes, ...report.failures].map((t) => t.fullTitle), skipped: new Set(report.pending.map((t) => t.fullTitle)) };
}

/**
 * Per-test outcomes of one run, keyed by full title (a repeated title gets `#2`, `#3`…): passed, or
 * failed — which includes never run (a failed `before` hook, a crash, a run cut short). A test reported
 * failing after it passed (an error thrown later in its callbacks) is failed.
 */
function outcomes(run, titles) {
  const keyed = (list) => {
    const seen = new Map();
    return list.map((t) => {
      const n = (seen.get(t) ?? 0) + 1;
      seen.set(t, n);
      return n === 1 ? t : `${t} #${n}`;
    });
  };
  const status = new Map(keyed(titles).map((k) => [k, 'failed']));
  const failed = new Set(keyed(run.failed));
  for (const k of keyed(run.passed)) if (status.has(k) && !failed.has(k)) status.set(k, 'passed');
  return status;
}

function testFiles(opts) {
  const dir = join(opts.driver, 'test', 'integration');
  if (!existsSync(dir)) throw new Error(`${dir} does not exist: give the path of a snowflake-connector-nodejs checkout`);
  if (!existsSync(join(opts.driver, 'node_modules', 'mocha'))) throw new Error(`run \`npm install\` in ${opts.driver} first`);
  const all = readdirSync(dir)
    .filter((f) => /^test.*\.(js|ts)$/.test(f))
    .sort();
  const files = all.filter((f) => !(f in EXCLUDED));
  if (!opts.only) return files;
  for (const f of opts.only) if (!files.includes(f)) throw new Error(`--only: ${f} is not an included file of ${dir}`);
  return opts.only;
}

async function judgeFile(opts, file, work) {
  const { titles, skipped } = await listTests(opts, file, work);
  const run = async (start, mochaArgs, capS) => {
    const server = await start();
    const t0 = Date.now();
    try {
      const outcome = await runMocha(opts, file, server.port, mochaArgs, capS);
      return { ...outcome, history: server.history?.() ?? [], seconds: Math.round((Date.now() - t0) / 1000) };
    } finally {
      await server.close();
    }
  };
  // The control run fails fast or hangs until a test times out (the driver's tests set their own
  // timeouts, up to 10 minutes): a minute is plenty to see which tests pass against a refusing server.
  // Its outcome depends on the driver's test file only, so it is kept in the control cache.
  const fileHash = createHash('sha256')
    .update(readFileSync(join(opts.driver, 'test', 'integration', file)))
    .digest('hex');
  const cached = opts.controlCache[file]?.hash === fileHash ? opts.controlCache[file] : undefined;
  const [judged, control] = await Promise.all([
    run(() => startJudgedServer(opts.server), [], opts.fileTimeoutS),
    opts.control && !cached ? run(startRefusingServer, ['--timeout', '5000'], CONTROL_CAP_S) : undefined,
  ]);
  if (control) opts.controlCache[file] = { hash: fileHash, passed: control.passed, failed: control.failed, seconds: control.seconds };
  const result = outcomes(judged, titles);
  const vacuous = [];
  for (const [title, { check }] of Object.entries(VACUITY_CHECKS[file] ?? {})) {
    if (result.get(title) === 'passed' && !check(judged.history)) {
      result.set(title, 'failed');
      vacuous.push(title);
    }
  }
  const controlRun = control ?? cached;
  const controlResult = opts.control && controlRun ? outcomes(controlRun, titles) : new Map();
  const tests = [];
  for (const [title, status] of result) {
    if (skipped.has(title) || excludedTest(file, title)) continue;
    const needsServer = controlResult.get(title) !== 'passed';
    const error =
      status === 'failed' ? (vacuous.includes(title) ? 'vacuous pass' : (judged.errors.get(title.replace(/ #\d+$/, '')) ?? 'never ran')) : undefined;
    tests.push({ title, status, needsServer, ...(error ? { error } : {}) });
  }
  const counted = tests.filter((t) => t.needsServer);
  return {
    file,
    tests,
    total: tests.length,
    counted: counted.length,
    passed: counted.filter((t) => t.status === 'passed').length,
    passWithoutServer: tests.filter((t) => !t.needsServer).length,
    skipped: skipped.size,
    excludedTests: titles.filter((t) => excludedTest(file, t)).length,
    vacuous,
    seconds: [judged.seconds, control?.seconds],
    note: judged.cut
      ? `cut after ${opts.fileTimeoutS} s`
      : judged.finished
        ? undefined
        : `mocha ended early: ${judged.stderr.trim().split('\n').slice(-2).join(' | ')}`,
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(opts.server)) throw new Error(`${opts.server} is missing: run \`npm run build -w local-snowflake\` first`);
  const driverVersion = JSON.parse(readFileSync(join(opts.driver, 'package.json'), 'utf8')).version;
  const files = testFiles(opts);
  const work = mkdtempSync(join(tmpdir(), 'driver-suite-'));
  const results = [];
  const started = Date.now();
  const controlCachePath = join(opts.driver, '.driver-suite-control.json');
  opts.controlCache = existsSync(controlCachePath) ? JSON.parse(readFileSync(controlCachePath, 'utf8')) : {};
  try {
    const queue = [...files];
    const worker = async () => {
      for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
        const r = await judgeFile(opts, file, work);
        results.push(r);
        process.stderr.write(`… ${file}: ${r.passed} / ${r.counted}\n`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.jobs, files.length) }, worker));
    results.sort((a, b) => a.file.localeCompare(b.file));
    writeFileSync(controlCachePath, JSON.stringify(opts.controlCache));
    for (const r of results) {
      const extra = [
        `${r.seconds.filter((x) => x !== undefined).join('+')} s`,
        r.passWithoutServer ? `${r.passWithoutServer} pass without a server` : '',
        r.skipped ? `${r.skipped} skipped` : '',
        r.excludedTests ? `${r.excludedTests} left out` : '',
        r.vacuous.length ? `${r.vacuous.length} vacuous pass(es) counted as failed` : '',
        r.note ?? '',
      ]
        .filter(Boolean)
        .join('; ');
      console.log(`${r.file.padEnd(36)} ${String(r.passed).padStart(3)} / ${String(r.counted).padEnd(3)} ${extra}`);
      if (opts.verbose)
        for (const t of r.tests) if (t.needsServer && t.status !== 'passed') console.log(`    ✗ ${t.title}: ${t.error.split('\n').slice(0, 6).join(' | ')}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const counted = results.reduce((n, r) => n + r.counted, 0);
  if (opts.out) writeFileSync(opts.out, JSON.stringify({ driverVersion, results }, null, 2));
  const score = {
    driver: `snowflake-sdk ${driverVersion}`,
    passed,
    counted,
    percent: counted ? Math.round((1000 * passed) / counted) / 10 : 0,
    passWithoutServer: results.reduce((n, r) => n + r.passWithoutServer, 0),
    skipped: results.reduce((n, r) => n + r.skipped, 0),
    testsLeftOut: results.reduce((n, r) => n + r.excludedTests, 0),
    vacuous: results.flatMap((r) => r.vacuous.map((t) => `${r.file}: ${t}`)),
    files: results.length,
    excluded: Object.keys(EXCLUDED).filter((f) => existsSync(join(opts.driver, 'test', 'integration', f))),
    seconds: Math.round((Date.now() - started) / 1000),
  };
  console.log(JSON.stringify(score));
}

main().catch((err) => {
  console.error(`driver-suite: ${err.message}`);
  process.exit(2);
});
