import { monitorEventLoopDelay } from 'node:perf_hooks';
import { clusteredSpec, clusteredVectors, exactTopK, recallAtK } from '../src/bench/ann';
import { IndexThread } from '../src/index-builder/index-thread';
import { compileIndexSettings, DEFAULT_INDEX_SETTINGS } from '../src/index-builder/settings';

describe('IndexThread (USearch off the main thread)', () => {
  it('reaches recall@10 >= 0.95 against exact search on clustered data with the default settings', async () => {
    const dims = 256;
    const k = 10;
    const { data, queries } = clusteredVectors(clusteredSpec('hard', 5_000, dims, 200, 7));
    const thread = await IndexThread.create(compileIndexSettings({ dimensions: dims }));
    try {
      const items = Array.from({ length: 5_000 }, (_, i) => ({ id: String(i), vector: data.subarray(i * dims, (i + 1) * dims) }));
      const applied = await thread.upsertMany(items, 'call_notes');
      expect(applied.upserted).toBe(5_000);
      const exact = exactTopK(data, queries, dims, k);
      const found = [];
      for (let q = 0; q < 200; q++) found.push(await thread.search(queries.slice(q * dims, (q + 1) * dims), k, 'call_notes'));
      const recall = recallAtK(found, exact, k);
      expect(recall).toBeGreaterThanOrEqual(0.95);
      expect(DEFAULT_INDEX_SETTINGS.expansionSearch).toBeGreaterThanOrEqual(128);
    } finally {
      await thread.close();
    }
  });

  it('keeps the event loop responsive during a large batch add', async () => {
    const dims = 768;
    const n = 4_000;
    const { data } = clusteredVectors(clusteredSpec('easy', n, dims, 1, 3));
    const thread = await IndexThread.create(compileIndexSettings({ dimensions: dims }));
    try {
      const ops = Array.from({ length: n }, (_, i) => ({ kind: 'upsert' as const, namespace: 'default', id: `v${i}` }));
      const histogram = monitorEventLoopDelay({ resolution: 10 });
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      histogram.enable();
      const started = Date.now();
      const result = await thread.apply({ ops, vectors: data }, { transfer: true });
      const elapsed = Date.now() - started;
      histogram.disable();
      clearInterval(ticker);
      expect(result.upserted).toBe(n);
      expect(data.length).toBe(0); // transferred, not copied
      const maxDelayMs = histogram.max / 1e6;
      // Relative, not absolute: had the add run on this thread, the longest stall would be the whole add.
      // Off the thread, the loop keeps ticking (at least once per 50 ms of a 5 ms interval) and no stall
      // comes near the add's duration, however fast or loaded the machine is.
      expect(maxDelayMs).toBeLessThan(Math.max(elapsed / 2, 50));
      expect(ticks).toBeGreaterThan(Math.floor(elapsed / 50));
    } finally {
      await thread.close();
    }
  });

  it('fails pending and later requests clearly once closed', async () => {
    const thread = await IndexThread.create(compileIndexSettings({ dimensions: 4 }));
    await thread.close();
    await expect(thread.search([1, 0, 0, 0], 1)).rejects.toThrow(/closed/);
    await thread.close(); // idempotent
  });
});
