import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KustomizeRenderError, type Resource, renderKustomization } from '../ops/k8s/render';

const K8S = path.join(__dirname, '..', 'ops', 'k8s');
const OVERLAYS = ['dev', 'production', 'cluster'];

/** Writes files (path → content) into a fresh temporary directory. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-kustomize-'));
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), content);
  }
  return dir;
}

const DEPLOYMENT = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: example/web:1.0
          envFrom:
            - configMapRef: {name: settings}
          env:
            - name: A
              value: "1"
            - name: PASSWORD
              valueFrom:
                secretKeyRef: {name: creds, key: password}
          ports:
            - containerPort: 8080
`;

const STATEFULSET = `
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
        - name: app
          image: example/db:1.0
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
            - {name: key, mountPath: /var/run/secrets/key, readOnly: true}
      volumes:
        - name: tmp
          emptyDir: {}
        - name: key
          secret:
            secretName: creds
            items: [{key: key.pem, path: key.pem}]
            defaultMode: 288
`;

/** A base and an overlay using every feature the renderer implements. */
const FIXTURE: Record<string, string> = {
  'base/kustomization.yaml': `
resources: [web.yaml, db.yaml]
configMapGenerator:
  - name: settings
    envs: [settings.env]
`,
  'base/settings.env': '# comment\nX=1\nY=a=b\n',
  'base/web.yaml': DEPLOYMENT,
  'base/db.yaml': STATEFULSET,
  'overlay/kustomization.yaml': `
namespace: team
labels:
  - pairs: {env: prod}
    includeTemplates: true
resources: [../base]
configMapGenerator:
  - name: settings
    behavior: merge
    literals: [Y=2, Z=3]
secretGenerator:
  - name: creds
    literals: [password=hunter2]
images:
  - name: example/web
    newName: registry.local/web
    newTag: "2.0"
patches:
  - path: patch.yaml
`,
  'overlay/patch.yaml': `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: app
          env:
            - name: B
              value: "2"
            - name: A
              $patch: delete
---
# A second document: applied to the resource it names.
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  template:
    spec:
      containers:
        - name: app
          volumeMounts:
            - mountPath: /var/run/secrets/key
              $patch: delete
      volumes:
        - name: key
          $patch: delete
`,
};

const find = (docs: Resource[], kind: string, prefix: string) => docs.find((d) => d.kind === kind && d.metadata.name.startsWith(prefix))!;
const container = (d: Resource) => ((d.spec as any).template.spec.containers as any[])[0];

