/**
 * A small, honest renderer for the subset of kustomize that ops/k8s uses, so the rendered overlays can be
 * validated offline where no `kustomize` binary exists. It implements exactly these kustomization fields
 * and refuses every other one (so a manifest cannot quietly rely on a feature this file ignores):
 *
 * | field | what is implemented |
 * |---|---|
 * | `resources` | YAML files (multi-document) and directories holding a kustomization, rendered recursively |
 * | `namespace` | set on every resource (all of ours are namespaced) |
 * | `labels` | `pairs` added to every resource's `metadata.labels`, and with `includeTemplates` to pod templates; `includeSelectors: true` is refused |
 * | `configMapGenerator`, `secretGenerator` | `literals` and `envs` files; `behavior` create, merge, replace; a content-hash name suffix unless disabled; references from pod specs rewritten to the suffixed name |
 * | `generatorOptions` | `disableNameSuffixHash` |
 * | `patches` | strategic-merge patches (`path` or inline `patch`), target from `target.kind/name` or the patch's own kind and name; several documents in one patch (no `target`), each applied to the resource it names; `$patch: delete` of a whole resource or of a keyed list item |
 * | `images` | `name` → `newName`, `newTag`, `digest` in containers and init containers |
 *
 * The name suffix is a content hash in kustomize's alphabet, but not byte-identical to kustomize's own;
 * test/ops-kustomize.test.ts compares this renderer with `kubectl kustomize` (when kubectl is on PATH)
 * modulo that suffix. YAML is read as 1.2 (kustomize reads 1.1), so a plain number with a leading zero,
 * which the two read differently (`0440`: octal 288 or decimal 440), is refused rather than guessed.
 *
 * @example
 *   const docs = renderKustomization('ops/k8s/overlays/production');
 *   const api = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'fleet-api');
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, visit, type Document } from 'yaml';

/** A Kubernetes object as parsed from YAML. */
export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

/** Thrown for a kustomization this renderer cannot render faithfully. */
export class KustomizeRenderError extends Error {
  override name = 'KustomizeRenderError';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'configMapGenerator', 'secretGenerator', 'generatorOptions', 'patches', 'images']);
/** Kinds whose `spec.template` is a pod template (kustomize's fieldspecs for templates and name references). */
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);
/** Kinds that are not namespaced; the namespace transformer leaves them alone. */
const CLUSTER_KINDS = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass', 'PriorityClass']);

/** Where a resource came from a generator: its pre-suffix name and whether it gets a hash suffix. */
interface Generated {
  hash: boolean;
}

