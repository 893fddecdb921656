import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { LOCAL_SNOWFLAKE_MISSING } from '../src/app/local-snowflake';
import { freePort } from '../src/app/redis-server';
import { WORKER_ROLES } from '../src/app/roles';
import { sourceFiles } from './helpers/imports';
import { type Launched, launch } from './helpers/processes';
import { testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');

/**
 * The production image's dependency tree, installed for real: the runtime stage's `npm ci` from
 * ops/Dockerfile, run on the lock file in a scratch folder (the workspace's manifest copied too, so that
 * npm could install it if the command let it), then the built dist/ and bin/ beside it, as the image has
 * them. The roles must start there; the local warehouse (local-snowflake, DuckDB inside) must not be
 * there, and the commands that need it must say so in one line.
 */

/** A stage's install command, as written in ops/Dockerfile (without the cache cleanup). */
function installCommand(stage: string): string[] {
  const dockerfile = readFileSync(path.join(ROOT, 'ops', 'Dockerfile'), 'utf8').replace(/\\\r?\n/g, ' ');
  const stages = dockerfile.split(/\nFROM\s+/).slice(1);
  const body = stages.find((s) => new RegExp(`^\\S+\\s+AS\\s+${stage}\\s*\\n`, 'i').test(s));
  const line = body?.split('\n').find((l) => /^RUN\s+npm ci\b/.test(l.trim()));
  if (!line) throw new Error(`ops/Dockerfile: no \`RUN npm ci\` in the ${stage} stage`);
  return line
    .trim()
    .replace(/^RUN\s+/, '')
    .split('&&')[0]
    .trim()
    .split(/\s+/);
}

/** A scratch folder with the manifests the image copies before its `npm ci`, and that command run in it. */
async function installLikeStage(stage: string): Promise<{ dir: string; command: string[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `fleet-${stage}-tree-`));
  try {
    const command = await install(dir, stage);
    cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
    cpSync(path.join(ROOT, 'bin'), path.join(dir, 'bin'), { recursive: true });
    return { dir, command };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function install(dir: string, stage: string): Promise<string[]> {
  for (const f of ['package.json', 'package-lock.json']) cpSync(path.join(ROOT, f), path.join(dir, f));
  for (const pkg of readdirSync(path.join(ROOT, 'packages'))) {
    mkdirSync(path.join(dir, 'packages', pkg), { recursive: true });
    cpSync(path.join(ROOT, 'packages', pkg, 'package.json'), path.join(dir, 'packages', pkg, 'package.json'));
  }
  const command = installCommand(stage);
  expect(command.slice(0, 2)).toEqual(['npm', 'ci']);
  await run(command[0], command.slice(1), { cwd: dir, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
  return command;
}

/** Every package folder under `dir`/node_modules, nested ones included (`@scope/name` or `name`). */
function installedPackages(dir: string): string[] {
  const out: string[] = [];
  const walk = (modules: string) => {
    if (!existsSync(modules)) return;
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue;
      const names = entry.startsWith('@') ? readdirSync(path.join(modules, entry)).map((n) => `${entry}/${n}`) : [entry];
      for (const name of names) {
        out.push(name);
        walk(path.join(modules, name, 'node_modules'));
      }
    }
  };
  walk(path.join(dir, 'node_modules'));
  return out;
}

// npm runs on the node running these tests (Node 24), as in the image.
const env = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` };

/** `node bin/fleet.js …args` in the installed tree `dir`, as the image runs it. */
function fleetIn(dir: string, args: string[], extraEnv: Record<string, string>): Launched {
  return launch(process.execPath, ['bin/fleet.js', ...args], { cwd: dir, env: { ...env, ...extraEnv }, name: `fleet ${args.join(' ')}` });
}

/** Polls `url` until it answers 200; fails with the process's output if it exits first or 30 s pass. */
async function answersOk(url: string, fleet: Launched): Promise<void> {
  await waitUntil(
    `${url} to answer 200`,
    async () => {
      if (fleet.stopped()) throw new Error(`the process exited (${await fleet.exited}) before ${url} answered`);
      return (
        (await fetch(url).then(
          (r) => r.status,
          () => 0,
        )) === 200
      );
    },
    { timeoutMs: 30_000, everyMs: 100 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${fleet.output()}`);
  });
}

