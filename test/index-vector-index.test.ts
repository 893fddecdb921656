import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NamespacedIndex } from '../src/index-builder/namespaced-index';
import { compileIndexSettings } from '../src/index-builder/settings';
import { VectorIndex } from '../src/index-builder/vector-index';

const settings = compileIndexSettings({ dimensions: 4 });
const v = (...xs: number[]) => new Float32Array(xs);

describe('VectorIndex (in-process wrapper)', () => {
  it('maps string ids to keys, replaces on re-upsert and deletes', () => {
    const index = new VectorIndex(settings);
    const r = index.upsertMany([
      { id: 'call-1', vector: v(1, 0, 0, 0) },
      { id: 'call-2', vector: v(0, 1, 0, 0) },
      { id: 'call-3', vector: v(0, 0, 1, 0) },
    ]);
    expect(r).toEqual({ applied: 3, rejected: [] });
    expect(index.size).toBe(3);
    expect(index.search(v(1, 0.1, 0, 0), 1)[0]).toMatchObject({ id: 'call-1' });
    expect(index.search(v(1, 0, 0, 0), 1)[0].score).toBeCloseTo(1, 5);

    // re-upsert moves call-1 to where call-3 was: size unchanged, old position gone
    index.upsertMany([{ id: 'call-1', vector: v(0, 0, 1, 0.01) }]);
    expect(index.size).toBe(3);
    expect(index.search(v(1, 0, 0, 0), 3).find((h) => h.id === 'call-1')!.score).toBeLessThan(0.1);
    expect(
      index
        .search(v(0, 0, 1, 0), 2)
        .map((h) => h.id)
        .sort(),
    ).toEqual(['call-1', 'call-3']);

    expect(index.deleteMany(['call-3', 'nope', 'call-3'])).toBe(1);
    expect(index.size).toBe(2);
    expect(index.has('call-3')).toBe(false);
    expect(index.search(v(0, 0, 1, 0), 5).map((h) => h.id)).not.toContain('call-3');

    // a deleted id comes back with a fresh key; keys are never reused
    index.upsertMany([{ id: 'call-3', vector: v(0, 0, 0, 1) }]);
    const m = index.exportMapping();
    expect(new Set(m.keys).size).toBe(m.keys.length);
    expect(m.keys[m.ids.indexOf('call-3')]).toBe(m.nextKey - 1);
  });

  it('keeps the last of duplicate ids in one batch and rejects bad rows without failing the batch', () => {
    const index = new VectorIndex(settings);
    const r = index.upsertMany([
      { id: 'a', vector: v(1, 0, 0, 0) },
      { id: 'bad', vector: v(NaN, 0, 0, 0) },
      { id: 'zero', vector: v(0, 0, 0, 0) },
      { id: 'short', vector: [1, 2] },
      { id: 'a', vector: v(0, 1, 0, 0) },
    ]);
    expect(r.applied).toBe(1);
    expect(r.rejected.map((x) => x.id).sort()).toEqual(['bad', 'short', 'zero']);
    expect(r.rejected.find((x) => x.id === 'bad')!.reason).toMatch(/finite/);
    expect(index.search(v(0, 1, 0, 0), 1)[0]).toMatchObject({ id: 'a' });
  });

  it('saves and reopens (load: writable, view: read-only) with its id mapping', () => {
    const dir = mkdtempSync(join(tmpdir(), 'index-vi-'));
    try {
      const set = new NamespacedIndex(settings);
      set.apply({
        ops: [
          { kind: 'upsert', namespace: 'deals', id: 'd1' },
          { kind: 'upsert', namespace: 'call_notes', id: 'c1' },
          { kind: 'upsert', namespace: 'call_notes', id: 'c2' },
          { kind: 'delete', namespace: 'call_notes', id: 'c2' },
        ],
        vectors: v(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0),
      });
      const saved = set.save(dir);
      expect(saved.count).toBe(2);
      const viewed = NamespacedIndex.open(dir, settings, saved.namespaces, 'view');
      expect(viewed.namespaceSizes()).toEqual({ deals: 1, call_notes: 1 });
      expect(viewed.search(v(1, 0, 0, 0), 5, 'call_notes').map((h) => h.id)).toEqual(['c1']);
      // no namespace: every namespace searched, merged by distance
      expect(viewed.search(v(1, 0, 0, 0), 5).map((h) => `${h.namespace}/${h.id}`)).toEqual(['deals/d1', 'call_notes/c1']);
      expect(() => viewed.apply({ ops: [{ kind: 'delete', namespace: 'deals', id: 'd1' }], vectors: v() })).toThrow(/read-only/);

      const loaded = NamespacedIndex.open(dir, settings, saved.namespaces, 'load');
      loaded.apply({ ops: [{ kind: 'upsert', namespace: 'deals', id: 'd2' }], vectors: v(0, 0, 0, 1) });
      expect(loaded.namespaceSizes()).toEqual({ deals: 2, call_notes: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
