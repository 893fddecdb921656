import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotCorruptError } from '../src/index-builder/errors/snapshot-corrupt-error';
import { IndexThread } from '../src/index-builder/index-thread';
import { compileIndexSettings } from '../src/index-builder/settings';
import { MANIFEST_FILE, SnapshotStore, snapshotName } from '../src/index-builder/snapshot-store';

const settings = compileIndexSettings({ dimensions: 8 });

function unit(i: number): Float32Array {
  const v = new Float32Array(8);
  v[i % 8] = 1;
  v[(i + 3) % 8] = 0.1 * (1 + (i % 5));
  return v;
}

/** Writes a real snapshot of `n` vectors through an index thread, at log position `pos`. */
async function writeSnapshot(store: SnapshotStore, thread: IndexThread, n: number, pos: string) {
  await thread.upsertMany(
    Array.from({ length: n }, (_, i) => ({ id: `id-${i}`, vector: unit(i) })),
    'notes',
  );
  const pending = await store.begin();
  const saved = await thread.save(pending.tmpDir);
  return store.commit(pending, { count: saved.count, settings, logPosition: pos, namespaces: saved.namespaces });
}

describe('SnapshotStore', () => {
  let dir: string;
  let thread: IndexThread;
  beforeAll(async () => {
    thread = await IndexThread.create(settings);
  });
  afterAll(() => thread.close());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'index-snap-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('commits atomically with a manifest (version, count, settings, checksums, log position) and keeps the last N', async () => {
    const store = new SnapshotStore({ dir, keep: 2 });
    await store.init();
    const a = await writeSnapshot(store, thread, 10, '5-0');
    const b = await writeSnapshot(store, thread, 20, '9-1');
    const c = await writeSnapshot(store, thread, 30, '12-0');
    expect([a.version, b.version, c.version]).toEqual([1, 2, 3]);
    expect(readdirSync(dir).sort()).toEqual([snapshotName(2), snapshotName(3)]); // no temp folders left, oldest pruned
    const m = JSON.parse(readFileSync(join(c.dir, MANIFEST_FILE), 'utf8'));
    expect(m).toMatchObject({ format: 1, version: 3, count: 30, log_position: '12-0', settings: { dimensions: 8, metric: 'cos' } });
    expect(Object.keys(m.files).sort()).toEqual(['mapping.json', 'ns-notes.usearch', 'vec-notes.f16']);
    expect(m.namespaces.notes).toEqual({ file: 'ns-notes.usearch', count: 30, vectors: 'vec-notes.f16' });
    expect(m.files['vec-notes.f16'].bytes).toBe(31 * (8 * 2 + 1)); // keys below nextKey (31) × (8 f16 components + a presence byte)
    expect(m.files['ns-notes.usearch'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof m.created_at).toBe('string');

    const latest = await store.loadLatest();
    expect(latest.snapshot?.version).toBe(3);
    expect(latest.skipped).toEqual([]);
    // the log may only be trimmed up to the oldest kept snapshot
    expect(await store.retainedLogPosition()).toBe('9-1');
  });

  it('refuses a corrupt snapshot (checksum) with a clear error and falls back to the previous good one', async () => {
    const store = new SnapshotStore({ dir });
    await store.init();
    await writeSnapshot(store, thread, 10, '1-0');
    const bad = await writeSnapshot(store, thread, 10, '2-0');
    const file = join(bad.dir, 'ns-notes.usearch');
    const bytes = readFileSync(file);
    bytes[bytes.length - 100] ^= 0xff;
    writeFileSync(file, bytes);

    await expect(store.verify(bad.dir)).rejects.toThrow(SnapshotCorruptError);
    await expect(store.verify(bad.dir)).rejects.toThrow(/ns-notes\.usearch sha256 .* does not match manifest/);
    const latest = await store.loadLatest();
    expect(latest.snapshot?.version).toBe(1);
    expect(latest.skipped.map((e) => e.message)).toEqual([expect.stringMatching(/snapshot-000000000002 refused: .*corrupt/)]);
  });

  it('verifies the vector file like the index files: a corrupt or missing one refuses the snapshot', async () => {
    const store = new SnapshotStore({ dir, keep: 10 });
    await store.init();
    const good = await writeSnapshot(store, thread, 10, '1-0');
    const corrupt = await writeSnapshot(store, thread, 10, '2-0');
    const file = join(corrupt.dir, 'vec-notes.f16');
    const bytes = readFileSync(file);
    bytes[3] ^= 0x01;
    writeFileSync(file, bytes);
    const missing = await writeSnapshot(store, thread, 10, '3-0');
    rmSync(join(missing.dir, 'vec-notes.f16'));
    const unlisted = await writeSnapshot(store, thread, 10, '4-0');
    const manifest = JSON.parse(readFileSync(join(unlisted.dir, MANIFEST_FILE), 'utf8'));
    delete manifest.files['vec-notes.f16'];
    writeFileSync(join(unlisted.dir, MANIFEST_FILE), JSON.stringify(manifest));

    const latest = await store.loadLatest();
    expect(latest.snapshot?.version).toBe(good.version);
    expect(latest.skipped.map((e) => e.reason)).toEqual([
      'namespace notes: vec-notes.f16 has no checksum in the manifest',
      'vec-notes.f16 is missing (partial snapshot)',
      expect.stringMatching(/vec-notes\.f16 sha256 .* does not match manifest .*\(corrupt\)/),
    ]);
  });

  it('opens and serves a snapshot written before vector files (no `vectors` in the manifest)', async () => {
    const store = new SnapshotStore({ dir });
    await store.init();
    const snap = await writeSnapshot(store, thread, 10, '1-0');
    // rewrite it as the previous format wrote it: no vector file, no `vectors` entry
    rmSync(join(snap.dir, 'vec-notes.f16'));
    const manifest = JSON.parse(readFileSync(join(snap.dir, MANIFEST_FILE), 'utf8'));
    delete manifest.files['vec-notes.f16'];
    delete manifest.namespaces.notes.vectors;
    writeFileSync(join(snap.dir, MANIFEST_FILE), JSON.stringify(manifest));
    const latest = await store.loadLatest();
    expect(latest.snapshot?.version).toBe(snap.version);
    expect(latest.snapshot?.manifest.namespaces.notes.vectors).toBeUndefined();
    const reader = await IndexThread.open({ dir: snap.dir, settings, namespaces: latest.snapshot!.manifest.namespaces }, 'view');
    expect((await reader.search(unit(1), 1, 'notes'))[0].id).toBe('id-1');
    await reader.close();
  });

  it('refuses partial snapshots: a truncated file, a missing manifest, a malformed manifest', async () => {
    const store = new SnapshotStore({ dir });
    await store.init();
    const good = await writeSnapshot(store, thread, 10, '1-0');
    const truncated = await writeSnapshot(store, thread, 10, '2-0');
    truncateSync(join(truncated.dir, 'ns-notes.usearch'), 100);
    const noManifest = await writeSnapshot(store, thread, 10, '3-0');
    rmSync(join(noManifest.dir, MANIFEST_FILE));
    const garbled = join(dir, snapshotName(4));
    mkdirSync(garbled);
    writeFileSync(join(garbled, MANIFEST_FILE), '{"format":1,"version":4');

    const latest = await store.loadLatest();
    expect(latest.snapshot?.version).toBe(good.version);
    expect(latest.skipped.map((e) => e.reason)).toEqual([
      expect.stringMatching(/manifest\.json is malformed/),
      expect.stringMatching(/manifest\.json is missing \(partial snapshot\)/),
      expect.stringMatching(/ns-notes\.usearch has 100 bytes, manifest says \d+ \(truncated or partial\)/),
    ]);
    // the good one still opens and answers
    const reader = await IndexThread.open({ dir: good.dir, settings, namespaces: good.manifest.namespaces }, 'view');
    expect((await reader.search(unit(1), 1, 'notes'))[0].id).toBe('id-1');
    await reader.close();
  });

  it('reports no snapshot at all as null, and leaves the choice to the caller when every one is refused', async () => {
    const store = new SnapshotStore({ dir });
    await store.init();
    expect(await store.loadLatest()).toEqual({ snapshot: null, skipped: [] });
    const only = await writeSnapshot(store, thread, 5, '1-0');
    rmSync(join(only.dir, 'mapping.json'));
    const latest = await store.loadLatest();
    expect(latest.snapshot).toBeNull();
    expect(latest.skipped[0].message).toMatch(/mapping\.json is missing/);
  });

  it('cleans temporary folders a crashed writer left behind', async () => {
    mkdirSync(join(dir, '.tmp-snapshot-7-deadbeef'));
    const store = new SnapshotStore({ dir });
    await store.init();
    expect(readdirSync(dir)).toEqual([]);
    expect(() => new SnapshotStore({ dir, keep: 0 })).toThrow(/keepSnapshots: 0/);
  });
});