interface Rendered {
  resources: Resource[];
  generated: Map<Resource, Generated>;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

function fail(dir: string, message: string): never {
  throw new KustomizeRenderError(`${dir}: ${message}`);
}

/**
 * Refuses a plain number with a leading zero (`defaultMode: 0440`): kubectl and kustomize read YAML 1.1,
 * where it is octal (288), and this renderer YAML 1.2, where it is decimal (440); a file mode would
 * silently differ. Write it in decimal, as the Kubernetes API stores it.
 */
function refuseLeadingZeroNumbers(doc: Document.Parsed, where: string): void {
  visit(doc, {
    Scalar(_key, node) {
      if (node.type === 'PLAIN' && typeof node.source === 'string' && /^[-+]?0[0-9]+$/.test(node.source)) {
        throw new KustomizeRenderError(`${where}: ${node.source} is octal to kubectl (YAML 1.1) but decimal here (YAML 1.2); write it in decimal (${parseInt(node.source, 8)} for octal ${node.source}) or quote it`);
      }
    },
  });
}

/** Every document of YAML text; a parse error or an ambiguous number throws naming `where`. */
function parseYaml(text: string, where: string): Document.Parsed[] {
  const docs = parseAllDocuments(text);
  for (const doc of docs) {
    if (doc.errors.length) throw new KustomizeRenderError(`${where}: ${doc.errors.map((e) => e.message).join('; ')}`);
    refuseLeadingZeroNumbers(doc, where);
  }
  return docs;
}

/** Parses every document of a YAML file, skipping empty ones; a parse error throws with the file name. */
export function loadYamlDocuments(file: string): Resource[] {
  const docs = parseYaml(readFileSync(file, 'utf8'), file);
  const out: Resource[] = [];
  for (const doc of docs) {
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    if (!isObj(value) || typeof value.kind !== 'string' || !isObj(value.metadata) || typeof value.metadata.name !== 'string') {
      throw new KustomizeRenderError(`${file}: every document must be an object with kind and metadata.name`);
    }
    out.push(value as unknown as Resource);
  }
  return out;
}

function kustomizationFile(dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((f) => path.join(dir, f)).find((f) => existsSync(f));
}

const idOf = (r: Resource) => `${r.kind}/${r.metadata.namespace ?? '~'}/${r.metadata.name}`;

/** Renders the kustomization in `dir` (with everything it includes) into a flat list of resources. */
export function renderKustomization(dir: string): Resource[] {
  const rendered = renderDir(path.resolve(dir));
  return finalizeNames(rendered);
}

function renderDir(dir: string): Rendered {
  const file = kustomizationFile(dir);
  if (!file) fail(dir, 'no kustomization.yaml');
  const k = loadKustomization(file);
  for (const field of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(field)) fail(dir, `kustomization field \`${field}\` is not supported by ops/k8s/render.ts`);
  }

  const acc: Rendered = { resources: [], generated: new Map() };
  const add = (r: Resource, origin: string) => {
    if (acc.resources.some((x) => idOf(x) === idOf(r))) fail(dir, `${origin}: resource ${idOf(r)} is already registered`);
    acc.resources.push(r);
  };

