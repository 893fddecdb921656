import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { importsOf, packageName, sourceFiles } from './helpers/imports';

const ROOT = path.join(__dirname, '..');
const DOCKERFILE = path.join(ROOT, 'ops', 'Dockerfile');
const DOCKERIGNORE = path.join(ROOT, 'ops', 'dockerignore');
const text = readFileSync(DOCKERFILE, 'utf8');

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped (what the builder sees). */
function instructions(source: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { line: number; text: string } | undefined;
  source.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (pending && line.startsWith('#')) return; // comments inside a continuation are dropped
    const continues = line.endsWith('\\');
    const part = continues ? line.slice(0, -1) : line;
    pending = pending ? { line: pending.line, text: `${pending.text} ${part}` } : { line: i + 1, text: part };
    if (!continues) {
      const m = /^(\S+)\s*(.*)$/.exec(pending.text.trim())!;
      out.push({ line: pending.line, keyword: m[1].toUpperCase(), args: m[2] });
      pending = undefined;
    }
  });
  return out;
}

/** Splits into build stages at each FROM. */
function stages(all: Instruction[]): { from: Instruction; name?: string; body: Instruction[] }[] {
  const out: { from: Instruction; name?: string; body: Instruction[] }[] = [];
  for (const ins of all) {
    if (ins.keyword === 'FROM') out.push({ from: ins, name: /\bAS\s+(\S+)/i.exec(ins.args)?.[1], body: [] });
    else out[out.length - 1]?.body.push(ins);
  }
  return out;
}

