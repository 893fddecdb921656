import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createIndexBuilder, type IndexBuilder } from '../src/index-builder/builder';
import { createSearchService, type SearchService } from '../src/index-builder/search-service';
import { appendDeletes, appendUpserts, indexLogKey } from '../src/index-builder/upsert-stream';
import { itemVector, spawnTsChild, waitForLine } from './fixtures/index-helpers';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';

const dims = 32;
const items = (from: number, to: number, generation = 0) =>
  Array.from({ length: to - from }, (_, i) => ({ id: `item-${from + i}`, namespace: 'call_notes', vector: itemVector(from + i, dims, generation) }));

describe('IndexBuilder (real Redis, real USearch)', () => {
  let redis: Redis;
  let dir: string;
  let prefix: string;
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeEach(() => {
    redis = testRedis();
    dir = mkdtempSync(join(tmpdir(), 'index-builder-'));
    prefix = uniquePrefix('index-builder');
  });
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => {});
    await redis.quit();
    rmSync(dir, { recursive: true, force: true });
  });

  function builder(extra: Partial<Parameters<typeof createIndexBuilder>[0]> = {}): IndexBuilder {
    const b = createIndexBuilder({ redis, prefix, snapshotDir: dir, settings: { dimensions: dims }, snapshotEveryMs: 3_600_000, blockMs: 50, ...extra });
    cleanup.push(() => b.close());
    return b;
  }

  async function reader(): Promise<SearchService> {
    const s = createSearchService({ redis, prefix, snapshotDir: dir, pollMs: 0 });
    cleanup.push(() => s.close());
    await s.start();
    return s;
  }

  /** The id whose stored vector is nearest to `vector` in call_notes, via a search replica. */
  async function nearest(search: SearchService, vector: Float32Array) {
    return (await search.search(vector, 1, 'call_notes')).hits[0];
  }

  it('resumes after a crash from the latest snapshot plus the log after it: no acknowledged upsert is lost', async () => {
    const { child, lines } = spawnTsChild(join(__dirname, 'fixtures/index-builder-child.ts'), [
      JSON.stringify({ url: testRedisUrl(), prefix, snapshotDir: dir, dimensions: dims }),
    ]);
    cleanup.push(async () => child.kill('SIGKILL'));
    await waitForLine<{ ready?: boolean }>(lines, (m) => m.ready === true);

    // Acknowledged, applied and snapshotted.
    const first = await appendUpserts(redis, prefix, items(0, 300));
    await waitForLine<{ position?: string }>(lines, (m) => m.position === first[first.length - 1]);
    child.send('snapshot');
    await waitForLine<{ snapshot?: number }>(lines, (m) => m.snapshot === 1);

    // Acknowledged and applied in memory, but not snapshotted: 200 new, 20 re-upserted, 10 deleted.
    await appendUpserts(redis, prefix, items(300, 500));
    await appendUpserts(redis, prefix, items(0, 20, 1));
    const last = await appendDeletes(
      redis,
      prefix,
      items(20, 30).map(({ id, namespace }) => ({ id, namespace })),
    );
    await waitForLine<{ position?: string }>(lines, (m) => m.position === last[last.length - 1]);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    // Acknowledged while no builder runs.
    const late = await appendUpserts(redis, prefix, items(500, 550));

    const b = builder({ leaseWaitMs: 10_000 });
    await b.start(); // waits for the dead builder's lease to expire, then loads snapshot 1
    await b.waitForApplied(late[late.length - 1], 20_000);
    const snap = await b.snapshot();
    expect(snap.manifest.count).toBe(550 - 10);
    expect(snap.manifest.log_position).toBe(late[late.length - 1]);

    const search = await reader();
    expect(search.snapshotVersion).toBe(snap.version);
    for (let i = 0; i < 550; i++) {
      const hit = await nearest(search, itemVector(i, dims, i < 20 ? 1 : 0));
      if (i >= 20 && i < 30) expect(hit.id).not.toBe(`item-${i}`);
      else {
        expect(hit.id).toBe(`item-${i}`);
        expect(hit.score).toBeCloseTo(1, 4);
      }
    }
    // the re-upserted ones no longer sit at their old vectors
    expect((await nearest(search, itemVector(5, dims, 0))).id).not.toBe('item-5');
  });

  it('applies each log read as one batch, snapshots on a timer and on close, and trims the log behind the kept snapshots', async () => {
    const b = builder({ snapshotEveryMs: 1_000, keepSnapshots: 1, readBatchSize: 100 });
    const batches: number[] = [];
    b.events.on('applied', (e) => batches.push(e.result.upserted));
    await b.start();
    const ids = await appendUpserts(redis, prefix, items(0, 250));
    await b.waitForApplied(ids[ids.length - 1]);
    expect(batches.reduce((a, x) => a + x, 0)).toBe(250);
    expect(Math.max(...batches)).toBeLessThanOrEqual(100); // readBatchSize entries per batch add

    const snap = await new Promise<{ version: number; log: string }>((resolve) =>
      b.events.on('snapshot', (s) => resolve({ version: s.version, log: s.manifest.log_position })),
    );
    expect(snap.log).toBe(ids[ids.length - 1]);
    // keepSnapshots 1: everything before the snapshot's position is trimmed; the entry at it stays
    expect(await redis.xlen(indexLogKey(prefix))).toBe(1);

    const more = await appendUpserts(redis, prefix, items(250, 260));
    await b.waitForApplied(more[more.length - 1]);
    await b.close(); // final snapshot
    const again = builder();
    await again.start();
    expect((await again.stats()).size).toBe(260);
  });
});
