import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.join(__dirname, '..');
const NODE_VERSION = readFileSync(path.join(ROOT, '.node-version'), 'utf8').trim();

/** A PATH holding only the named tools (symlinks to the real ones), to run a script as on a bare machine. */
function barePath(dir: string, tools: Record<string, string>): string {
  for (const [name, target] of Object.entries(tools)) symlinkSync(target, path.join(dir, name));
  return dir;
}

const which = (tool: string) => spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();

describe('scripts/node24: the project runs on the Node release in .node-version', () => {
  it('runs a command on Node 24, whatever node the machine has', () => {
    const r = spawnSync(path.join(ROOT, 'scripts', 'node24'), ['node', '-p', 'process.versions.node'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(Number(r.stdout.trim().split('.')[0])).toBeGreaterThanOrEqual(Number(NODE_VERSION.split('.')[0]));
  });

  it('--path prints a line a shell can eval', () => {
    const r = spawnSync(path.join(ROOT, 'scripts', 'node24'), ['--path'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^(export PATH=".+\/bin:\$PATH"|:)$/);
  });
});

describe('scripts/test-prereqs: npm test brings what it needs or says what is missing, in one line', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-prereqs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('on a machine without redis-server, chromium, openssl, promtool and apt-get: one line naming them and the install command (Debian package names), exit 1', () => {
    const node24 = spawnSync(path.join(ROOT, 'scripts', 'node24'), ['node', '-p', 'process.execPath'], { encoding: 'utf8' }).stdout.trim();
    const bin = barePath(dir, { node: node24, cut: which('cut'), id: which('id'), dirname: which('dirname'), bash: which('bash') });
    const r = spawnSync(which('bash'), [path.join(ROOT, 'scripts', 'test-prereqs')], { encoding: 'utf8', env: { PATH: bin } });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^npm test needs redis-server chromium openssl promtool: install with `sudo apt-get install -y redis-server chromium openssl prometheus`/,
    );
    expect(lines[0]).toContain('FLEET_SKIP_BROWSER=1');
  });

  it('on an older Node: one line saying how to run on Node 24', () => {
    // A stand-in `node` that reports version 20, as Debian's does.
    writeFileSync(path.join(dir, 'node'), '#!/bin/sh\ncase "$1" in --version) echo v20.19.2;; *) echo 20;; esac\n', { mode: 0o755 });
    const bin = barePath(dir, { cut: which('cut'), id: which('id'), dirname: which('dirname') });
    const r = spawnSync(which('bash'), [path.join(ROOT, 'scripts', 'test-prereqs')], { encoding: 'utf8', env: { PATH: bin } });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('npm test needs Node 24 or newer (this is v20.19.2): run scripts/node24 npm test, or eval "$(scripts/node24 --path)" first');
  });

  it('on this machine (CI installs what is missing): passes', () => {
    const r = spawnSync(path.join(ROOT, 'scripts', 'node24'), [path.join(ROOT, 'scripts', 'test-prereqs')], { encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  });
});