  // 1. resources
  for (const entry of asList<string>(k.resources, dir, 'resources')) {
    if (typeof entry !== 'string' || /^[a-z]+:\/\//i.test(entry)) fail(dir, `resource ${JSON.stringify(entry)} must be a local path`);
    const target = path.resolve(dir, entry);
    if (!existsSync(target)) fail(dir, `resource ${entry} does not exist`);
    if (statSync(target).isDirectory()) {
      const sub = renderDir(target);
      for (const r of sub.resources) {
        add(r, entry);
        const g = sub.generated.get(r);
        if (g) acc.generated.set(r, g);
      }
    } else {
      for (const r of loadYamlDocuments(target)) add(r, entry);
    }
  }

  // 2. generators
  const options = isObj(k.generatorOptions) ? k.generatorOptions : {};
  for (const key of Object.keys(options)) if (key !== 'disableNameSuffixHash') fail(dir, `generatorOptions.${key} is not supported`);
  const hashByDefault = options.disableNameSuffixHash !== true;
  for (const [field, kind] of [['configMapGenerator', 'ConfigMap'], ['secretGenerator', 'Secret']] as const) {
    for (const gen of asList<Obj>(k[field], dir, field)) generate(dir, kind, gen, hashByDefault, acc);
  }

  // 3. patches
  for (const p of asList<Obj>(k.patches, dir, 'patches')) applyPatch(dir, p, acc);

  // 4. transformers
  if (k.namespace !== undefined) {
    if (typeof k.namespace !== 'string') fail(dir, 'namespace must be a string');
    for (const r of acc.resources) if (!CLUSTER_KINDS.has(r.kind)) r.metadata.namespace = k.namespace;
  }
  for (const l of asList<Obj>(k.labels, dir, 'labels')) {
    for (const key of Object.keys(l)) if (!['pairs', 'includeSelectors', 'includeTemplates'].includes(key)) fail(dir, `labels.${key} is not supported`);
    if (l.includeSelectors === true) fail(dir, 'labels.includeSelectors: true is not supported (selectors are immutable; set them in the resources)');
    if (!isObj(l.pairs)) fail(dir, 'labels.pairs must be a map');
    const pairs = stringMap(l.pairs, dir, 'labels.pairs');
    for (const r of acc.resources) {
      r.metadata.labels = { ...(r.metadata.labels ?? {}), ...pairs };
      if (l.includeTemplates === true && WORKLOAD_KINDS.has(r.kind)) {
        const tpl = podTemplate(r);
        if (tpl) {
          const meta = (tpl.metadata ??= {}) as Obj;
          meta.labels = { ...((meta.labels as Record<string, string>) ?? {}), ...pairs };
        }
        // kustomize counts a StatefulSet's volume claim templates as templates too.
        for (const claim of (r.kind === 'StatefulSet' ? ((r.spec as Obj).volumeClaimTemplates as Obj[]) : undefined) ?? []) {
          const meta = (claim.metadata ??= {}) as Obj;
          meta.labels = { ...((meta.labels as Record<string, string>) ?? {}), ...pairs };
        }
      }
    }
  }
  for (const img of asList<Obj>(k.images, dir, 'images')) {
    for (const key of Object.keys(img)) if (!['name', 'newName', 'newTag', 'digest'].includes(key)) fail(dir, `images.${key} is not supported`);
    if (typeof img.name !== 'string') fail(dir, 'images[].name is required');
    for (const r of acc.resources) {
      for (const c of containersOf(r)) {
        if (typeof c.image !== 'string') continue;
        const ref = parseImage(c.image);
        if (ref.name !== img.name) continue;
        const name = typeof img.newName === 'string' ? img.newName : ref.name;
        if (typeof img.digest === 'string') c.image = `${name}@${img.digest}`;
        else if (img.newTag !== undefined) c.image = `${name}:${String(img.newTag)}`;
        else c.image = `${name}${ref.suffix}`;
      }
    }
  }
  return acc;
}

function loadKustomization(file: string): Obj {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  if (docs.length !== 1 || docs[0].errors.length) throw new KustomizeRenderError(`${file}: must be one YAML document${docs[0]?.errors.length ? `: ${docs[0].errors[0].message}` : ''}`);
  const k = docs[0].toJS() as unknown;
  if (!isObj(k)) throw new KustomizeRenderError(`${file}: must be a map`);
  return k;
}

function asList<T>(v: Json | undefined, dir: string, field: string): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(dir, `${field} must be a list`);
  return v as unknown as T[];
}

function stringMap(v: Obj, dir: string, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(v)) {
    if (typeof value !== 'string') fail(dir, `${field}.${key} must be a string (quote it in YAML)`);
    out[key] = value;
  }
  return out;
}

/** KEY=VALUE, split at the first `=`; kustomize takes the value literally. */
function splitPair(line: string, dir: string, where: string): [string, string] {
  const eq = line.indexOf('=');
  if (eq <= 0) fail(dir, `${where}: ${JSON.stringify(line)} is not KEY=VALUE (a bare KEY would be read from kustomize's own environment)`);
  return [line.slice(0, eq), line.slice(eq + 1)];
}