/** True when the argument is exec (JSON array) form. */
function execForm(args: string): string[] | undefined {
  try {
    const v = JSON.parse(args) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

const all = instructions(text);
const built = stages(all);
const final = built[built.length - 1];
const args = Object.fromEntries(
  all
    .filter((i) => i.keyword === 'ARG')
    .map((i) => i.args.split('='))
    .map(([k, ...v]) => [k.trim(), v.join('=').trim()]),
);
const resolve = (s: string) => s.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => args[name] ?? `\${${name}}`);

describe('ops/Dockerfile passes a Dockerfile linter', () => {
  // dockerfile-utils: the validator behind the Docker language server (pure JavaScript, offline). Not a
  // dependency of the project yet: when it is not installed this check is skipped, the ones below still run.
  let utils:
    | { validate(content: string, settings?: Record<string, unknown>): { message: string; severity?: number; range: { start: { line: number } } }[] }
    | undefined;
  try {
    utils = require('dockerfile-utils');
  } catch {
    utils = undefined;
  }
  (utils ? it : it.skip)('dockerfile-utils reports no errors and no warnings', () => {
    const problems = utils!.validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });
});

describe('ops/Dockerfile: what linters miss', () => {
  it('is multi-stage: dev dependencies and tsc in a build stage, the runtime copies dist/ from it', () => {
    expect(built.length).toBeGreaterThanOrEqual(2);
    const build = built.find((s) => s.body.some((i) => i.keyword === 'RUN' && /npm run build|tsc/.test(i.args)));
    expect(build?.name).toBeDefined();
    expect(build!.body.some((i) => i.keyword === 'RUN' && /npm ci\b/.test(i.args) && !/--omit=dev/.test(i.args))).toBe(true);
    expect(final.body.some((i) => i.keyword === 'COPY' && i.args.includes(`--from=${build!.name}`) && /\bdist\b/.test(i.args))).toBe(true);
    expect(final.body.some((i) => i.keyword === 'COPY' && /^bin\s/.test(i.args.replace(/--\S+\s+/g, '')))).toBe(true);
  });

  it('installs and builds the workspace package local-snowflake in the build stage (the fleet compiles against its types); the runtime stage has none of it', () => {
    const build = built.find((s) => s.body.some((i) => i.keyword === 'RUN' && /npm run build/.test(i.args)))!;
    const at = (pred: (i: Instruction) => boolean) => build.body.findIndex(pred);
    const install = at((i) => i.keyword === 'RUN' && /npm ci\b/.test(i.args));
    // Its manifest before `npm ci` (so the workspace is linked and its dependencies installed), its sources before the build.
    const manifest = at((i) => i.keyword === 'COPY' && /^packages\/local-snowflake\/package\.json\s/.test(i.args));
    const sources = at((i) => i.keyword === 'COPY' && /^packages\/?\s+\S*packages\/?$/.test(i.args));
    expect(manifest).toBeGreaterThanOrEqual(0);
    expect(manifest).toBeLessThan(install);
    expect(sources).toBeGreaterThan(install);
    expect(sources).toBeLessThan(at((i) => i.keyword === 'RUN' && /npm run build/.test(i.args)));
    // Nothing of packages/ reaches the runtime stage.
    expect(final.body.filter((i) => i.keyword === 'COPY' && /\bpackages\b/.test(i.args))).toEqual([]);
  });

  it("has a `dev` target, the fleet plus local-snowflake, for the dev overlay's `fleet warehouse`; the default (last) target is the production image", () => {
    expect(final.name).toBe('runtime');
    const dev = built.find((s) => s.name === 'dev');
    expect(dev).toBeDefined();
    const body = dev!.body;
    const install = body.findIndex((i) => i.keyword === 'RUN' && /npm ci\b/.test(i.args));
    expect(body[install].args).toMatch(/--omit=dev/);
    expect(body[install].args).not.toMatch(/--workspaces=false|--no-workspaces/); // the workspace package is the point
    expect(body.findIndex((i) => i.keyword === 'COPY' && /^packages\/local-snowflake\/package\.json\s/.test(i.args))).toBeLessThan(install);
    const copies = body.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    for (const wanted of [
      /--from=build\s+\/app\/packages\/local-snowflake\/dist\s/,
      /packages\/local-snowflake\/bin\s/,
      /--from=build\s+\/app\/dist\s/,
      /^bin\s/,
    ]) {
      expect({ wanted: String(wanted), found: copies.some((c) => wanted.test(c)) }).toEqual({ wanted: String(wanted), found: true });
    }
    const user = body.filter((i) => i.keyword === 'USER').pop();
    expect(user?.args.split(':')[0]).toMatch(/^[1-9]\d*$/);
    expect(execForm(body.filter((i) => i.keyword === 'ENTRYPOINT').pop()!.args)).toEqual(['node', 'bin/fleet.js']);

    // The dev overlay's warehouse runs that image; every other workload the production one.
    const { parseAllDocuments } = require('yaml') as typeof import('yaml');
    const images = (file: string) =>
      parseAllDocuments(readFileSync(path.join(ROOT, 'ops', 'k8s', file), 'utf8'))
        .map((d) => d.toJSON() as { kind?: string; spec?: { template?: { spec?: { containers?: { image: string; args?: string[] }[] } } } })
        .flatMap((d) => d?.spec?.template?.spec?.containers ?? []);
    const warehouse = images('overlays/dev/warehouse.yaml').filter((c) => c.args?.[0] === 'warehouse');
    expect(warehouse.map((c) => c.image)).toEqual(['warehouse-fleet:0.1.0-dev']);
    for (const file of ['base/api.yaml', 'base/embeddings.yaml', 'base/deals.yaml', 'base/flows.yaml', 'base/index.yaml', 'base/search.yaml']) {
      for (const c of images(file)) expect({ file, image: c.image }).toEqual({ file, image: expect.not.stringMatching(/-dev$/) });
    }
  });

  it('installs production dependencies only in the runtime stage, without install scripts (no `prepare` build there)', () => {
    const installs = final.body.filter((i) => i.keyword === 'RUN' && /npm (ci|install)\b/.test(i.args));
    expect(installs).toHaveLength(1);
    expect(installs[0].args).toMatch(/npm ci\b/);
    expect(installs[0].args).toMatch(/--omit=dev/);
    expect(installs[0].args).toMatch(/--ignore-scripts/);
    // npm installs workspace packages (local-snowflake and its DuckDB) even under --omit=dev when their
    // folder exists; --workspaces=false leaves them out (test/production-tree.test.ts runs this command).
    expect(installs[0].args).toMatch(/--workspaces=false/);
  });

  it('pins its base images (a version tag, never latest)', () => {
    for (const s of built) {
      const image = resolve(s.from.args.split(/\s+/)[0]);
      expect(image).toMatch(/^[\w./-]+:(\d+\.\d+\.\d+)[\w.-]*(@sha256:[0-9a-f]{64})?$|@sha256:[0-9a-f]{64}$/);
    }
  });

  it('builds on the Node release the project runs and tests on (.node-version, the one place it is written)', () => {
    const nodeVersion = readFileSync(path.join(ROOT, '.node-version'), 'utf8').trim();
    for (const s of built) expect(resolve(s.from.args.split(/\s+/)[0])).toBe(`node:${nodeVersion}-bookworm-slim`);
    const engines = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toMatch(new RegExp(`^>=${nodeVersion.split('.')[0]}\\.`));
  });

  it('runs as a non-root user, by number (so Kubernetes runAsNonRoot can check it)', () => {
    const users = final.body.filter((i) => i.keyword === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1].args.split(':')[0];
    expect(user).toMatch(/^\d+$/);
    expect(Number(user)).toBeGreaterThan(0);
    // Nothing runs as root after the switch.
    const after = final.body.slice(final.body.indexOf(users[users.length - 1]));
    expect(after.filter((i) => i.keyword === 'USER' && /^(root|0)(:|$)/.test(i.args))).toEqual([]);
  });

  it('uses exec form for ENTRYPOINT and CMD, so node is PID 1 and gets SIGTERM', () => {
    const entrypoint = final.body.filter((i) => i.keyword === 'ENTRYPOINT').pop();
    const cmd = final.body.filter((i) => i.keyword === 'CMD').pop();
    expect(execForm(entrypoint!.args)).toEqual(['node', 'bin/fleet.js']);
    expect(execForm(cmd!.args)).toBeDefined();
    expect(all.filter((i) => i.keyword === 'SHELL')).toEqual([]);
  });

  it('has a HEALTHCHECK in exec form that asks the role for /healthz', () => {
    const hc = final.body.filter((i) => i.keyword === 'HEALTHCHECK').pop();
    expect(hc).toBeDefined();
    const m = /^((?:--\S+\s+)*)CMD\s+(.*)$/.exec(hc!.args);
    expect(m).not.toBeNull();
    const command = execForm(m![2]);
    expect(command?.[0]).toBe('node');
    expect(command!.join(' ')).toContain('/healthz');
    expect(m![1]).toMatch(/--interval=\d+s/);
    expect(m![1]).toMatch(/--timeout=\d+s/);
  });

  it('fetches nothing with ADD (no URLs, no archives): COPY only', () => {
    expect(all.filter((i) => i.keyword === 'ADD')).toEqual([]);
    expect(all.filter((i) => i.keyword === 'RUN' && /\b(curl|wget)\b/.test(i.args))).toEqual([]);
  });

  it('bakes in no secrets: no ENV or ARG named like a credential, no credential files copied', () => {
    // Every name an ENV or ARG defines (`ENV A=1 B=2`, `ENV A 1`, `ARG A`).
    const names = all
      .filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')
      .flatMap((i) =>
        i.args.includes('=')
          ? i.args
              .split(/\s+/)
              .filter((t) => t.includes('='))
              .map((t) => t.split('=')[0])
          : [i.args.split(/\s+/)[0]],
      );
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => /(PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|CREDENTIAL)/i.test(n))).toEqual([]);
    expect(all.filter((i) => (i.keyword === 'COPY' || i.keyword === 'ADD') && /(\.env\b|\.npmrc|id_rsa|\.pem\b|\.key\b)/.test(i.args))).toEqual([]);
    // Copying the whole context into the runtime image would carry whatever lies around (.env, .git).
    expect(final.body.filter((i) => i.keyword === 'COPY' && /^(--\S+\s+)*\.\s/.test(i.args))).toEqual([]);
  });

  it('exposes the API and health ports the manifests probe', () => {
    const exposed = all.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed).toEqual(expect.arrayContaining(['3000', '9464']));
  });
});

