import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { containersOf, loadYamlDocuments, podSpecsOf, type Resource, renderKustomization } from '../ops/k8s/render';
import { validateResource } from '../ops/k8s/validate';
import { WORKER_ROLES } from '../src/app/roles';
import { loadConfig, VARIABLES, type VariableSpec } from '../src/config';
import { EMBEDDINGS_NODE_OPTIONS } from '../src/config/node-options';
import { QUEUES } from '../src/contracts/queues';
import { ALL_METRIC_NAMES } from '../src/telemetry/metrics';

const K8S = path.join(__dirname, '..', 'ops', 'k8s');
const KUSTOMIZATIONS = ['base', 'autoscaling', 'overlays/dev', 'overlays/production', 'overlays/cluster'];
const OVERLAYS = ['dev', 'production', 'cluster'] as const;
/** The image every fleet role runs (ops/Dockerfile); other containers (dev Redis) are not fleet processes. */
const FLEET_IMAGE = /(^|\/)warehouse-fleet(:|@|$)/;
/**
 * Secrets production expects to exist (created outside git, ops/README.md), with the keys read from them
 * and whether a key may be absent (then every reference to it says `optional: true`).
 */
const PRODUCTION_SECRETS: Record<string, Record<string, 'required' | 'optional'>> = {
  // The Snowflake private key (PKCS#8 PEM, mounted as a file) and, for an encrypted key, its passphrase.
  'fleet-snowflake': { 'rsa_key.p8': 'required', passphrase: 'optional' },
  'fleet-redis': { password: 'required' },
  'fleet-api': { tokens: 'required' },
};
/** Secret-typed variables and where production must take them from (the Snowflake key itself is a file). */
const PRODUCTION_SECRET_VARIABLES: Partial<Record<string, string>> = {
  SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: 'fleet-snowflake',
  REDIS_PASSWORD: 'fleet-redis',
  FLEET_API_TOKENS: 'fleet-api',
};
/** Where production's Snowflake private key comes from: this Secret and key, as a file in a mounted directory. */
const SNOWFLAKE_KEY = { secret: 'fleet-snowflake', key: 'rsa_key.p8' };
/**
 * Variables production deliberately leaves unset, and why. Every other variable in
 * src/config/variables.ts must be set by the production manifests: a new setting is a decision to make
 * for the cluster, and this list is where an "unset" decision is written down.
 */
const NOT_SET_IN_PRODUCTION: Record<string, string> = {
  SNOWFLAKE_ACCESS_URL: 'production uses SNOWFLAKE_ACCOUNT; the driver derives the endpoint',
  REDIS_CLUSTER_NODES: 'production uses one managed Redis primary (REDIS_URL); a Redis Cluster is the alternative (overlays/cluster)',
  REDIS_SENTINELS: 'a managed Redis gives one endpoint that follows its failovers (REDIS_URL); Sentinel is for a self-run primary and replica (ops/README.md)',
  REDIS_SENTINEL_MASTER: 'only with REDIS_SENTINELS',
  REDIS_SENTINEL_PASSWORD: 'only with REDIS_SENTINELS',
  FLEET_QUEUE_SHARDS: 'shards spread a queue over the masters of a Redis Cluster (overlays/cluster); on one primary they add nothing',
  FLEET_QUEUE_SHARDS_PREVIOUS: 'only while FLEET_QUEUE_SHARDS changes (docs/operations.md)',
  FLEET_WORKER_SHARDS: 'every replica consumes every shard, so the autoscaler can add and remove replicas freely',
  REDIS_USERNAME: 'optional ACL user; the managed Redis uses the default user with a password',
  REDIS_TLS_CA_FILE: 'only for a Redis certificate signed by a private CA (ops/README.md)',
  LOCAL_WAREHOUSE_PORT: 'only for `fleet warehouse` (dev overlay)',
  LOCAL_WAREHOUSE_LOGIN_LATENCY_MS: 'only for `fleet warehouse` (dev overlay)',
  LOCAL_WAREHOUSE_QUERY_LATENCY_MS: 'only for `fleet warehouse` (dev overlay)',
  LOCAL_WAREHOUSE_SEED: 'only for `fleet warehouse` (dev overlay)',
  LOCAL_WAREHOUSE_DEALS: 'only for `fleet warehouse` (dev overlay)',
  LOCAL_WAREHOUSE_RESULT_CHUNK_BYTES: 'only for `fleet warehouse` (dev overlay)',
  FLEET_BOARD_ADMIN_USER: 'operators reach Bull Board with an API token; add a Basic login from a Secret if browsers need one',
  FLEET_BOARD_ADMIN_PASSWORD: 'see FLEET_BOARD_ADMIN_USER',
  FLEET_BOARD_VIEWER_USER: 'no read-only Basic login by default; add one from a Secret for viewers',
  FLEET_BOARD_VIEWER_PASSWORD: 'see FLEET_BOARD_VIEWER_USER',
  EMBED_BATCH_TARGET_MS:
    'adaptive batching stays opt-in until its heavy-load throughput is settled on a quiet machine (docs/benchmarks.md); the fixed 25 ms window applies',
  TENANT_RATE_PER_S: "no per-tenant rate limit by default; set it (or a tenant's `ratePerS` in TENANT_POLICIES) to cap enqueues per tenant",
  TENANT_POLICIES: 'no per-tenant overrides by default: every tenant has weight 1 and the TENANT_MAX_QUEUED bound',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'set it to your collector (e.g. http://otel-collector.monitoring:4318/v1/traces) when one exists',
  // Snowflake login: production uses a key pair (SNOWFLAKE_JWT, the key a file from the Secret fleet-snowflake).
  SNOWFLAKE_PASSWORD: 'Snowflake refuses password login for TYPE = SERVICE users; production logs in with a key pair (dev uses the password)',
  SNOWFLAKE_PRIVATE_KEY: 'the key is a mounted file (SNOWFLAKE_PRIVATE_KEY_FILE), re-read when the Secret is rotated; a variable would need a restart',
  SNOWFLAKE_TOKEN: 'programmatic access / OAuth tokens are alternatives to the key pair',
  SNOWFLAKE_TOKEN_FILE: 'see SNOWFLAKE_TOKEN',
  SNOWFLAKE_OAUTH_CLIENT_ID: 'OAuth client credentials are an alternative to the key pair',
  SNOWFLAKE_OAUTH_CLIENT_SECRET: 'see SNOWFLAKE_OAUTH_CLIENT_ID',
  SNOWFLAKE_OAUTH_TOKEN_URL: 'see SNOWFLAKE_OAUTH_CLIENT_ID',
  // Cost: production.env sets the warehouse size and the credit price; the rest are Snowflake's list prices.
  SNOWFLAKE_WAREHOUSE_CREDITS_PER_HOUR: 'the list credits per hour of SNOWFLAKE_WAREHOUSE_SIZE apply unless the contract differs',
  SNOWFLAKE_CORTEX_CREDITS_PER_MTOKENS: 'the list Cortex prices apply unless the contract differs',
};
/**
 * What the manifests run or set that the code does not have yet: roles, commands and settings of the issue
 * that others are adding. The checks below accept them only where they are planned (a pending variable only
 * on a container running a pending command or role); "pending items are still pending" fails the moment one
 * lands, so that it is removed from here and the strict checks cover it (and a different name shows up).
 */
