import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clusteredSpec, clusteredVectors } from '../src/bench/ann';
import { createIndexBuilder } from '../src/index-builder/builder';
import type { ItemMeta, SearchFilter } from '../src/index-builder/item-metadata';
import { MAPPING_FILE, type MappingFile, NamespacedIndex } from '../src/index-builder/namespaced-index';
import { createSearchService } from '../src/index-builder/search-service';
import { compileIndexSettings } from '../src/index-builder/settings';
import { appendUpserts } from '../src/index-builder/upsert-stream';
import { testRedis, uniquePrefix } from './helpers/redis';

/**
 * Filtered search (tenant, deal, time) checked against exact filtered search: brute force over the
 * items that match. USearch's Node binding has no predicate callback, so a filter matching many items
 * over-fetches from the graph (these tests pin what that costs in recall and that no hit ever breaks
 * the filter), and one matching few items is answered exactly from the stored vectors (the vector file
 * of a snapshot): recall 1.0, through save, view, load and more upserts; a snapshot without a vector
 * file falls back to the over-fetch.
 */
const D = 32;
const N = 4_000;
const Q = 40;
const K = 10;
const settings = compileIndexSettings({ dimensions: D, dtype: 'f32' });
const { data, queries } = clusteredVectors(clusteredSpec('hard', N, D, Q, 7));
const T0 = Date.parse('2026-01-01T00:00:00Z');
const DAY = 86_400_000;

/** Deterministic metadata with skewed tenants (acme holds ~half), 400 deals, a year of timestamps; every 50th item carries none. */
function metaOf(i: number): ItemMeta | undefined {
  if (i % 50 === 49) return undefined;
  const tenant = i % 2 === 0 ? 'acme' : i % 10 === 1 ? 'globex' : `t-${i % 37}`;
  return { tenant, dealId: `D-${i % 400}`, ts: T0 + (i % 365) * DAY };
}

function matches(meta: ItemMeta | undefined, f: SearchFilter): boolean {
  if (!meta) return false;
  const any = (v: string | undefined, want: string | readonly string[] | undefined) =>
    want === undefined || (v !== undefined && (typeof want === 'string' ? [want] : want).includes(v));
  if (!any(meta.tenant, f.tenant) || !any(meta.dealId, f.dealId)) return false;
  if (f.from !== undefined || f.to !== undefined) {
    if (meta.ts === undefined || meta.ts < (f.from ?? -Infinity) || meta.ts >= (f.to ?? Infinity)) return false;
  }
  return true;
}

/** Exact filtered top-k by cosine, as ids. */
function exactFiltered(q: number, f: SearchFilter, k = K): string[] {
  const query = queries.subarray(q * D, (q + 1) * D);
  const scored: { id: string; s: number }[] = [];
  for (let i = 0; i < N; i++) {
    if (!matches(metaOf(i), f)) continue;
    let dot = 0;
    for (let j = 0; j < D; j++) dot += data[i * D + j] * query[j]; // unit vectors: dot = cosine
    scored.push({ id: `item-${i}`, s: dot });
  }
  return scored
    .sort((a, b) => b.s - a.s)
    .slice(0, k)
    .map((x) => x.id);
}

function build(withMeta = true): NamespacedIndex {
  const index = new NamespacedIndex(settings);
  index.apply({
    ops: Array.from({ length: N }, (_, i) => ({
      kind: 'upsert' as const,
      namespace: 'notes',
      id: `item-${i}`,
      ...(withMeta && metaOf(i) ? { meta: metaOf(i) } : {}),
    })),
    vectors: data,
  });
  return index;
}

/** The index with metadata, built once for the file (half a second of CPU a build): tests query it and save copies of it. */
const built = build();

/** Mean recall@k of filtered searches against exact filtered search, checking every hit against the filter. */
function filteredRecall(index: NamespacedIndex, f: SearchFilter): { recall: number; matching: number; short: number } {
  let hit = 0;
  let want = 0;
  let matching = -1;
  let short = 0;
  for (let q = 0; q < Q; q++) {
    const answer = index.query(queries.subarray(q * D, (q + 1) * D), { k: K, namespace: 'notes', filter: f });
    for (const h of answer.hits) expect(matches(metaOf(Number(h.id.slice(5))), f)).toBe(true);
    const truth = new Set(exactFiltered(q, f));
    want += truth.size;
    hit += answer.hits.filter((h) => truth.has(h.id)).length;
    if (answer.hits.length < truth.size) short++;
    matching = answer.matching!;
  }
  return { recall: want === 0 ? 1 : hit / want, matching, short };
}