function generate(dir: string, kind: 'ConfigMap' | 'Secret', gen: Obj, hashByDefault: boolean, acc: Rendered): void {
  for (const key of Object.keys(gen)) {
    if (!['name', 'behavior', 'literals', 'envs', 'type', 'options'].includes(key)) fail(dir, `${kind} generator field \`${key}\` is not supported`);
  }
  if (typeof gen.name !== 'string') fail(dir, `${kind} generator needs a name`);
  if (kind === 'ConfigMap' && gen.type !== undefined) fail(dir, 'configMapGenerator has no type');
  const opts = isObj(gen.options) ? gen.options : {};
  for (const key of Object.keys(opts)) if (key !== 'disableNameSuffixHash') fail(dir, `generator options.${key} is not supported`);
  const hash = opts.disableNameSuffixHash === undefined ? hashByDefault : opts.disableNameSuffixHash !== true;

  const data: Record<string, string> = {};
  for (const lit of asList<string>(gen.literals, dir, `${gen.name}.literals`)) {
    if (typeof lit !== 'string') fail(dir, `${gen.name}.literals entries must be strings`);
    const [key, value] = splitPair(lit, dir, `${gen.name}.literals`);
    if (/^["']/.test(value)) fail(dir, `${gen.name}.literals: quoted values are not supported (${key})`);
    data[key] = value;
  }
  for (const envFile of asList<string>(gen.envs, dir, `${gen.name}.envs`)) {
    const text = readFileSync(path.resolve(dir, envFile), 'utf8');
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const [key, value] = splitPair(line, dir, `${envFile}:${i + 1}`);
      data[key] = value;
    });
  }
  const encoded = kind === 'Secret' ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) : data;

  const behavior = (gen.behavior as string | undefined) ?? 'create';
  const existing = acc.resources.find((r) => r.kind === kind && r.metadata.name === gen.name);
  if (behavior === 'create') {
    if (existing) fail(dir, `${kind} ${gen.name} already exists: use behavior merge or replace`);
    const r: Resource = { apiVersion: 'v1', kind, metadata: { name: gen.name }, ...(gen.type ? { type: gen.type as string } : {}), data: encoded };
    if (kind === 'Secret' && !gen.type) r.type = 'Opaque';
    acc.resources.push(r);
    acc.generated.set(r, { hash });
  } else if (behavior === 'merge' || behavior === 'replace') {
    if (!existing) fail(dir, `${kind} ${gen.name} does not exist to ${behavior}`);
    existing.data = behavior === 'merge' ? { ...((existing.data as Record<string, string>) ?? {}), ...encoded } : encoded;
    const g = acc.generated.get(existing);
    acc.generated.set(existing, { hash: g ? (opts.disableNameSuffixHash === undefined ? g.hash : hash) : hash });
  } else {
    fail(dir, `${gen.name}: behavior ${JSON.stringify(behavior)} is not supported`);
  }
}

function applyPatch(dir: string, p: Obj, acc: Rendered): void {
  for (const key of Object.keys(p)) if (!['path', 'patch', 'target'].includes(key)) fail(dir, `patches[].${key} is not supported`);
  let docs: unknown[];
  if (typeof p.path === 'string') docs = parseYaml(readFileSync(path.resolve(dir, p.path), 'utf8'), path.join(dir, p.path)).map((d) => d.toJS());
  else if (typeof p.patch === 'string') docs = parseYaml(p.patch, `${dir}: inline patch`).map((d) => d.toJS());
  else fail(dir, 'a patch needs `path` or `patch`');
  docs = docs.filter((d) => d !== null && d !== undefined);
  const where = typeof p.path === 'string' ? p.path : 'inline patch';
  if (docs.length === 0) fail(dir, `${where}: an empty patch`);
  // kustomize applies each document of a multi-document patch to the resource that document names; with
  // a `target` it refuses several documents, and so does this renderer.
  if (docs.length > 1 && p.target !== undefined) fail(dir, `${where}: several strategic-merge documents cannot share one target`);
  for (const patch of docs) applyPatchDocument(dir, where, patch, p.target, acc);
}