/** Node.js's own variables a container may set (not fleet settings; the README's operations notes explain them). */
const NODE_RUNTIME_VARIABLES = new Set(['NODE_OPTIONS']);

const PENDING = {
  /** `fleet <command>` */
  commands: [] as string[],
  /** `fleet worker --role <role>` */
  roles: [] as string[],
  variables: [] as string[],
  /** `--option`s of existing commands (`fleet warehouse --host`: bind beyond 127.0.0.1 in a pod) */
  options: [] as string[],
};
const CLI_SOURCE = readFileSync(path.join(__dirname, '..', 'src', 'cli', 'main.ts'), 'utf8');
const CLI_COMMANDS = [...CLI_SOURCE.matchAll(/\.command\('([a-z-]+)/g)].map((m) => m[1]);
const CLI_OPTIONS = [...CLI_SOURCE.matchAll(/(?:requiredOption|option)\('(--[a-z-]+)/g)].map((m) => m[1]);
/** Roles that consume queues (scaled on backlog) and the queues each consumes. */
const QUEUE_ROLES: Record<string, string[]> = {
  embeddings: [QUEUES.embeddings],
  deals: [QUEUES.deals],
  flows: [QUEUES.workflows, QUEUES.collect, QUEUES.analyze],
};

type Obj = Record<string, any>;
const variables = VARIABLES as Record<string, VariableSpec>;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(f) ? [p] : [];
  });
}

/** Files that kustomizations use as patches: partial objects, validated only once rendered. */
function patchFiles(): Set<string> {
  const out = new Set<string>();
  for (const k of KUSTOMIZATIONS) {
    const kz = parse(readFileSync(path.join(K8S, k, 'kustomization.yaml'), 'utf8')) as Obj;
    for (const p of kz.patches ?? []) if (p.path) out.add(path.join(K8S, k, p.path));
  }
  return out;
}

const rendered = Object.fromEntries(OVERLAYS.map((o) => [o, renderKustomization(path.join(K8S, 'overlays', o))])) as Record<
  (typeof OVERLAYS)[number],
  Resource[]
>;

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet']);
const workloads = (docs: Resource[]) => docs.filter((d) => WORKLOAD_KINDS.has(d.kind));
const fleetWorkloads = (docs: Resource[]) => workloads(docs).filter((w) => containersOf(w).some((c) => FLEET_IMAGE.test(c.image)));
const podLabels = (w: Resource): Record<string, string> => (w.spec as Obj).template.metadata.labels ?? {};
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  !!selector && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The role a fleet container runs: `api`, `warehouse`, or the `--role` of `worker`. */
function roleOf(c: Obj): string {
  const args: string[] = c.args ?? [];
  if (args[0] === 'worker') {
    const i = args.indexOf('--role');
    return i >= 0 ? args[i + 1] : '?';
  }
  return args[0] ?? '?';
}

/** True when the container runs a command or role that is still pending. */
function runsPending(c: Obj): boolean {
  const args: string[] = c.args ?? [];
  return args[0] === 'worker' ? PENDING.roles.includes(roleOf(c)) : PENDING.commands.includes(args[0]);
}

interface EnvSource {
  name: string;
  from: 'configmap' | 'value' | 'secret' | 'other';
  value?: string;
  secret?: { name: string; key: string; optional?: boolean };
}

/** A generated name without its content-hash suffix (`fleet-snowflake-7cdmkgh29k` → `fleet-snowflake`). */
const unhashed = (name: string) => name.replace(/-[a-z0-9]{10}$/, '');

/** Every environment variable a container gets, in the order Kubernetes applies them (env wins). */
function envOf(docs: Resource[], c: Obj): Map<string, EnvSource> {
  const out = new Map<string, EnvSource>();
  for (const e of c.envFrom ?? []) {
    if (e.configMapRef) {
      const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === e.configMapRef.name);
      if (!cm) throw new Error(`envFrom ConfigMap ${e.configMapRef.name} is not in the render`);
      for (const [k, v] of Object.entries((cm.data as Record<string, string>) ?? {})) out.set(k, { name: k, from: 'configmap', value: v });
    } else {
      throw new Error(`envFrom ${JSON.stringify(e)}: only ConfigMaps are used (secrets by secretKeyRef, one key each)`);
    }
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) out.set(e.name, { name: e.name, from: 'value', value: String(e.value) });
    else if (e.valueFrom?.secretKeyRef) out.set(e.name, { name: e.name, from: 'secret', secret: e.valueFrom.secretKeyRef });
    else out.set(e.name, { name: e.name, from: 'other' });
  }
  return out;
}

/** The fleet variables a container's process sees, secrets stood in for (they come from Secrets). */
function processEnv(docs: Resource[], c: Obj): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const [k, src] of envOf(docs, c)) if (k in variables) raw[k] = src.from === 'secret' ? 'from-a-kubernetes-secret' : (src.value ?? '');
  return raw;
}