describe('the runtime stage has what dist/ needs, and no more', () => {
  // What `npm ci --omit=dev --workspaces=false` installs, read from the lock file: the root's
  // dependencies and optionalDependencies and, transitively, theirs (peers too, unless optional),
  // resolved as node does through nested node_modules. Workspace links are not installed.
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<
      string,
      {
        link?: boolean;
        dependencies?: Record<string, string>;
        optionalDependencies?: Record<string, string>;
        peerDependencies?: Record<string, string>;
        peerDependenciesMeta?: Record<string, { optional?: boolean }>;
      }
    >;
  };
  const production = (() => {
    const names = new Set<string>();
    const seen = new Set<string>();
    const locate = (from: string, name: string): string | undefined => {
      for (let base = from; ; ) {
        const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
        if (lock.packages[candidate]) return candidate;
        if (!base) return undefined;
        const i = base.lastIndexOf('/node_modules/');
        base = i === -1 ? '' : base.slice(0, i);
      }
    };
    const visit = (location: string) => {
      if (seen.has(location)) return;
      seen.add(location);
      const entry = lock.packages[location];
      if (location) {
        if (entry.link) return;
        names.add(location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length));
      }
      const peers = location ? Object.keys(entry.peerDependencies ?? {}).filter((p) => !entry.peerDependenciesMeta?.[p]?.optional) : [];
      for (const name of [...Object.keys(entry.dependencies ?? {}), ...Object.keys(entry.optionalDependencies ?? {}), ...peers]) {
        const found = locate(location, name);
        if (found) visit(found);
      }
    };
    visit('');
    return names;
  })();
  const builtins = new Set(require('node:module').builtinModules as string[]);

  it('every package src/ loads at run time is installed by the runtime stage (benchmarks and the local warehouse excepted: development only)', () => {
    const missing: string[] = [];
    for (const file of sourceFiles(path.join(ROOT, 'src'))) {
      // src/bench runs only under `fleet bench`, in development (test/dev-only-imports.test.ts).
      if (file.startsWith(path.join(ROOT, 'src', 'bench') + path.sep)) continue;
      for (const ref of importsOf(readFileSync(file, 'utf8'))) {
        const name = packageName(ref.specifier, builtins);
        // Type-only references are erased; local-snowflake is loaded lazily and is absent on purpose.
        if (!name || ref.kind === 'type' || name === 'local-snowflake') continue;
        if (!production.has(name)) missing.push(`${path.relative(ROOT, file)}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('installs neither the local warehouse (local-snowflake) nor DuckDB', () => {
    expect(production.size).toBeGreaterThan(50);
    expect([...production].filter((n) => n === 'local-snowflake' || n.startsWith('@duckdb/'))).toEqual([]);
  });
});

describe('ops/dockerignore (proposed .dockerignore for the repository root)', () => {
  const patterns = existsSync(DOCKERIGNORE)
    ? readFileSync(DOCKERIGNORE, 'utf8')
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
    : [];

  it('keeps secrets, VCS data, local builds and dependencies out of the build context', () => {
    // *.p8: the Snowflake private key `fleet snowflake keygen` writes (rsa_key.p8).
    for (const p of ['.env', '.git', 'node_modules', 'dist', '*.pem', '*.p8']) expect(patterns).toContain(p);
    expect(patterns.some((p) => /^\.env\.?\*/.test(p) || p === '**/.env*')).toBe(true);
  });

  it('does not exclude what the Dockerfile copies', () => {
    const copied = all
      .filter((i) => i.keyword === 'COPY' && !/--from=/.test(i.args))
      .flatMap((i) =>
        i.args
          .replace(/--\S+\s+/g, '')
          .split(/\s+/)
          .slice(0, -1),
      );
    for (const source of copied)
      expect({ source, excluded: patterns.includes(source) || patterns.includes(`${source}/`) }).toEqual({ source, excluded: false });
  });
});
