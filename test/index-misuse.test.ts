import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { IndexTarget } from '../src/contracts/embedding';
import { ValidationError } from '../src/contracts/errors';
import { createIndexBuilder } from '../src/index-builder/builder';
import { BuilderLockError } from '../src/index-builder/errors/builder-lock-error';
import { IndexNotReadyError } from '../src/index-builder/errors/index-not-ready-error';
import { IndexOptionError } from '../src/index-builder/errors/index-option-error';
import { SnapshotCorruptError } from '../src/index-builder/errors/snapshot-corrupt-error';
import { createSearchService } from '../src/index-builder/search-service';
import { compileIndexSettings, isValidNamespace } from '../src/index-builder/settings';
import { MANIFEST_FILE, snapshotName } from '../src/index-builder/snapshot-store';
import { appendUpserts, indexLogKey } from '../src/index-builder/upsert-stream';
import { itemVector } from './fixtures/index-helpers';
import { testRedis, uniquePrefix } from './helpers/redis';

describe('index-builder misuse', () => {
  let redis: Redis;
  let dir: string;
  let prefix: string;
  beforeEach(() => {
    redis = testRedis();
    dir = mkdtempSync(join(tmpdir(), 'index-misuse-'));
    prefix = uniquePrefix('index-misuse');
  });
  afterEach(async () => {
    await redis.quit();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rejects bad settings with an error naming the option and the value', () => {
    expect(() => compileIndexSettings({ connectivity: 0 })).toThrow(new IndexOptionError('settings.connectivity', 0, 'an integer from 2 to 256'));
    expect(() => compileIndexSettings({ dtype: 'f8' as never })).toThrow(/settings\.dtype: "f8" \(expected one of f32, f16, i8\)/);
    expect(() => compileIndexSettings({ metric: 'cosine' as never })).toThrow(/settings\.metric/);
    expect(() => compileIndexSettings({ dimensions: 76.8 })).toThrow(/settings\.dimensions: 76\.8/);
    expect(() => compileIndexSettings({ expansionSearch: -1 })).toThrow(/settings\.expansionSearch/);
    expect(() => compileIndexSettings({ efSearch: 64 } as never)).toThrow(/settings\.efSearch: 64 \(expected one of the known settings/);
    expect(compileIndexSettings({})).toMatchObject({ dimensions: 768, metric: 'cos', dtype: 'f16', connectivity: 16, expansionAdd: 128, addThreads: 1 });
    expect(() => createIndexBuilder({ redis, prefix, snapshotDir: dir, snapshotEveryMs: 10 })).toThrow(/snapshotEveryMs: 10/);
    expect(() => createIndexBuilder({ redis, prefix: '', snapshotDir: dir })).toThrow(/option prefix/);
    expect(() => createIndexBuilder({ redis: {} as Redis, prefix, snapshotDir: dir })).toThrow(/option redis/);
    expect(() => createSearchService({ redis, prefix, snapshotDir: dir, mode: 'mmap' as never })).toThrow(/option mode: "mmap"/);
    expect(() => createSearchService({ redis, prefix, snapshotDir: dir, threads: 0 })).toThrow(/option threads: 0/);
    expect(() => createSearchService({ redis, prefix, snapshotDir: dir, exactFilterMax: -1 })).toThrow(/option exactFilterMax: -1/);
    expect(() => createSearchService({ redis, prefix, snapshotDir: dir, exactFilterMax: 1.5 })).toThrow(/option exactFilterMax: 1\.5/);
  });

  it('validates appended items before touching Redis, listing every bad one', async () => {
    const bad = [
      { id: '', vector: [1, 2] },
      { id: 'ok', vector: [1, Number.NaN] },
      { id: 'ns', namespace: 'no spaces', vector: [1, 2] },
      { id: 'dims', vector: [1, 2, 3] },
    ];
    const err = await appendUpserts(redis, prefix, bad, { dimensions: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues.map((i) => i.path)).toEqual(['[0].id', '[1].vector[1]', '[2].namespace', '[3].vector']);
    await expect(appendUpserts(redis, prefix, [])).rejects.toThrow(/must not be empty/);
    expect(await redis.xlen(indexLogKey(prefix))).toBe(0);
  });

  it('accepts exactly the namespaces and ids a producer may send: one rule, with the same messages', async () => {
    // Before, the index accepted `calls.v2` and any 512-character id while producers refused both.
    const bad = [
      { id: 'a', namespace: 'calls.v2', vector: [1, 2] },
      { id: 'has space', vector: [1, 2] },
      { id: 'x'.repeat(129), vector: [1, 2] },
    ];
    const err = await appendUpserts(redis, prefix, bad, { dimensions: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    const issues = (err as ValidationError).issues;
    expect(issues.map((i) => i.path)).toEqual(['[0].namespace', '[1].id', '[2].id']);
    expect(issues[0].message).toBe(IndexTarget.safeParse({ namespace: 'calls.v2', id: 'a' }).error!.issues[0].message);
    for (const ns of ['calls', 'call_notes', 'Deals-2026'])
      expect(IndexTarget.safeParse({ namespace: ns, id: 'C-1' }).success && isValidNamespace(ns)).toBe(true);
    for (const ns of ['calls.v2', '../etc', '', '-x']) expect(isValidNamespace(ns)).toBe(false);
  });

  it('skips malformed log entries and rejected vectors without failing their batch', async () => {
    const dims = 8;
    const builder = createIndexBuilder({ redis, prefix, snapshotDir: dir, settings: { dimensions: dims }, blockMs: 50 });
    const rejected: string[] = [];
    let malformed = 0;
    builder.events.on('applied', (e) => {
      rejected.push(...e.result.rejected.map((r) => r.id));
      malformed += e.malformed;
    });
    await builder.start();
    try {
      await redis.xadd(indexLogKey(prefix), '*', 'op', 'u', 'ns', 'default', 'id', 'short', 'v', Buffer.alloc(12));
      await redis.xadd(indexLogKey(prefix), '*', 'op', 'x', 'id', 'what');
      const ids = await appendUpserts(redis, prefix, [
        { id: 'zero', vector: new Float32Array(dims) },
        { id: 'good', vector: itemVector(1, dims) },
      ]);
      await builder.waitForApplied(ids[1]);
      expect(await builder.stats()).toMatchObject({ size: 1, namespaces: { default: 1 } });
      expect(rejected).toEqual(['zero']);
      expect(malformed).toBe(2);
    } finally {
      await builder.close();
    }
  });

  it('lets only one builder own a prefix', async () => {
    const a = createIndexBuilder({ redis, prefix, snapshotDir: dir, settings: { dimensions: 4 } });
    await a.start();
    try {
      const b = createIndexBuilder({ redis, prefix, snapshotDir: join(dir, 'other'), settings: { dimensions: 4 }, leaseWaitMs: 0 });
      await expect(b.start()).rejects.toThrow(BuilderLockError);
      await b.close();
    } finally {
      await a.close();
    }
  });

  it('refuses to start on changed storage settings or when every snapshot is refused', async () => {
    const a = createIndexBuilder({ redis, prefix, snapshotDir: dir, settings: { dimensions: 4 } });
    await a.start();
    await a.snapshot();
    await a.close();

    const b = createIndexBuilder({ redis, prefix, snapshotDir: dir, settings: { dimensions: 8 } });
    await expect(b.start()).rejects.toThrow(/option settings: .*"dimensions":8.*needs a rebuild/);
    await b.close();

    rmSync(join(dir, snapshotName(1), MANIFEST_FILE));
    const c = createIndexBuilder({ redis, prefix, snapshotDir: dir, settings: { dimensions: 4 } });
    await expect(c.start()).rejects.toThrow(SnapshotCorruptError);
    await expect(c.start()).rejects.toThrow(/every snapshot was refused; not starting empty/);
    await c.close();
  });

  it('answers queries with clear errors: not ready, wrong dimensions, bad k', async () => {
    mkdirSync(join(dir, snapshotName(1)));
    writeFileSync(join(dir, snapshotName(1), MANIFEST_FILE), 'not json');
    const search = createSearchService({ redis, prefix, snapshotDir: dir, pollMs: 0 });
    await search.start();
    try {
      const err = await search.search([1, 0, 0, 0], 3).catch((e) => e);
      expect(err).toBeInstanceOf(IndexNotReadyError);
      expect(err.message).toMatch(/no good snapshot .*manifest\.json is malformed/);

      const builder = createIndexBuilder({ redis, prefix, snapshotDir: join(dir, 'b'), settings: { dimensions: 4 } });
      await builder.start();
      await appendUpserts(redis, prefix, [{ id: 'a', vector: [1, 0, 0, 0] }]).then((ids) => builder.waitForApplied(ids[0]));
      await builder.close();
      const ok = createSearchService({ redis, prefix, snapshotDir: join(dir, 'b'), pollMs: 0 });
      await ok.start();
      await expect(ok.search([1, 0, 0], 3)).rejects.toThrow(/3 components, the index has 4/);
      await expect(ok.search([1, 0, 0, 0], 0)).rejects.toThrow(/k must be an integer from 1 to 1000/);
      await expect(ok.search([1, 0, 0, 0], 3, '../etc')).rejects.toThrow(/namespace/);
      expect((await ok.search([1, 0, 0, 0], 3, 'unknown')).hits).toEqual([]);
      expect((await ok.search([1, 0, 0, 0], 3)).hits.map((h) => h.id)).toEqual(['a']);
      await ok.close();
      await expect(ok.search([1, 0, 0, 0], 3)).rejects.toThrow(/closed/);
    } finally {
      await search.close();
    }
  });
});