describe('ops/k8s manifests parse and validate against the Kubernetes schemas', () => {
  const patches = patchFiles();
  const files = yamlFiles(K8S).filter((f) => !/kustomization\.ya?ml$/.test(f));

  it.each(files.map((f) => [path.relative(K8S, f), f]))('%s parses and every document validates', (_rel, file) => {
    const docs = loadYamlDocuments(file);
    expect(docs.length).toBeGreaterThan(0);
    if (patches.has(file)) return; // a partial object: checked in the rendered overlay
    expect(docs.flatMap(validateResource)).toEqual([]);
  });

  it.each(KUSTOMIZATIONS)('%s renders', (k) => {
    expect(renderKustomization(path.join(K8S, k)).length).toBeGreaterThan(0);
  });

  it.each(OVERLAYS)('the rendered %s overlay validates (schemas, no unknown fields) with unique names', (overlay) => {
    const docs = rendered[overlay];
    expect(docs.flatMap(validateResource)).toEqual([]);
    const ids = docs.map((d) => `${d.kind}/${d.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
    expect(docs.every((d) => d.metadata.namespace === (overlay === 'dev' ? 'fleet-dev' : 'fleet'))).toBe(true);
  });

  it('validation catches what it should (a misspelt field, a wrong type)', () => {
    const bad = structuredClone(fleetWorkloads(rendered.production)[0]);
    const c = (bad.spec as Obj).template.spec.containers[0];
    c.readynessProbe = c.readinessProbe;
    c.ports[0].containerPort = 'http';
    const problems = validateResource(bad).join('\n');
    expect(problems).toMatch(/unknown field .*readynessProbe/);
    expect(problems).toMatch(/containerPort must be integer/);
  });
});

describe('every role has a workload', () => {
  it.each(OVERLAYS)('%s: one workload per worker role, plus the API; each runs a `fleet` command that exists (or is pending)', (overlay) => {
    const containers = fleetWorkloads(rendered[overlay]).flatMap((w) => containersOf(w).filter((c) => FLEET_IMAGE.test(c.image)));
    const roles = containers.map(roleOf);
    for (const role of WORKER_ROLES) expect(roles).toContain(role);
    for (const role of [...PENDING.roles, 'api']) expect(roles).toContain(role);
    for (const c of containers) {
      const args: string[] = c.args;
      if (args[0] === 'worker') expect([...WORKER_ROLES, ...PENDING.roles]).toContain(roleOf(c));
      else expect([...CLI_COMMANDS, ...PENDING.commands]).toContain(args[0]);
      for (const option of args.filter((a) => a.startsWith('--'))) expect([...CLI_OPTIONS, ...PENDING.options]).toContain(option);
    }
  });

  it('pending roles, commands and variables are still pending (when one lands, remove it from PENDING above)', () => {
    expect(PENDING.roles.filter((r) => (WORKER_ROLES as readonly string[]).includes(r))).toEqual([]);
    expect(PENDING.commands.filter((c) => CLI_COMMANDS.includes(c))).toEqual([]);
    expect(PENDING.variables.filter((v) => v in variables)).toEqual([]);
    expect(PENDING.options.filter((o) => CLI_OPTIONS.includes(o))).toEqual([]);
  });

  it('the index builder is a StatefulSet with one replica and its snapshot directory on its volume', () => {
    const index = rendered.production.find((d) => d.kind === 'StatefulSet' && containersOf(d).some((c) => roleOf(c) === 'index'));
    expect(index).toBeDefined();
    const spec = index!.spec as Obj;
    expect(spec.replicas).toBe(1);
    const claim = spec.volumeClaimTemplates[0].metadata.name;
    const mount = containersOf(index!)[0].volumeMounts.find((m: Obj) => m.name === claim);
    expect(mount).toBeDefined();
  });
});

describe('the embeddings heap setting', () => {
  it.each(OVERLAYS)('%s: the embeddings Deployment runs with EMBEDDINGS_NODE_OPTIONS, the flags its benchmarks use', (overlay) => {
    const docs = rendered[overlay];
    const embeddings = fleetWorkloads(docs).filter((w) => containersOf(w).some((c) => roleOf(c) === 'embeddings'));
    expect(embeddings).toHaveLength(1);
    const c = containersOf(embeddings[0]).find((x) => roleOf(x) === 'embeddings')!;
    expect(envOf(docs, c).get('NODE_OPTIONS')).toMatchObject({ from: 'value', value: EMBEDDINGS_NODE_OPTIONS });
  });
});

describe('environment variables match the config schema (src/config/variables.ts)', () => {
  it.each(OVERLAYS)('%s: every variable a fleet container gets exists, parses, and the whole config loads', (overlay) => {
    const docs = rendered[overlay];
    for (const w of fleetWorkloads(docs)) {
      for (const c of containersOf(w)) {
        const env = envOf(docs, c);
        const planned = (k: string) => PENDING.variables.includes(k) && runsPending(c);
        const unknown = [...env.keys()].filter((k) => !(k in variables) && !planned(k) && !NODE_RUNTIME_VARIABLES.has(k));
        expect({ workload: w.metadata.name, unknown }).toEqual({ workload: w.metadata.name, unknown: [] });
        const raw: Record<string, string> = {};
        for (const [k, src] of env) {
          if (!(k in variables)) continue; // planned, or Node's own
          expect({ variable: k, from: src.from }).not.toEqual({ variable: k, from: 'other' });
          if (variables[k].secret) {
            // A secret only ever comes from a Secret, never from a ConfigMap or a literal.
            expect({ workload: w.metadata.name, variable: k, from: src.from }).toEqual({ workload: w.metadata.name, variable: k, from: 'secret' });
            raw[k] = 'from-a-kubernetes-secret';
          } else if (src.from === 'secret') {
            raw[k] = 'from-a-kubernetes-secret';
          } else {
            const parsed = variables[k].schema.safeParse(src.value === '' ? variables[k].default : src.value);
            expect({ workload: w.metadata.name, variable: k, value: src.value, ok: parsed.success }).toMatchObject({ ok: true });
            raw[k] = src.value!;
          }
        }
        expect(() => loadConfig(raw)).not.toThrow();
      }
    }
  });

  it.each(OVERLAYS)('%s: every secretKeyRef of a fleet container names a Secret and key that exist (dev) or are documented (production)', (overlay) => {
    const docs = rendered[overlay];
    for (const w of fleetWorkloads(docs)) {
      for (const c of containersOf(w)) {
        for (const src of envOf(docs, c).values()) {
          if (src.from !== 'secret') continue;
          const { name, key } = src.secret!;
          if (overlay === 'dev') {
            const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === name);
            expect({ secret: name, key, present: !!secret && key in ((secret.data as Obj) ?? {}) }).toEqual({ secret: name, key, present: true });
          } else {
            const documented = PRODUCTION_SECRETS[unhashed(name)]?.[key];
            expect({ secret: name, key, documented: !!documented }).toEqual({ secret: name, key, documented: true });
            // A key that may be absent is referenced as optional (else the pod would not start without it), and only such a key.
            expect({ secret: name, key, optional: src.secret!.optional === true }).toEqual({ secret: name, key, optional: documented === 'optional' });
          }
        }
      }
    }
  });

  it('production keeps no secret in git: no Secret objects, and each secret variable comes from its Secret', () => {
    const docs = rendered.production;
    expect(docs.filter((d) => d.kind === 'Secret').map((d) => d.metadata.name)).toEqual([]);
    for (const w of fleetWorkloads(docs)) {
      for (const c of containersOf(w)) {
        const env = envOf(docs, c);
        const role = roleOf(c);
        for (const [variable, secretName] of Object.entries(PRODUCTION_SECRET_VARIABLES)) {
          if (!(variable in variables) && !PENDING.variables.includes(variable)) continue;
          if (variable === 'FLEET_API_TOKENS' && role !== 'api') continue;
          expect({ role, variable, secret: env.get(variable)?.secret?.name }).toEqual({ role, variable, secret: secretName });
        }
      }
    }
  });

  it('production points at Snowflake (an account, no access URL) and at Redis over TLS', () => {
    const docs = rendered.production;
    for (const w of fleetWorkloads(docs)) {
      for (const c of containersOf(w)) {
        const env = envOf(docs, c);
        const role = roleOf(c);
        expect({ role, url: env.get('REDIS_URL')?.value?.startsWith('rediss://') }).toEqual({ role, url: true });
        if (role === 'api') continue;
        expect({ role, account: !!env.get('SNOWFLAKE_ACCOUNT')?.value, accessUrl: env.get('SNOWFLAKE_ACCESS_URL') }).toEqual({
          role,
          account: true,
          accessUrl: undefined,
        });
        expect([...env.keys()].filter((k) => k.startsWith('LOCAL_WAREHOUSE_'))).toEqual([]);
      }
    }
  });

  it('cluster: every fleet role reaches a Redis Cluster over TLS by its seeds (no REDIS_URL), with the queues sharded and both prefixes hash-tagged', () => {
    const docs = rendered.cluster;
    const hashTagged = (prefix: string) => /\{[^{}]+\}/.test(prefix);
    for (const w of fleetWorkloads(docs)) {
      for (const c of containersOf(w)) {
        const role = roleOf(c);
        const config = loadConfig(processEnv(docs, c));
        expect({
          role,
          redisUrl: envOf(docs, c).has('REDIS_URL'),
          tls: config.redis.cluster?.tls,
          seeds: (config.redis.cluster?.nodes.length ?? 0) >= 2,
          shards: config.shards.counts,
          queuePrefix: hashTagged(config.queuePrefix),
          cachePrefix: hashTagged(config.cache.keyPrefix),
        }).toEqual({ role, redisUrl: false, tls: true, seeds: true, shards: { embeddings: 3, deals: 2 }, queuePrefix: true, cachePrefix: true });
      }
    }
  });

  it('cluster: the production overlay, changed only in where Redis is and how the queues use it', () => {
    /** Every resource by kind and name, generated names without their content-hash suffix. */
    const byId = (docs: Resource[]) => {
      const unsuffixed = JSON.parse(JSON.stringify(docs).replace(/\b([a-z][a-z-]*?)-[a-z0-9]{10}\b(?=")/g, '$1')) as Resource[];
      return Object.fromEntries(unsuffixed.map((d) => [`${d.kind}/${d.metadata.name}`, d]));
    };
    const [production, cluster] = [byId(rendered.production), byId(rendered.cluster)];
    expect(Object.keys(cluster).sort()).toEqual(Object.keys(production).sort());
    expect(Object.keys(production).filter((id) => !isDeepStrictEqual(production[id], cluster[id]))).toEqual(['ConfigMap/fleet-config']);
    const [before, after] = [production, cluster].map((docs) => docs['ConfigMap/fleet-config'].data as Record<string, string>);
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]).sort();
    expect(changed).toEqual(['CACHE_KEY_PREFIX', 'FLEET_QUEUE_SHARDS', 'REDIS_CLUSTER_NODES', 'REDIS_URL']);
    expect(after.REDIS_URL).toBeUndefined();
  });

  it('production sets every required variable and decides every other one (set, or listed as deliberately unset)', () => {
    const docs = rendered.production;
    const setSomewhere = new Set<string>();
    for (const w of fleetWorkloads(docs)) for (const c of containersOf(w)) for (const k of envOf(docs, c).keys()) setSomewhere.add(k);
    const required = Object.entries(variables)
      .filter(([, s]) => s.required)
      .map(([k]) => k);
    expect(required.filter((k) => !setSomewhere.has(k))).toEqual([]);
    const undecided = Object.keys(variables).filter((k) => !setSomewhere.has(k) && !(k in NOT_SET_IN_PRODUCTION));
    expect(undecided).toEqual([]);
    // The list of exceptions only names real variables that are really left unset.
    expect(Object.keys(NOT_SET_IN_PRODUCTION).filter((k) => !(k in variables) || setSomewhere.has(k))).toEqual([]);
  });
});

/**
 * Can the container's process read a file of a Secret volume with this mode? The kubelet writes Secret
 * files owned by root; with a pod `fsGroup` it gives them that group and adds group read (0440; kubelet
 * SetVolumeOwnership for read-only volumes), without one their group is root. Capabilities are dropped,
 * so not even uid 0 reads past the mode bits.
 */
function secretFileAccess(pod: Obj, c: Obj, mode: number): { mode: number; readableByFleet: boolean; readableByOthers: boolean } {
  const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
  const gid = c.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup;
  const fsGroup: number | undefined = pod.securityContext?.fsGroup;
  const groups = [gid, fsGroup, ...(pod.securityContext?.supplementalGroups ?? [])].filter((g) => g !== undefined);
  const effective = fsGroup === undefined ? mode : mode | 0o440;
  const fileGroup = fsGroup ?? 0;
  const readableByFleet = (uid === 0 && (effective & 0o400) !== 0) || (groups.includes(fileGroup) && (effective & 0o040) !== 0) || (effective & 0o004) !== 0;
  return { mode: effective, readableByFleet, readableByOthers: (effective & 0o004) !== 0 };
}

/**
 * What is wrong with how a production fleet container gets its Snowflake private key (empty when right):
 * key-pair login with SNOWFLAKE_PRIVATE_KEY_FILE, that file in a directory mount (never a subPath, which
 * never sees an updated Secret) of the Secret fleet-snowflake's key rsa_key.p8, read-only, readable by the
 * container's user and by nobody else, and the key never in an environment variable.
 */
function snowflakeKeyProblems(docs: Resource[], w: Resource, c: Obj): string[] {
  const problems: string[] = [];
  const [pod] = podSpecsOf(w) as Obj[];
  const env = envOf(docs, c);
  if (env.get('SNOWFLAKE_AUTHENTICATOR')?.value !== 'SNOWFLAKE_JWT')
    problems.push(`SNOWFLAKE_AUTHENTICATOR is ${env.get('SNOWFLAKE_AUTHENTICATOR')?.value}, not SNOWFLAKE_JWT`);
  for (const k of ['SNOWFLAKE_PRIVATE_KEY', 'SNOWFLAKE_PASSWORD'])
    if (env.has(k)) problems.push(`${k} is set: the key is a file, and service users have no password`);
  const file = env.get('SNOWFLAKE_PRIVATE_KEY_FILE');
  if (file?.from !== 'value' || !file.value?.startsWith('/')) return [...problems, 'SNOWFLAKE_PRIVATE_KEY_FILE is not an absolute path set on the container'];
  const dir = path.posix.dirname(file.value);
  const name = path.posix.basename(file.value);
  const mounts = ((c.volumeMounts ?? []) as Obj[]).filter((m) => m.mountPath === dir || m.mountPath === file.value);
  if (mounts.length !== 1) return [...problems, `${mounts.length} volume mounts at ${dir}, expected one`];
  const [mount] = mounts;
  if (mount.subPath !== undefined || mount.subPathExpr !== undefined)
    problems.push(`the key is mounted with a subPath (${mount.mountPath}): it would never see a rotated Secret`);
  else if (mount.mountPath !== dir) problems.push(`the volume is mounted at ${mount.mountPath}, not at the key file's directory ${dir}`);
  if (mount.readOnly !== true) problems.push(`${dir} is not mounted readOnly`);
  const volume = ((pod.volumes ?? []) as Obj[]).find((v) => v.name === mount.name);
  const secret = volume?.secret;
  if (!secret || unhashed(secret.secretName) !== SNOWFLAKE_KEY.secret)
    return [...problems, `${dir} is not the Secret ${SNOWFLAKE_KEY.secret} (volume ${mount.name}: ${JSON.stringify(volume)})`];
  if (secret.optional === true) problems.push('the key volume is optional: a pod would start without a key');
  const item = secret.items ? (secret.items as Obj[]).find((i) => i.path === name) : { key: name };
  if (item?.key !== SNOWFLAKE_KEY.key) problems.push(`${file.value} is not the key ${SNOWFLAKE_KEY.key} of the Secret (item ${JSON.stringify(item)})`);
  const access = secretFileAccess(pod, c, item?.mode ?? secret.defaultMode ?? 0o644);
  if (!access.readableByFleet)
    problems.push(
      `mode 0${access.mode.toString(8)}: the key is not readable by uid ${c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser} (fsGroup ${pod.securityContext?.fsGroup})`,
    );
  if (access.readableByOthers) problems.push(`mode 0${access.mode.toString(8)}: the key is readable by every user`);
  return problems;
}

describe('Snowflake login: a key pair from a mounted Secret in production, the local password in dev', () => {
  const fleetContainers = (docs: Resource[]) =>
    fleetWorkloads(docs).flatMap((w) =>
      containersOf(w)
        .filter((c) => FLEET_IMAGE.test(c.image))
        .map((c) => ({ w, c, role: roleOf(c) })),
    );

  it('production: every fleet role reads the key as a file of a directory mount of fleet-snowflake, readable by its user only', () => {
    const docs = rendered.production;
    const checked = fleetContainers(docs).map(({ w, c, role }) => ({ role, problems: snowflakeKeyProblems(docs, w, c) }));
    expect(new Set(checked.map((x) => x.role))).toEqual(new Set([...WORKER_ROLES, ...PENDING.roles, 'api']));
    expect(checked.filter((x) => x.problems.length)).toEqual([]);
  });

  it('the key check fails for a subPath mount, a missing fsGroup, a world-readable mode, another Secret, or the key in a variable', () => {
    const docs = rendered.production;
    const w0 = fleetWorkloads(docs).find((w) => containersOf(w).some((c) => roleOf(c) === 'deals'))!;
    /** The deals workload's key check after `change` (on copies of its pod, container, key mount and key volume). */
    const broken = (change: (x: { pod: Obj; c: Obj; mount: Obj; volume: Obj }) => void) => {
      const w = structuredClone(w0);
      const [pod] = podSpecsOf(w) as Obj[];
      const c = containersOf(w)[0];
      const mount = (c.volumeMounts as Obj[]).find((m) => m.mountPath === path.posix.dirname(envOf(docs, c).get('SNOWFLAKE_PRIVATE_KEY_FILE')!.value!))!;
      change({ pod, c, mount, volume: (pod.volumes as Obj[]).find((v) => v.name === mount.name)! });
      return snowflakeKeyProblems(docs, w, c).join('\n');
    };
    expect(broken(() => undefined)).toBe('');
    expect(broken(({ mount }) => Object.assign(mount, { mountPath: `${mount.mountPath}/rsa_key.p8`, subPath: 'rsa_key.p8' }))).toMatch(/subPath/);
    expect(broken(({ mount }) => delete mount.readOnly)).toMatch(/not mounted readOnly/);
    expect(broken(({ pod }) => delete pod.securityContext.fsGroup)).toMatch(/not readable by uid 1000/);
    expect(broken(({ volume }) => (volume.secret.defaultMode = 0o644))).toMatch(/readable by every user/);
    expect(broken(({ volume }) => (volume.secret.secretName = 'fleet-redis'))).toMatch(/is not the Secret fleet-snowflake/);
    expect(broken(({ volume }) => (volume.secret.items[0].key = 'passphrase'))).toMatch(/is not the key rsa_key.p8/);
    expect(
      broken(({ c }) => c.env.push({ name: 'SNOWFLAKE_PRIVATE_KEY', valueFrom: { secretKeyRef: { name: 'fleet-snowflake', key: 'rsa_key.p8' } } })),
    ).toMatch(/SNOWFLAKE_PRIVATE_KEY is set/);
  });

  it.each(OVERLAYS)(
    '%s: every volume a container mounts exists, and every Secret volume names keys that exist (dev) or are documented (production)',
    (overlay) => {
      const docs = rendered[overlay];
      for (const w of workloads(docs)) {
        const [pod] = podSpecsOf(w) as Obj[];
        const id = w.metadata.name;
        const names = new Set([
          ...((pod.volumes ?? []) as Obj[]).map((v) => v.name),
          ...(((w.spec as Obj).volumeClaimTemplates ?? []) as Obj[]).map((t) => t.metadata.name),
        ]);
        const dangling = containersOf(w).flatMap((c) =>
          ((c.volumeMounts ?? []) as Obj[]).filter((m) => !names.has(m.name)).map((m) => `${m.mountPath} (volume ${m.name})`),
        );
        expect({ id, dangling }).toEqual({ id, dangling: [] });
        for (const v of ((pod.volumes ?? []) as Obj[]).filter((x) => x.secret)) {
          const secretName: string = v.secret.secretName;
          const keys = ((v.secret.items ?? []) as Obj[]).map((i) => i.key as string);
          let problems: string[];
          if (overlay === 'dev') {
            const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === secretName);
            problems = secret ? keys.filter((k) => !(k in ((secret.data as Obj) ?? {}))).map((k) => `no key ${k}`) : ['no such Secret'];
          } else {
            // A volume that is not optional keeps the pod from starting without its keys: only required keys belong in it.
            const documented = PRODUCTION_SECRETS[secretName];
            problems = documented
              ? keys
                  .filter((k) => !documented[k] || (documented[k] === 'optional' && !v.secret.optional))
                  .map((k) => `key ${k} is ${documented[k] ?? 'undocumented'}`)
              : ['not a documented Secret'];
          }
          expect({ id, volume: v.name, secret: secretName, problems }).toEqual({ id, volume: v.name, secret: secretName, problems: [] });
        }
      }
    },
  );

  it('production: every documented Secret key is read by some workload (the documentation matches the manifests)', () => {
    const docs = rendered.production;
    const read = new Set<string>();
    for (const w of workloads(docs)) {
      const [pod] = podSpecsOf(w) as Obj[];
      for (const c of containersOf(w))
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) read.add(`${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`);
      for (const v of ((pod.volumes ?? []) as Obj[]).filter((x) => x.secret)) {
        const keys = v.secret.items ? (v.secret.items as Obj[]).map((i) => i.key) : Object.keys(PRODUCTION_SECRETS[v.secret.secretName] ?? {});
        for (const k of keys) read.add(`${v.secret.secretName}/${k}`);
      }
    }
    const documented = Object.entries(PRODUCTION_SECRETS).flatMap(([name, keys]) => Object.keys(keys).map((k) => `${name}/${k}`));
    expect(documented.filter((k) => !read.has(k))).toEqual([]);
  });

  it('dev: every fleet container, the local warehouse included, logs in with the password the local warehouse accepts, and has no key', () => {
    const docs = rendered.dev;
    const containers = fleetContainers(docs);
    const warehouse = containers.find((x) => x.role === 'warehouse');
    expect(warehouse).toBeDefined();
    const accepted = envOf(docs, warehouse!.c).get('SNOWFLAKE_PASSWORD')?.secret;
    expect(accepted).toMatchObject({ key: 'password' });
    for (const { w, c, role } of containers) {
      const env = envOf(docs, c);
      expect({
        role,
        authenticator: env.get('SNOWFLAKE_AUTHENTICATOR')?.value,
        password: env.get('SNOWFLAKE_PASSWORD')?.secret,
        keyVariables: [...env.keys()].filter((k) => /^SNOWFLAKE_(PRIVATE_KEY|TOKEN|OAUTH)/.test(k)),
        keyVolumes: ((podSpecsOf(w)[0].volumes ?? []) as Obj[])
          .filter((v) => v.secret && unhashed(v.secret.secretName) === SNOWFLAKE_KEY.secret)
          .map((v) => v.name),
      }).toEqual({ role, authenticator: 'SNOWFLAKE', password: accepted, keyVariables: [], keyVolumes: [] });
    }
  });
});

describe('pods are locked down and shut down gracefully', () => {
  it.each(OVERLAYS)('%s: restrictive securityContext, /tmp on an emptyDir, no service account token, requests and limits', (overlay) => {
    for (const w of workloads(rendered[overlay])) {
      const [pod] = podSpecsOf(w) as Obj[];
      const id = w.metadata.name;
      expect({ id, automount: pod.automountServiceAccountToken, serviceLinks: pod.enableServiceLinks }).toEqual({ id, automount: false, serviceLinks: false });
      expect({ id, ...pod.securityContext }).toMatchObject({ id, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      expect(pod.hostNetwork ?? false).toBe(false);
      const tmpVolume = (pod.volumes ?? []).find(
        (v: Obj) => v.emptyDir && (containersOf(w)[0].volumeMounts ?? []).some((m: Obj) => m.name === v.name && m.mountPath === '/tmp'),
      );
      expect({ id, tmpOnEmptyDir: !!tmpVolume }).toEqual({ id, tmpOnEmptyDir: true });
      for (const c of containersOf(w)) {
        expect({ id, ...c.securityContext }).toMatchObject({
          id,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        expect(c.securityContext.privileged ?? false).toBe(false);
        expect(c.securityContext.capabilities.add ?? []).toEqual([]);
        expect({ id, ...c.resources }).toMatchObject({
          id,
          requests: { cpu: expect.any(String), memory: expect.any(String) },
          limits: { cpu: expect.any(String), memory: expect.any(String) },
        });
        expect(c.image).not.toMatch(/:latest$|^[^:@]+$/);
      }
    }
  });

  it.each(OVERLAYS)('%s: fleet roles have readiness on /readyz and liveness on /healthz, on a port the container declares', (overlay) => {
    for (const w of fleetWorkloads(rendered[overlay])) {
      for (const c of containersOf(w)) {
        if (roleOf(c) === 'warehouse') continue; // the dev-only local warehouse speaks the Snowflake protocol, probed by TCP
        const ports = (c.ports ?? []).map((p: Obj) => p.name);
        const probe = (p: Obj | undefined) => ({ path: p?.httpGet?.path, portDeclared: ports.includes(p?.httpGet?.port) });
        expect({ role: roleOf(c), readiness: probe(c.readinessProbe), liveness: probe(c.livenessProbe) }).toEqual({
          role: roleOf(c),
          readiness: { path: '/readyz', portDeclared: true },
          liveness: { path: '/healthz', portDeclared: true },
        });
      }
    }
  });

  it.each(OVERLAYS)('%s: the ports containers declare are the ones the roles listen on (PORT, HEALTH_PORT)', (overlay) => {
    const docs = rendered[overlay];
    const effective = (env: Map<string, EnvSource>, name: string) => Number(env.get(name)?.value ?? variables[name]?.default);
    for (const w of fleetWorkloads(docs)) {
      for (const c of containersOf(w)) {
        const env = envOf(docs, c);
        const declared = (name: string) => (c.ports ?? []).find((p: Obj) => p.name === name)?.containerPort;
        if (roleOf(c) === 'api') expect({ role: 'api', port: declared('http') }).toEqual({ role: 'api', port: effective(env, 'PORT') });
        else if (roleOf(c) !== 'warehouse' && 'HEALTH_PORT' in variables)
          expect({ role: roleOf(c), port: declared('health') }).toEqual({ role: roleOf(c), port: effective(env, 'HEALTH_PORT') });
      }
    }
  });

  it.each(OVERLAYS)('%s: terminationGracePeriodSeconds outlasts preStop + FLEET_SHUTDOWN_TIMEOUT_MS with a margin', (overlay) => {
    const docs = rendered[overlay];
    for (const w of fleetWorkloads(docs)) {
      const [pod] = podSpecsOf(w) as Obj[];
      for (const c of containersOf(w)) {
        const env = envOf(docs, c);
        const closeMs = Number(env.get('FLEET_SHUTDOWN_TIMEOUT_MS')?.value ?? VARIABLES.FLEET_SHUTDOWN_TIMEOUT_MS.default);
        const preStopS = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
        const grace = pod.terminationGracePeriodSeconds ?? 30;
        expect({ workload: w.metadata.name, graceCoversClose: grace >= preStopS + closeMs / 1000 + 5 }).toEqual({
          workload: w.metadata.name,
          graceCoversClose: true,
        });
      }
    }
  });
});

describe('Services, disruption budgets and network policies', () => {
  it.each(OVERLAYS)('%s: every Service selects a workload and targets a port its container declares', (overlay) => {
    const docs = rendered[overlay];
    for (const s of docs.filter((d) => d.kind === 'Service')) {
      const spec = s.spec as Obj;
      const targets = workloads(docs).filter((w) => matches(spec.selector, podLabels(w)));
      expect({ service: s.metadata.name, targets: targets.length }).toEqual({ service: s.metadata.name, targets: 1 });
      const declared = containersOf(targets[0]).flatMap((c) => (c.ports ?? []).flatMap((p: Obj) => [p.name, p.containerPort]));
      for (const p of spec.ports)
        expect({ service: s.metadata.name, port: p.targetPort, declared: declared.includes(p.targetPort) }).toMatchObject({ declared: true });
    }
  });

  it('production: a PodDisruptionBudget for each role with more than one replica, none for single-replica roles', () => {
    const docs = rendered.production;
    const minReplicas = (w: Resource): number => {
      const so = docs.find((d) => d.kind === 'ScaledObject' && (d.spec as Obj).scaleTargetRef.name === w.metadata.name);
      if (so) return (so.spec as Obj).minReplicaCount ?? 0;
      const hpa = docs.find((d) => d.kind === 'HorizontalPodAutoscaler' && (d.spec as Obj).scaleTargetRef.name === w.metadata.name);
      if (hpa) return (hpa.spec as Obj).minReplicas ?? 1;
      return (w.spec as Obj).replicas ?? 1;
    };
    const pdbs = docs.filter((d) => d.kind === 'PodDisruptionBudget');
    for (const w of workloads(docs)) {
      const covering = pdbs.filter((p) => matches((p.spec as Obj).selector.matchLabels, podLabels(w)));
      expect({ workload: w.metadata.name, pdbs: covering.length }).toEqual({ workload: w.metadata.name, pdbs: minReplicas(w) > 1 ? 1 : 0 });
    }
    for (const p of pdbs) {
      expect(workloads(docs).filter((w) => matches((p.spec as Obj).selector.matchLabels, podLabels(w)))).toHaveLength(1);
      expect((p.spec as Obj).maxUnavailable).toBe(1);
    }
  });

  it.each(OVERLAYS)('%s: every pod is covered by a NetworkPolicy restricting both ingress and egress', (overlay) => {
    const docs = rendered[overlay];
    const policies = docs.filter((d) => d.kind === 'NetworkPolicy');
    for (const w of workloads(docs)) {
      const types = new Set(
        policies.filter((p) => matches((p.spec as Obj).podSelector.matchLabels ?? {}, podLabels(w))).flatMap((p) => (p.spec as Obj).policyTypes),
      );
      expect({ workload: w.metadata.name, types: [...types].sort() }).toEqual({ workload: w.metadata.name, types: ['Egress', 'Ingress'] });
    }
  });
});

describe('autoscaling on queue backlog (KEDA) with a CPU fallback', () => {
  const docs = rendered.production;
  const scaled = docs.filter((d) => d.kind === 'ScaledObject');

  it('each queue-consuming role has a ScaledObject counting waiting + prioritized jobs of all its queues, and a CPU trigger', () => {
    for (const [role, queues] of Object.entries(QUEUE_ROLES)) {
      const w = fleetWorkloads(docs).find((x) => containersOf(x).some((c) => roleOf(c) === role))!;
      const so = scaled.find((s) => (s.spec as Obj).scaleTargetRef.name === w.metadata.name);
      expect({ role, scaledObject: !!so }).toEqual({ role, scaledObject: true });
      const triggers = (so!.spec as Obj).triggers as Obj[];
      const backlog = triggers.find((t) => t.type === 'prometheus')!;
      expect(backlog.metricType).toBe('AverageValue');
      const query: string = backlog.metadata.query;
      expect(query).toContain('fleet_queue_jobs');
      // Each (queue, shard, state) once, however many pods export it; then the sum over states, queues and the shards of a sharded queue.
      expect(query).toMatch(/^sum\(max by \(queue, shard, state\) \(fleet_queue_jobs\{[^{}]*\}\)\)$/);
      expect((query.match(/\bfleet_[a-z0-9_]+/g) ?? []).filter((m) => !(ALL_METRIC_NAMES as readonly string[]).includes(m))).toEqual([]);
      // Only this fleet's series: the query names the namespace the ScaledObject is applied to.
      expect(/namespace="([^"]+)"/.exec(query)?.[1]).toBe(so!.metadata.namespace);
      const states = /state=~"([^"]+)"/.exec(query)![1].split('|').sort();
      expect(states).toEqual(['prioritized', 'waiting']);
      const queueMatcher = /queue=~?"([^"]+)"/.exec(query)![1];
      expect(queueMatcher.split('|').sort()).toEqual([...queues].sort());
      expect(Number(backlog.metadata.threshold)).toBeGreaterThan(0);
      expect(triggers.find((t) => t.type === 'cpu')?.metadata.value).toMatch(/^\d+$/);
      expect((so!.spec as Obj).minReplicaCount).toBeGreaterThanOrEqual(1);
      expect((so!.spec as Obj).maxReplicaCount).toBeGreaterThan((so!.spec as Obj).minReplicaCount);
    }
  });

  it('at full scale, the warehouse-bound roles open no more sessions than the warehouse runs at once', () => {
    // The production sizing of ops/README.md: a multi-cluster warehouse, 10 clusters x MAX_CONCURRENCY_LEVEL 8.
    const WAREHOUSE_CONCURRENCY = 80;
    let sessions = 0;
    for (const role of Object.keys(QUEUE_ROLES)) {
      const w = fleetWorkloads(docs).find((x) => containersOf(x).some((c) => roleOf(c) === role))!;
      const so = scaled.find((s) => (s.spec as Obj).scaleTargetRef.name === w.metadata.name)!;
      const poolMax = Number(envOf(docs, containersOf(w)[0]).get('POOL_MAX')?.value ?? VARIABLES.POOL_MAX.default);
      sessions += (so.spec as Obj).maxReplicaCount * poolMax;
    }
    expect(sessions).toBeLessThanOrEqual(WAREHOUSE_CONCURRENCY);
  });

  it('autoscaled workloads leave `replicas` to the autoscaler, have CPU requests, and no workload has two autoscalers', () => {
    const targets = docs
      .filter((d) => d.kind === 'ScaledObject' || d.kind === 'HorizontalPodAutoscaler')
      .map((d) => (d.spec as Obj).scaleTargetRef.name as string);
    expect(new Set(targets).size).toBe(targets.length);
    for (const name of targets) {
      const w = workloads(docs).find((x) => x.metadata.name === name);
      expect({ target: name, exists: !!w }).toEqual({ target: name, exists: true });
      expect((w!.spec as Obj).replicas).toBeUndefined();
      for (const c of containersOf(w!)) expect(c.resources.requests.cpu).toBeDefined();
    }
    const api = fleetWorkloads(docs).find((x) => containersOf(x).some((c) => roleOf(c) === 'api'))!;
    expect(targets).toContain(api.metadata.name);
  });
});