describe('filtered search against exact filtered search', () => {
  const index = built;
  /** The same index answering every filter by over-fetching (the path for filters matching many items). */
  const overfetching = build();
  overfetching.exactFilterMax = 0;
  const count = (f: SearchFilter) => Array.from({ length: N }, (_, i) => i).filter((i) => matches(metaOf(i), f)).length;

  it.each<[string, number, SearchFilter]>([
    ['a big tenant (~49%)', 0.95, { tenant: 'acme' }],
    ['a small tenant (~10%)', 0.95, { tenant: 'globex' }],
    ['a list of tenants', 0.95, { tenant: ['globex', 't-3', 't-5'] }],
    ['a time range (~30%)', 0.95, { from: T0 + 100 * DAY, to: T0 + 210 * DAY }],
    ['tenant and time (~5%)', 0.9, { tenant: 'globex', from: T0, to: T0 + 180 * DAY }],
    ['one deal (~0.25%, 10 items)', 0.9, { dealId: 'D-17' }],
  ])('%s: counts exactly, every hit matches, over-fetch recall@10 ≥ %s, exact recall@10 = 1', (_name, minRecall, filter) => {
    const r = filteredRecall(overfetching, filter);
    expect(r.matching).toBe(count(filter));
    expect(r.recall).toBeGreaterThanOrEqual(minRecall);
    // at this size every one of these filters matches ≤ 2,048 items: the default answers them exactly
    const exact = filteredRecall(index, filter);
    expect(exact).toEqual({ recall: 1, matching: count(filter), short: 0 });
  });

  it('over-fetches a filter matching many items and answers one matching few exactly (threshold max(exactFilterMax, 32 × k))', () => {
    const before = { ...index.filterPaths };
    index.query(queries.subarray(0, D), { k: K, namespace: 'notes', filter: { tenant: 'acme' } }); // 2,000 items ≤ 2,048 (the default): exact
    index.query(queries.subarray(0, D), { k: K, namespace: 'notes', filter: { dealId: 'D-17' } });
    expect(index.filterPaths.exact - before.exact).toBe(2);
    index.exactFilterMax = 100;
    index.query(queries.subarray(0, D), { k: K, namespace: 'notes', filter: { tenant: 'acme' } }); // 1,960 > max(100, 320)
    index.query(queries.subarray(0, D), { k: K, namespace: 'notes', filter: { tenant: 't-3' } }); // ~98 items ≤ 320
    expect(index.filterPaths).toEqual({ exact: before.exact + 3, overfetch: before.overfetch + 1 });
    index.exactFilterMax = 0; // never exact
    index.query(queries.subarray(0, D), { k: K, namespace: 'notes', filter: { dealId: 'D-17' } });
    expect(index.filterPaths.overfetch).toBe(before.overfetch + 2);
    index.exactFilterMax = 2_048;
    expect(() => {
      index.exactFilterMax = -1;
    }).toThrow(/exactFilterMax must be a non-negative integer, got -1/);
  });

  it('an exact answer returns every matching item when they are at most k, with the distances the graph gives them', () => {
    for (let q = 0; q < Q; q++) {
      const v = queries.subarray(q * D, (q + 1) * D);
      const r = index.query(v, { k: K, namespace: 'notes', filter: { dealId: 'D-17' } });
      expect(r.matching).toBe(10);
      expect(r.hits.map((h) => h.id).sort()).toEqual(exactFiltered(q, { dealId: 'D-17' }).sort());
      for (let i = 1; i < r.hits.length; i++) expect(r.hits[i].distance).toBeGreaterThanOrEqual(r.hits[i - 1].distance);
      if (q === 0) {
        const graph = new Map(index.search(v, N, 'notes').map((h) => [h.id, h.distance]));
        for (const h of r.hits) {
          expect(h.distance).toBeCloseTo(graph.get(h.id)!, 5);
          expect(h.score).toBeCloseTo(1 - h.distance, 6);
        }
      }
    }
  });

  it('a filter nothing matches answers no hits at once (unknown tenant, empty range)', () => {
    const v = queries.subarray(0, D);
    expect(index.query(v, { k: K, namespace: 'notes', filter: { tenant: 'nobody' } })).toEqual({ hits: [], matching: 0 });
    expect(index.query(v, { k: K, namespace: 'notes', filter: { from: T0 + 400 * DAY } })).toEqual({ hits: [], matching: 0 });
  });

  it('items without metadata never match a filter, but are found without one', () => {
    const r = index.query(queries.subarray(0, D), {
      k: N,
      namespace: 'notes',
      filter: { tenant: ['acme', 'globex', ...Array.from({ length: 37 }, (_, i) => `t-${i}`)] },
    });
    expect(r.matching).toBe(N - N / 50);
    expect(r.hits.some((h) => Number(h.id.slice(5)) % 50 === 49)).toBe(false);
    expect(index.search(data.slice(49 * D, 50 * D), 1, 'notes')[0].id).toBe('item-49');
  });

  it('a re-upsert replaces the metadata, a delete forgets it', () => {
    const small = new NamespacedIndex(settings);
    const v = (i: number) => data.slice(i * D, (i + 1) * D);
    small.apply({
      ops: [
        { kind: 'upsert', namespace: 'n', id: 'a', meta: { tenant: 'acme' } },
        { kind: 'upsert', namespace: 'n', id: 'b', meta: { tenant: 'acme' } },
      ],
      vectors: new Float32Array([...v(0), ...v(1)]),
    });
    expect(small.query(v(0), { k: 5, namespace: 'n', filter: { tenant: 'acme' } }).matching).toBe(2);
    small.apply({
      ops: [
        { kind: 'upsert', namespace: 'n', id: 'a', meta: { tenant: 'globex' } },
        { kind: 'delete', namespace: 'n', id: 'b' },
      ],
      vectors: v(0),
    });
    expect(small.query(v(0), { k: 5, namespace: 'n', filter: { tenant: 'acme' } })).toEqual({ hits: [], matching: 0 });
    expect(small.query(v(0), { k: 5, namespace: 'n', filter: { tenant: 'globex' } }).hits.map((h) => h.id)).toEqual(['a']);
    small.apply({ ops: [{ kind: 'upsert', namespace: 'n', id: 'a' }], vectors: v(0) }); // no metadata: none left
    expect(small.query(v(0), { k: 5, namespace: 'n', filter: { tenant: 'globex' } }).matching).toBe(0);
  });

  it('without a namespace, filtered hits from every namespace are merged and matching is summed', () => {
    const two = new NamespacedIndex(settings);
    const rows = (from: number, to: number) => data.slice(from * D, to * D);
    two.apply({
      ops: Array.from({ length: 100 }, (_, i) => ({ kind: 'upsert' as const, namespace: 'x', id: `item-${i}`, meta: { tenant: 'acme' } })),
      vectors: rows(0, 100),
    });
    two.apply({
      ops: Array.from({ length: 100 }, (_, i) => ({
        kind: 'upsert' as const,
        namespace: 'y',
        id: `item-${100 + i}`,
        meta: { tenant: i < 50 ? 'acme' : 'globex' },
      })),
      vectors: rows(100, 200),
    });
    const r = two.query(queries.subarray(0, D), { k: 200, filter: { tenant: 'acme' } });
    expect(r.matching).toBe(150);
    expect(r.hits.length).toBe(150);
    expect(new Set(r.hits.map((h) => h.namespace))).toEqual(new Set(['x', 'y']));
    for (let i = 1; i < r.hits.length; i++) expect(r.hits[i].distance).toBeGreaterThanOrEqual(r.hits[i - 1].distance);
  });
});