describe('the production dependency tree (the image: npm ci --omit=dev)', () => {
  let dir: string;
  let command: string[];

  beforeAll(async () => {
    ({ dir, command } = await installLikeStage('runtime'));
  }, 300_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has neither DuckDB nor local-snowflake, though the workspace folder was there to install', () => {
    expect(command).toEqual(expect.arrayContaining(['--omit=dev', '--workspaces=false']));
    expect(existsSync(path.join(dir, 'packages', 'local-snowflake', 'package.json'))).toBe(true);
    const installed = installedPackages(dir);
    expect(installed.length).toBeGreaterThan(50);
    expect(installed).toEqual(expect.arrayContaining(['bullmq', 'snowflake-sdk', 'usearch', 'fastify']));
    expect(installed.filter((n) => n === 'local-snowflake' || n.startsWith('@duckdb/'))).toEqual([]);
  });

  it('loads every module the roles are built from (dist/, benchmarks and the CLI entry aside)', async () => {
    const modules = sourceFiles(path.join(ROOT, 'src'))
      .map((f) => path.relative(path.join(ROOT, 'src'), f))
      .filter((f) => !f.startsWith(`bench${path.sep}`) && f !== path.join('cli', 'main.ts') && !f.endsWith('.d.ts'))
      // A worker thread's entry refuses to load on the main thread; its dependencies are loaded by the others.
      .filter((f) => f !== path.join('index-builder', 'index-worker.ts'))
      .map((f) => `./dist/${f.replace(/\.ts$/, '.js').split(path.sep).join('/')}`);
    expect(modules.length).toBeGreaterThan(50);
    const script = `for (const m of ${JSON.stringify(modules)}) require(m); process.stdout.write('loaded ' + ${modules.length});`;
    const { stdout } = await run(process.execPath, ['-e', script], {
      cwd: dir,
      env: { ...env, SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true' },
      timeout: 60_000,
    });
    expect(stdout).toBe(`loaded ${modules.length}`);
  });

  it('starts every role and the API there; each serves /healthz and stops on SIGTERM', async () => {
    const closedPort = await freePort(); // nothing listens: a warehouse that is not there
    const prefix = uniquePrefix('prodtree');
    const commands: string[][] = [...WORKER_ROLES.map((role) => ['worker', '--role', role]), ['api']];
    await Promise.all(
      commands.map(async (args) => {
        const port = await freePort();
        const fleet = fleetIn(dir, args, {
          NODE_ENV: 'production',
          SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true',
          LOG_LEVEL: 'warn',
          REDIS_URL: testRedisUrl(),
          FLEET_QUEUE_PREFIX: prefix,
          SNOWFLAKE_ACCESS_URL: `http://127.0.0.1:${closedPort}`,
          SNOWFLAKE_ACCOUNT: '',
          POOL_MIN: '0',
          HEALTH_PORT: String(port),
          PORT: String(port),
          FLEET_API_TOKENS: 'production-tree-test-token-0001',
          INDEX_SNAPSHOT_DIR: path.join(dir, `.fleet-${args.join('-')}`),
        });
        try {
          await answersOk(`http://127.0.0.1:${port}/healthz`, fleet);
          expect({ args, output: fleet.output() }).toEqual({ args, output: expect.not.stringMatching(/Cannot find module|MODULE_NOT_FOUND/) });
        } finally {
          fleet.child.kill('SIGTERM'); // by this child's pid
        }
        expect({ args, code: await fleet.exited }).toEqual({ args, code: 0 });
      }),
    );
  }, 120_000);

  it('`fleet up`, `fleet warehouse` and `fleet bench` say in one line that the local warehouse is a development dependency', async () => {
    const fleet = (args: string[]) =>
      fleetIn(dir, args, {
        NODE_ENV: 'production',
        SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true',
        REDIS_URL: testRedisUrl(),
        SNOWFLAKE_ACCOUNT: '',
        SNOWFLAKE_ACCESS_URL: '',
      }).finished(30_000);
    for (const args of [['up'], ['warehouse', '--port', '0'], ['bench', 'pool', '--quick']]) {
      const r = await fleet(args);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 1, stderr: `fleet: ${LOCAL_SNOWFLAKE_MISSING}\n` });
    }
  }, 60_000);
});

describe("the dev image (ops/Dockerfile --target dev, the dev overlay's warehouse): the fleet plus the local warehouse", () => {
  let dir: string | undefined;

  beforeAll(async () => {
    ({ dir } = await installLikeStage('dev'));
    for (const part of ['dist', 'bin']) {
      cpSync(path.join(ROOT, 'packages', 'local-snowflake', part), path.join(dir, 'packages', 'local-snowflake', part), { recursive: true });
    }
  }, 300_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has local-snowflake and DuckDB; `fleet warehouse` serves there, configured by LOCAL_WAREHOUSE_*, and stops on SIGTERM', async () => {
    expect(installedPackages(dir!)).toEqual(expect.arrayContaining(['local-snowflake', '@duckdb/node-api']));
    const port = await freePort();
    const warehouse = fleetIn(dir!, ['warehouse', '--port', String(port)], {
      NODE_ENV: 'production',
      SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true',
      LOCAL_WAREHOUSE_DEALS: '25',
      LOCAL_WAREHOUSE_LOGIN_LATENCY_MS: '0',
    });
    try {
      await answersOk(`http://127.0.0.1:${port}/fleet/stats`, warehouse);
      expect(warehouse.output()).toContain('25 deals');
    } finally {
      warehouse.child.kill('SIGTERM'); // by this child's pid
    }
    expect(await warehouse.exited).toBe(0);
  });
});