function applyPatchDocument(dir: string, where: string, patch: unknown, target: Json | undefined, acc: Rendered): void {
  if (!isObj(patch)) fail(dir, `${where}: only strategic-merge patches (a map) are supported, not JSON 6902 operation lists`);

  let kind: string | undefined;
  let name: string | undefined;
  if (target !== undefined) {
    if (!isObj(target)) fail(dir, `${where}: target must be a map`);
    for (const key of Object.keys(target)) if (!['kind', 'name'].includes(key)) fail(dir, `${where}: target.${key} is not supported (only kind and name)`);
    kind = target.kind as string;
    name = target.name as string;
  } else {
    kind = patch.kind as string | undefined;
    name = isObj(patch.metadata) ? (patch.metadata.name as string | undefined) : undefined;
  }
  if (!kind || !name) fail(dir, `${where}: cannot tell the target (needs kind and name)`);
  const targets = acc.resources.filter((r) => r.kind === kind && r.metadata.name === name);
  if (targets.length === 0) fail(dir, `${where}: no ${kind} named ${name} to patch`);
  for (const t of targets) {
    if (patch.$patch === 'delete') {
      acc.resources.splice(acc.resources.indexOf(t), 1);
      acc.generated.delete(t);
      continue;
    }
    const merged = strategicMerge(t as unknown as Obj, clone(patch), [], t.kind, dir) as unknown as Resource;
    // Identity (kind, name) cannot change through a patch.
    merged.kind = t.kind;
    merged.metadata.name = t.metadata.name;
    const i = acc.resources.indexOf(t);
    acc.resources[i] = merged;
    const g = acc.generated.get(t);
    if (g) {
      acc.generated.delete(t);
      acc.generated.set(merged, g);
    }
  }
}

/**
 * Merge keys of the built-in lists we patch (from the Kubernetes API's `patchMergeKey`). Lists without a
 * key, and every list of a custom resource (kustomize has no schema for them), are replaced whole.
 */
function mergeKey(field: string, kind: string, pathSoFar: string[]): string | undefined {
  if (kind.includes('.') || !BUILTIN_KINDS.has(kind)) return undefined;
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'ports':
      return kind === 'Service' && pathSoFar[0] === 'spec' && pathSoFar.length === 1 ? 'port' : 'containerPort';
    default:
      return undefined;
  }
}
const BUILTIN_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'Service', 'ConfigMap', 'Secret', 'ServiceAccount', 'PodDisruptionBudget', 'NetworkPolicy', 'HorizontalPodAutoscaler', 'Namespace', 'PersistentVolumeClaim']);

function strategicMerge(target: Json | undefined, patch: Json, at: string[], kind: string, dir: string): Json {
  if (isObj(patch)) {
    if (patch.$patch === 'replace') {
      delete patch.$patch;
      return patch;
    }
    if (patch.$patch !== undefined) fail(dir, `$patch: ${String(patch.$patch)} at ${at.join('.')} is not supported`);
    const out: Obj = isObj(target) ? { ...target } : {};
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete out[key];
      else out[key] = strategicMerge(out[key], value, [...at, key], kind, dir);
    }
    return out;
  }
  if (Array.isArray(patch)) {
    const field = at[at.length - 1];
    const key = mergeKey(field, kind, at.slice(0, -1));
    if (!key || !Array.isArray(target)) {
      if (patch.some((item) => isObj(item) && item.$patch !== undefined)) fail(dir, `$patch in list ${at.join('.')} without a merge key`);
      return patch;
    }
    // kustomize's order: the patch's items first, in the patch's order (merged into the original item
    // with the same key, if any), then the original items the patch does not mention, in their order.
    const out: Json[] = [];
    const mentioned = new Set<Json>();
    for (const item of patch) {
      if (!isObj(item) || item[key] === undefined) fail(dir, `list ${at.join('.')} items must carry their merge key \`${key}\``);
      mentioned.add(item[key]);
      if (item.$patch === 'delete') continue;
      const original = target.find((x) => isObj(x) && x[key] === item[key]);
      out.push(original === undefined ? item : strategicMerge(original, item, [...at, `[${String(item[key])}]`], kind, dir));
    }
    for (const x of target) if (!(isObj(x) && mentioned.has(x[key]))) out.push(x);
    return out;
  }
  return patch;
}

function podTemplate(r: Resource): Obj | undefined {
  const spec = r.spec as Obj | undefined;
  return isObj(spec) && isObj(spec.template) ? spec.template : undefined;
}