describe('filter metadata in snapshots', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-filter-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('survives save and view: the same filtered answers from the memory-mapped copy', () => {
    const index = built;
    const saved = index.save(dir);
    const viewed = NamespacedIndex.open(dir, settings, saved.namespaces, 'view');
    const f: SearchFilter = { tenant: 'globex', from: T0 + 30 * DAY };
    for (let q = 0; q < 5; q++) {
      const v = queries.subarray(q * D, (q + 1) * D);
      expect(viewed.query(v, { k: K, namespace: 'notes', filter: f })).toEqual(index.query(v, { k: K, namespace: 'notes', filter: f }));
    }
  });

  it('one deal through save and view: answered exactly from the vector file, recall@10 = 1.0', () => {
    const saved = built.save(dir);
    expect(saved.namespaces.notes.vectors).toBe('vec-notes.f32');
    expect(existsSync(path.join(dir, 'vec-notes.f32'))).toBe(true);
    const viewed = NamespacedIndex.open(dir, settings, saved.namespaces, 'view');
    const r = filteredRecall(viewed, { dealId: 'D-17' });
    expect(r).toEqual({ recall: 1, matching: 10, short: 0 });
    expect(viewed.filterPaths).toEqual({ exact: Q, overfetch: 0 });
    // a tenant list of ~5% also fits under the threshold: exact, complete
    expect(filteredRecall(viewed, { tenant: ['t-3', 't-5'] }).recall).toBe(1);
  });

  it('after a restart from a snapshot (load) plus more upserts, re-upserts and deletes, the next snapshot is complete', () => {
    const first = new NamespacedIndex(settings);
    const half = N / 2;
    const upsert = (index: NamespacedIndex, from: number, to: number) =>
      index.apply({
        ops: Array.from({ length: to - from }, (_, j) => ({ kind: 'upsert' as const, namespace: 'notes', id: `item-${from + j}`, meta: metaOf(from + j) })),
        vectors: data.slice(from * D, to * D),
      });
    upsert(first, 0, half);
    const one = path.join(dir, 'one');
    const two = path.join(dir, 'two');
    for (const d of [one, two]) mkdirSync(d);
    const saved1 = first.save(one);
    // the builder restarts: it loads the snapshot (vectors read back from its vector file), then applies more
    const loaded = NamespacedIndex.open(one, settings, saved1.namespaces, 'load');
    upsert(loaded, half, N);
    // a re-upsert moves item-17 to another vector; a delete removes item-417
    const moved = data.slice(1 * D, 2 * D);
    loaded.apply({
      ops: [
        { kind: 'upsert', namespace: 'notes', id: 'item-17', meta: metaOf(17) },
        { kind: 'delete', namespace: 'notes', id: 'item-417' },
      ],
      vectors: moved,
    });
    const saved2 = loaded.save(two);
    const viewed = NamespacedIndex.open(two, settings, saved2.namespaces, 'view');
    for (let q = 0; q < Q; q++) {
      const v = queries.subarray(q * D, (q + 1) * D);
      const r = viewed.query(v, { k: K, namespace: 'notes', filter: { dealId: 'D-17' } });
      // 10 items (half from before the restart, half after), minus the deleted one
      expect(r.matching).toBe(9);
      expect(r.hits.map((h) => h.id).sort()).toEqual(
        exactFiltered(q, { dealId: 'D-17' })
          .filter((id) => id !== 'item-417')
          .sort(),
      );
      // item-17 is scored by its new vector
      let dot = 0;
      let qq = 0;
      let mm = 0;
      for (let j = 0; j < D; j++) {
        dot += moved[j] * v[j];
        qq += v[j] * v[j];
        mm += moved[j] * moved[j];
      }
      expect(r.hits.find((h) => h.id === 'item-17')!.distance).toBeCloseTo(1 - dot / Math.sqrt(qq * mm), 5);
    }
    expect(viewed.filterPaths).toEqual({ exact: Q, overfetch: 0 });
  });

  it('a snapshot without a vector file (written before them) still answers rare filters, by over-fetching', () => {
    const saved = built.save(dir);
    rmSync(path.join(dir, saved.namespaces.notes.vectors!));
    const { vectors: _gone, ...old } = saved.namespaces.notes;
    const viewed = NamespacedIndex.open(dir, settings, { notes: old }, 'view');
    const r = filteredRecall(viewed, { dealId: 'D-17' }); // every hit matches (checked inside)
    expect(r.matching).toBe(10);
    expect(r.recall).toBeGreaterThanOrEqual(0.9);
    expect(viewed.filterPaths).toEqual({ exact: 0, overfetch: Q });
    // loaded by a builder, it stores the vectors of what is upserted from then on: a deal made only of
    // new upserts is exact, one that includes items from before still over-fetches (no stored vector)
    const loaded = NamespacedIndex.open(dir, settings, { notes: old }, 'load');
    loaded.apply({
      ops: [0, 1, 2].map((i) => ({ kind: 'upsert' as const, namespace: 'notes', id: `new-${i}`, meta: { dealId: 'D-new' } })),
      vectors: data.slice(0, 3 * D),
    });
    const two = path.join(dir, 'two');
    mkdirSync(two);
    const again = NamespacedIndex.open(two, settings, loaded.save(two).namespaces, 'view');
    const fresh = again.query(queries.subarray(0, D), { k: K, namespace: 'notes', filter: { dealId: 'D-new' } });
    expect(fresh.hits.map((h) => h.id).sort()).toEqual(['new-0', 'new-1', 'new-2']);
    expect(again.filterPaths).toEqual({ exact: 1, overfetch: 0 });
    expect(again.query(queries.subarray(0, D), { k: K, namespace: 'notes', filter: { dealId: 'D-17' } }).hits.length).toBeGreaterThan(0);
    expect(again.filterPaths).toEqual({ exact: 1, overfetch: 1 });
  });

  it('a mapping written before filters (no meta) opens: unfiltered search works, filtered finds nothing', () => {
    const saved = build(false).save(dir);
    const mapping = JSON.parse(readFileSync(path.join(dir, MAPPING_FILE), 'utf8')) as MappingFile;
    expect(mapping.namespaces.notes.meta).toBeUndefined(); // the old format exactly
    const viewed = NamespacedIndex.open(dir, settings, saved.namespaces, 'view');
    expect(viewed.search(data.slice(0, D), 1, 'notes')[0].id).toBe('item-0');
    expect(viewed.query(queries.subarray(0, D), { k: K, namespace: 'notes', filter: { tenant: 'acme' } })).toEqual({ hits: [], matching: 0 });
  });

  it('a malformed metadata record refuses the mapping', () => {
    const saved = built.save(dir);
    const file = path.join(dir, MAPPING_FILE);
    const mapping = JSON.parse(readFileSync(file, 'utf8')) as MappingFile;
    mapping.namespaces.notes.meta!.tenant.pop();
    writeFileSync(file, JSON.stringify(mapping));
    expect(() => NamespacedIndex.open(dir, settings, saved.namespaces, 'view')).toThrow(/metadata in the mapping for .* is malformed/);
  });
});