describe('ops/k8s/render.ts (the kustomize subset ops/k8s uses)', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const make = (files: Record<string, string>) => {
    const d = tree(files);
    dirs.push(d);
    return d;
  };

  it('renders resources, generators, merge, strategic-merge patches, namespace, labels and images', () => {
    const dir = make(FIXTURE);
    const docs = renderKustomization(path.join(dir, 'overlay'));
    const cm = find(docs, 'ConfigMap', 'settings-');
    const secret = find(docs, 'Secret', 'creds-');
    const web = find(docs, 'Deployment', 'web');
    expect(cm.data).toEqual({ X: '1', Y: '2', Z: '3' });
    expect(cm.metadata.name).toMatch(/^settings-[a-z0-9]{10}$/);
    expect(secret.data).toEqual({ password: Buffer.from('hunter2').toString('base64') });
    expect(docs.every((d) => d.metadata.namespace === 'team' && d.metadata.labels?.env === 'prod')).toBe(true);
    expect((web.spec as any).replicas).toBe(3);
    expect((web.spec as any).selector.matchLabels).toEqual({ app: 'web' }); // selectors untouched
    expect((web.spec as any).template.metadata.labels).toEqual({ app: 'web', env: 'prod' });
    const c = container(web);
    expect(c.image).toBe('registry.local/web:2.0');
    expect(c.envFrom[0].configMapRef.name).toBe(cm.metadata.name);
    expect(c.env.map((e: any) => e.name)).toEqual(['B', 'PASSWORD']); // kustomize's order: patch items first
    expect(c.env[1].valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
    expect(c.ports).toEqual([{ containerPort: 8080 }]);
    // The patch file's second document went to the StatefulSet it names.
    const db = find(docs, 'StatefulSet', 'db');
    expect(container(db).volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
    expect((db.spec as any).template.spec.volumes).toEqual([{ name: 'tmp', emptyDir: {} }]);
  });

  it('changes the generated name when the content changes, and not otherwise', () => {
    const files = (value: string) => ({ 'kustomization.yaml': `configMapGenerator:\n  - name: c\n    literals: [K=${value}]\n` });
    const name = (value: string) => renderKustomization(make(files(value)))[0].metadata.name;
    expect(name('1')).toBe(name('1'));
    expect(name('1')).not.toBe(name('2'));
  });

  it('deletes a resource with a `$patch: delete` patch', () => {
    const dir = make({
      'kustomization.yaml':
        'resources: [web.yaml]\npatches:\n  - patch: |\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata: {name: web}\n      $patch: delete\n',
      'web.yaml': DEPLOYMENT,
    });
    expect(renderKustomization(dir)).toEqual([]);
  });

  it.each([
    ['an unsupported field', 'commonLabels: {a: b}\n', /commonLabels.*not supported/],
    ['selector labels', 'labels:\n  - pairs: {a: b}\n    includeSelectors: true\n', /includeSelectors/],
    [
      'a JSON 6902 patch',
      'resources: [web.yaml]\npatches:\n  - target: {kind: Deployment, name: web}\n    patch: |\n      - op: replace\n        path: /spec/replicas\n        value: 2\n',
      /JSON 6902/,
    ],
    ['a remote resource', 'resources: [https://example.com/x.yaml]\n', /local path/],
    ['a patch of a missing resource', 'patches:\n  - patch: |\n      kind: Deployment\n      metadata: {name: nope}\n', /no Deployment named nope/],
    ['a bare env key (read from the environment)', 'configMapGenerator:\n  - name: c\n    literals: [HOME]\n', /not KEY=VALUE/],
    ['a duplicate resource', 'resources: [web.yaml, web.yaml]\n', /already registered/],
    [
      'several patch documents with one target',
      'resources: [web.yaml]\npatches:\n  - target: {kind: Deployment, name: web}\n    patch: |\n      kind: Deployment\n      metadata: {name: web}\n      ---\n      kind: Deployment\n      metadata: {name: web}\n',
      /cannot share one target/,
    ],
    ['a number kubectl reads as octal (0440)', 'resources: [mode.yaml]\n', /octal to kubectl.*288/],
  ])('refuses %s instead of rendering it wrongly', (_what, kustomization, message) => {
    const dir = make({
      'kustomization.yaml': kustomization,
      'web.yaml': DEPLOYMENT,
      'mode.yaml': STATEFULSET.replace('defaultMode: 288', 'defaultMode: 0440'),
    });
    expect(() => renderKustomization(dir)).toThrow(KustomizeRenderError);
    expect(() => renderKustomization(dir)).toThrow(message);
  });
});

/** Hash suffixes differ between kustomize and this renderer (same idea, different bytes hashed). */
function normalize(docs: Resource[]): Record<string, unknown> {
  const text = JSON.stringify(docs).replace(/\b([a-z][a-z-]*?)-[a-z0-9]{10}\b(?=")/g, '$1-HASH');
  const out: Record<string, unknown> = {};
  for (const d of JSON.parse(text) as Resource[]) out[`${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`] = d;
  return out;
}

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const haveKubectl = kubectl.status === 0;

describe('the renderer against the real kustomize (`kubectl kustomize`, when kubectl is installed)', () => {
  if (!haveKubectl) {
    it.skip('kubectl is not on PATH: cross-check skipped (the renderer tests above still run)', () => undefined);
    return;
  }
  const kustomize = (dir: string) =>
    parseAllDocuments(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' }))
      .map((d) => d.toJS() as Resource)
      .filter(Boolean);

  it.each(OVERLAYS)('renders overlays/%s exactly as kubectl kustomize does (modulo hash suffixes)', (overlay) => {
    const dir = path.join(K8S, 'overlays', overlay);
    const real = kustomize(dir);
    const ours = renderKustomization(dir);
    expect(Object.keys(normalize(ours)).sort()).toEqual(Object.keys(normalize(real)).sort());
    expect(normalize(ours)).toEqual(normalize(real));
  });

  it('renders the feature fixture above exactly as kubectl kustomize does', () => {
    const dir = tree(FIXTURE);
    try {
      const overlay = path.join(dir, 'overlay');
      expect(normalize(renderKustomization(overlay))).toEqual(normalize(kustomize(overlay)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