/** A loosely typed view of parsed YAML for callers that walk pod specs (tests). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = Record<string, any>;

/** Every pod spec in a resource (workloads' templates). */
export function podSpecsOf(r: Resource): Loose[] {
  if (!WORKLOAD_KINDS.has(r.kind)) return [];
  const tpl = podTemplate(r);
  return tpl && isObj(tpl.spec) ? [tpl.spec] : [];
}

/** Containers and init containers of a resource's pod spec. */
export function containersOf(r: Resource): Loose[] {
  return podSpecsOf(r).flatMap((s) => [...((s.containers as Obj[]) ?? []), ...((s.initContainers as Obj[]) ?? [])]);
}

/** `repo/name:tag@digest` → name (registry/repository) and what follows it. */
function parseImage(image: string): { name: string; suffix: string } {
  const at = image.indexOf('@');
  const beforeDigest = at >= 0 ? image.slice(0, at) : image;
  const slash = beforeDigest.lastIndexOf('/');
  const colon = beforeDigest.lastIndexOf(':');
  const nameEnd = colon > slash ? colon : beforeDigest.length;
  return { name: image.slice(0, nameEnd), suffix: image.slice(nameEnd) };
}

/** kustomize's alphabet for hash suffixes: hex with the characters that could spell words replaced. */
function hashSuffix(content: unknown): string {
  const hex = createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, 10);
  return hex.replace(/[013ae]/g, (c) => ({ '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' })[c]!);
}

const sortKeys = (o: Record<string, string>) => Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));

/** Suffixes generated names with their content hash and rewrites every reference to them. */
function finalizeNames(acc: Rendered): Resource[] {
  const renames = new Map<string, string>(); // `${kind}/${namespace}/${name}` → new name
  for (const [r, g] of acc.generated) {
    if (!g.hash) continue;
    const suffixed = `${r.metadata.name}-${hashSuffix({ kind: r.kind, name: r.metadata.name, type: r.type ?? null, data: sortKeys((r.data as Record<string, string>) ?? {}) })}`;
    renames.set(idOf(r), suffixed);
    r.metadata.name = suffixed;
  }
  const rename = (kind: string, ns: string | undefined, name: unknown): string | undefined =>
    typeof name === 'string' ? renames.get(`${kind}/${ns ?? '~'}/${name}`) : undefined;
  for (const r of acc.resources) {
    const ns = r.metadata.namespace;
    for (const spec of podSpecsOf(r)) {
      const fix = (holder: Obj | undefined, field: string, kind: 'ConfigMap' | 'Secret') => {
        if (!isObj(holder)) return;
        const to = rename(kind, ns, holder[field]);
        if (to) holder[field] = to;
      };
      for (const c of [...((spec.containers as Obj[]) ?? []), ...((spec.initContainers as Obj[]) ?? [])]) {
        for (const e of (c.envFrom as Obj[]) ?? []) {
          fix(e.configMapRef as Obj, 'name', 'ConfigMap');
          fix(e.secretRef as Obj, 'name', 'Secret');
        }
        for (const e of (c.env as Obj[]) ?? []) {
          const from = e.valueFrom as Obj | undefined;
          if (!isObj(from)) continue;
          fix(from.configMapKeyRef as Obj, 'name', 'ConfigMap');
          fix(from.secretKeyRef as Obj, 'name', 'Secret');
        }
      }
      for (const v of (spec.volumes as Obj[]) ?? []) {
        fix(v.configMap as Obj, 'name', 'ConfigMap');
        fix(v.secret as Obj, 'secretName', 'Secret');
        for (const s of ((v.projected as Obj | undefined)?.sources as Obj[]) ?? []) {
          fix(s.configMap as Obj, 'name', 'ConfigMap');
          fix(s.secret as Obj, 'name', 'Secret');
        }
      }
      for (const s of (spec.imagePullSecrets as Obj[]) ?? []) fix(s, 'name', 'Secret');
    }
  }
  return acc.resources;
}
