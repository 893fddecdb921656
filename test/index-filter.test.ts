import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clusteredSpec, clusteredVectors } from '../src/bench/ann';
import type { ItemMeta, SearchFilter } from '../src/index-builder/item-metadata';
import { MAPPING_FILE, type MappingFile, NamespacedIndex } from '../src/index-builder/namespaced-index';
import { compileIndexSettings } from '../src/index-builder/settings';

/**
 * Filtered search (tenant, deal, time) checked against exact filtered search: brute force over the
 * items that match. USearch's Node binding has no predicate callback, so the index over-fetches and
 * filters; these tests pin what that costs in recall and that no hit ever breaks the filter.
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
  const index = build();
  const count = (f: SearchFilter) => Array.from({ length: N }, (_, i) => i).filter((i) => matches(metaOf(i), f)).length;

  it.each<[string, number, SearchFilter]>([
    ['a big tenant (~49%)', 0.95, { tenant: 'acme' }],
    ['a small tenant (~10%)', 0.95, { tenant: 'globex' }],
    ['a list of tenants', 0.95, { tenant: ['globex', 't-3', 't-5'] }],
    ['a time range (~30%)', 0.95, { from: T0 + 100 * DAY, to: T0 + 210 * DAY }],
    ['tenant and time (~5%)', 0.9, { tenant: 'globex', from: T0, to: T0 + 180 * DAY }],
    ['one deal (~0.25%, 10 items)', 0.9, { dealId: 'D-17' }],
  ])('%s: counts exactly, every hit matches, recall@10 ≥ %s', (_name, minRecall, filter) => {
    const r = filteredRecall(index, filter);
    expect(r.matching).toBe(count(filter));
    expect(r.recall).toBeGreaterThanOrEqual(minRecall);
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
    const index = build();
    const saved = index.save(dir);
    const viewed = NamespacedIndex.open(dir, settings, saved.namespaces, 'view');
    const f: SearchFilter = { tenant: 'globex', from: T0 + 30 * DAY };
    for (let q = 0; q < 5; q++) {
      const v = queries.subarray(q * D, (q + 1) * D);
      expect(viewed.query(v, { k: K, namespace: 'notes', filter: f })).toEqual(index.query(v, { k: K, namespace: 'notes', filter: f }));
    }
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
    const saved = build().save(dir);
    const file = path.join(dir, MAPPING_FILE);
    const mapping = JSON.parse(readFileSync(file, 'utf8')) as MappingFile;
    mapping.namespaces.notes.meta!.tenant.pop();
    writeFileSync(file, JSON.stringify(mapping));
    expect(() => NamespacedIndex.open(dir, settings, saved.namespaces, 'view')).toThrow(/metadata in the mapping for .* is malformed/);
  });
});