describe('rare filters through the builder and a search replica (real Redis)', () => {
  const redis = testRedis();
  let dir: string;
  const closers: (() => Promise<unknown>)[] = [];
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-filter-builder-'));
  });
  afterEach(async () => {
    while (closers.length) await closers.pop()!().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  afterAll(() => redis.quit());

  it('a builder restarted from a snapshot writes a complete vector file: one deal answered exactly, every matching item returned', async () => {
    const prefix = uniquePrefix('filter-exact');
    const opts = { redis, prefix, snapshotDir: dir, settings: { dimensions: D }, snapshotEveryMs: 3_600_000, blockMs: 50 } as const;
    const upserts = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, j) => {
        const i = from + j;
        return { id: `item-${i}`, namespace: 'notes', vector: data.slice(i * D, (i + 1) * D), ...metaOf(i) };
      });
    const first = createIndexBuilder(opts);
    closers.push(() => first.close());
    await first.start();
    const ids = await appendUpserts(redis, prefix, upserts(0, N / 2));
    await first.waitForApplied(ids[ids.length - 1]);
    await first.close(); // writes a final snapshot

    const second = createIndexBuilder(opts); // restarts from that snapshot (vectors read back from its vector file)
    closers.push(() => second.close());
    await second.start();
    const more = await appendUpserts(redis, prefix, upserts(N / 2, N));
    await second.waitForApplied(more[more.length - 1]);
    const ref = await second.snapshot();
    expect(ref.manifest.namespaces.notes.vectors).toBe('vec-notes.f16');
    expect(ref.manifest.files['vec-notes.f16'].bytes).toBe((N + 1) * (D * 2 + 1)); // keys 1..N and key 0, 2 bytes a component, a presence byte

    const search = createSearchService({ redis, prefix, snapshotDir: dir, pollMs: 0 });
    closers.push(() => search.close());
    await search.start();
    expect(search.snapshotVersion).toBe(ref.version);
    for (let q = 0; q < Q; q++) {
      const r = await search.search(queries.slice(q * D, (q + 1) * D), K, 'notes', { dealId: 'D-17' }); // 5 items before the restart, 5 after
      expect(r.matching).toBe(10);
      expect(r.hits.map((h) => h.id).sort()).toEqual(exactFiltered(q, { dealId: 'D-17' }).sort());
    }
    // the replica's index answered them from the vector file
    const viewed = NamespacedIndex.open(ref.dir, compileIndexSettings({ dimensions: D }), ref.manifest.namespaces, 'view');
    viewed.query(queries.subarray(0, D), { k: K, namespace: 'notes', filter: { dealId: 'D-17' } });
    expect(viewed.filterPaths).toEqual({ exact: 1, overfetch: 0 });
  }, 120_000);
});
