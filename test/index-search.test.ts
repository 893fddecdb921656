import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createIndexBuilder, type IndexBuilder } from '../src/index-builder/builder';
import { SnapshotCorruptError } from '../src/index-builder/errors/snapshot-corrupt-error';
import { createSearchService, type SearchService } from '../src/index-builder/search-service';
import { MANIFEST_FILE, snapshotName } from '../src/index-builder/snapshot-store';
import { appendUpserts, snapshotChannel } from '../src/index-builder/upsert-stream';
import { itemVector } from './fixtures/index-helpers';
import { testRedis, uniquePrefix } from './helpers/redis';

const dims = 64;
const items = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => ({ id: `msg-${from + i}`, namespace: 'messages', vector: itemVector(from + i, dims) }));

describe('SearchService (hot swap, refusal of bad snapshots)', () => {
  let redis: Redis;
  let dir: string;
  let prefix: string;
  let builder: IndexBuilder;
  let search: SearchService;

  beforeAll(async () => {
    redis = testRedis();
    dir = mkdtempSync(join(tmpdir(), 'index-search-'));
    prefix = uniquePrefix('index-search');
    builder = createIndexBuilder({
      redis,
      prefix,
      snapshotDir: dir,
      settings: { dimensions: dims },
      snapshotEveryMs: 3_600_000,
      blockMs: 50,
      keepSnapshots: 5,
    });
    await builder.start();
    search = createSearchService({ redis, prefix, snapshotDir: dir, pollMs: 0, threads: 2 });
  });
  afterAll(async () => {
    await search.close().catch(() => {});
    await builder.close().catch(() => {});
    await redis.quit();
    rmSync(dir, { recursive: true, force: true });
  });

  async function publishBatch(from: number, to: number): Promise<number> {
    const ids = await appendUpserts(redis, prefix, items(from, to));
    await builder.waitForApplied(ids[ids.length - 1]);
    return (await builder.snapshot()).version;
  }

  function swappedTo(version: number): Promise<void> {
    return new Promise((resolve) => {
      const off = search.events.on('swapped', (e) => {
        if (e.to >= version) {
          off();
          resolve();
        }
      });
      if ((search.snapshotVersion ?? 0) >= version) resolve();
    });
  }

  it('is not ready before a snapshot exists, then serves the first one', async () => {
    await search.start();
    expect(search.ready).toBe(false);
    await expect(search.search(itemVector(1, dims), 5)).rejects.toThrow(/not ready/);
    const v1 = await publishBatch(0, 2_000);
    await swappedTo(v1);
    const r = await search.search(itemVector(7, dims), 5, 'messages');
    expect(r.snapshotVersion).toBe(v1);
    expect(r.hits[0]).toMatchObject({ id: 'msg-7', namespace: 'messages' });
  });

  it('hot-swaps under concurrent queries with no error and no empty result', async () => {
    let stop = false;
    const errors: unknown[] = [];
    let empty = 0;
    let queries = 0;
    const seen = new Set<number>();
    const loop = async (worker: number) => {
      let lastVersion = 0;
      for (let i = worker; !stop; i += 4) {
        try {
          const r = await search.search(itemVector(i % 2_000, dims), 10, 'messages');
          queries++;
          if (r.hits.length === 0) empty++;
          if (r.snapshotVersion < lastVersion) errors.push(new Error(`went back from ${lastVersion} to ${r.snapshotVersion}`));
          lastVersion = r.snapshotVersion;
          seen.add(r.snapshotVersion);
        } catch (err) {
          errors.push(err);
        }
      }
    };
    const loops = [0, 1, 2, 3].map(loop);
    const before = search.snapshotVersion!;
    for (let round = 1; round <= 3; round++) {
      const v = await publishBatch(2_000 * round, 2_000 * round + 1_000);
      await swappedTo(v);
    }
    await new Promise((r) => setTimeout(r, 100));
    stop = true;
    await Promise.all(loops);
    expect(errors).toEqual([]);
    expect(empty).toBe(0);
    expect(queries).toBeGreaterThan(100);
    expect(search.snapshotVersion).toBe(before + 3);
    expect(seen.size).toBeGreaterThanOrEqual(2);
    const r = await search.search(itemVector(6_500, dims), 1, 'messages');
    expect(r.hits[0].id).toBe('msg-6500');
  });

  it('refuses a corrupt and a partial snapshot with a clear error while the last good one keeps serving', async () => {
    const good = search.snapshotVersion!;
    const refused: { version: number | null; error: Error }[] = [];
    search.events.on('refused', (e) => refused.push(e));

    // corrupt: a copy of the good snapshot as the next version with one byte flipped in its index file
    const corrupt = join(dir, snapshotName(good + 1));
    cpSync(join(dir, snapshotName(good)), corrupt, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(corrupt, MANIFEST_FILE), 'utf8'));
    manifest.version = good + 1;
    writeFileSync(join(corrupt, MANIFEST_FILE), JSON.stringify(manifest));
    const file = join(corrupt, 'ns-messages.usearch');
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0x5a;
    writeFileSync(file, bytes);
    // partial: index files without a manifest
    const partial = join(dir, snapshotName(good + 2));
    cpSync(join(dir, snapshotName(good)), partial, { recursive: true });
    rmSync(join(partial, MANIFEST_FILE));

    await redis.publish(snapshotChannel(prefix), JSON.stringify({ version: good + 2 }));
    await search.refresh(); // joins the refresh the announcement started
    expect(search.snapshotVersion).toBe(good);
    expect(refused.map((e) => e.version)).toEqual([good + 2, good + 1]);
    expect(refused.every((e) => e.error instanceof SnapshotCorruptError)).toBe(true);
    expect(refused[0].error.message).toMatch(/manifest\.json is missing \(partial snapshot\)/);
    expect(refused[1].error.message).toMatch(/ns-messages\.usearch sha256 .* does not match manifest .*corrupt/);
    expect(search.lastError).toBe(refused[1].error);
    const r = await search.search(itemVector(3, dims), 3, 'messages');
    expect(r).toMatchObject({ snapshotVersion: good, hits: [{ id: 'msg-3' }, {}, {}] });

    // the builder's next snapshot numbers past the refused ones and is served
    const next = await publishBatch(9_000, 9_010);
    expect(next).toBe(good + 3);
    await swappedTo(next);
    expect((await search.search(itemVector(9_005, dims), 1, 'messages')).hits[0].id).toBe('msg-9005');
  });
});
