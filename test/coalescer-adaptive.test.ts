import type { LocalWarehouse } from 'local-snowflake';
import { loadConfig } from '../src/config';
import type { PooledWarehouse, WarehousePool } from '../src/pool';
import { embedTexts } from '../src/warehouse/queries/embed-texts';
import { Coalescer } from '../src/workers/coalescer';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';

const tick = () => new Promise((r) => setImmediate(r));

/**
 * Adaptive batching (`targetMs`, issue #19, decision 0029), against the fixed window, through the real driver
 * and the local warehouse. No wall-clock thresholds: each test asserts which statements were made, or which
 * mode had sent before an event both could observe.
 */
describe('Coalescer adaptive batching (real warehouse)', () => {
  let server: LocalWarehouse;
  let pool: WarehousePool;
  let warehouse: PooledWarehouse;

  beforeAll(async () => {
    server = await startTestWarehouse({ queryLatencyMs: 20 });
    ({ pool, warehouse } = pooledClient(server, { max: 4 }));
  });
  afterAll(async () => {
    await pool.close();
    await server.close();
  });

  /** A coalescer of embedding statements that records each statement's texts. */
  const embedder = (opts: { maxWaitMs?: number; targetMs?: number; maxBatchSize?: number }) => {
    const statements: string[][] = [];
    const coalescer = new Coalescer<string, Float32Array>({
      name: opts.targetMs === undefined ? 'fixed' : 'adaptive',
      maxConcurrentBatches: 4,
      ...opts,
      loadBatch: (texts) => {
        statements.push(texts);
        return embedTexts(warehouse, texts, 'e5-base-v2');
      },
    });
    return { coalescer, statements };
  };

  it('sends a lone job at once, where a fixed window of the same length still holds it', async () => {
    const fixed = embedder({ maxWaitMs: 60_000 });
    const adaptive = embedder({ targetMs: 60_000 });
    const heldByFixed = fixed.coalescer.load('a lone note about renewal');
    const { value } = await adaptive.coalescer.load('a lone note about renewal');
    // The adaptive statement has made its round trip; the fixed window has not yet sent anything.
    expect(value).toHaveLength(768);
    expect(adaptive.statements).toEqual([['a lone note about renewal']]);
    expect(fixed.statements).toEqual([]);
    await fixed.coalescer.close(); // flushes the held key
    await expect(heldByFixed).resolves.toMatchObject({ batch: { size: 1 } });
    expect(fixed.statements).toHaveLength(1);
    await adaptive.coalescer.close();
  });

  it('under a burst makes no more statements per job than the fixed window: full batches', async () => {
    const texts = Array.from({ length: 1_000 }, (_, i) => `burst note ${i}`);
    const fixed = embedder({ maxWaitMs: 25, maxBatchSize: 250 });
    const adaptive = embedder({ targetMs: 100, maxBatchSize: 250 });
    const [f, a] = await Promise.all([Promise.all(texts.map((t) => fixed.coalescer.load(t))), Promise.all(texts.map((t) => adaptive.coalescer.load(t)))]);
    expect(a.every((r) => r.value.length === 768)).toBe(true);
    expect(f).toHaveLength(1_000);
    expect(adaptive.statements.map((s) => s.length)).toEqual([250, 250, 250, 250]);
    expect(adaptive.statements.length).toBeLessThanOrEqual(fixed.statements.length);
    await Promise.all([fixed.coalescer.close(), adaptive.coalescer.close()]);
  });
});

describe('Coalescer adaptive batching (statement slots)', () => {
  it('while every slot is busy, keys arriving over many turns gather into one batch', async () => {
    const calls: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const c = new Coalescer<number, number>({
      name: 'slots',
      targetMs: 60_000,
      maxBatchSize: 100,
      maxConcurrentBatches: 1,
      loadBatch: async (keys) => {
        calls.push(keys);
        if (calls.length === 1) await gate; // the one slot stays busy until released
        return keys;
      },
    });
    const first = c.load(0);
    await tick();
    await tick();
    expect(calls).toEqual([[0]]); // a lone key went at once
    const later: Promise<unknown>[] = [];
    for (let i = 1; i <= 50; i++) {
      later.push(c.load(i));
      await tick();
    }
    expect(calls).toHaveLength(1); // no slot free: nothing sent, however long the arrivals kept coming
    release();
    await Promise.all([first, ...later]);
    expect(calls).toEqual([[0], Array.from({ length: 50 }, (_, i) => i + 1)]);
    await c.close();
  });

  it('the target bounds the wait: with a zero target, every turn is sent', async () => {
    const calls: number[][] = [];
    const c = new Coalescer<number, number>({
      name: 'zero',
      targetMs: 0,
      loadBatch: async (keys) => {
        calls.push(keys);
        return keys;
      },
    });
    await Promise.all([1, 2, 3].map((k) => c.load(k)));
    await c.load(4);
    expect(calls).toEqual([[1, 2, 3], [4]]);
  });

  it('close() flushes keys an adaptive batch is still gathering', async () => {
    const calls: string[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const c = new Coalescer<string, string>({
      name: 'close',
      targetMs: 60_000,
      maxConcurrentBatches: 1,
      loadBatch: async (keys) => {
        calls.push(keys);
        if (calls.length === 1) await gate;
        return keys;
      },
    });
    const a = c.load('a');
    await tick();
    await tick();
    const b = c.load('b');
    const closing = c.close();
    release();
    await closing;
    await expect(Promise.all([a, b])).resolves.toHaveLength(2);
    expect(calls).toEqual([['a'], ['b']]);
  });

  it('rejects a bad target with the option name', () => {
    expect(() => new Coalescer({ name: 'x', loadBatch: async () => [], targetMs: -1 })).toThrow(/targetMs/);
    expect(() => new Coalescer({ name: 'x', loadBatch: async () => [], targetMs: Number.NaN })).toThrow(/targetMs/);
  });
});

describe('EMBED_BATCH_TARGET_MS', () => {
  it('selects adaptive batching when set, and leaves the fixed window otherwise', () => {
    expect(loadConfig({ EMBED_BATCH_TARGET_MS: '80' }).embeddings).toMatchObject({ targetMs: 80, maxWaitMs: 25, maxBatchSize: 500 });
    expect(loadConfig({}).embeddings.targetMs).toBeUndefined();
    expect(loadConfig({ EMBED_BATCH_TARGET_MS: '' }).embeddings.targetMs).toBeUndefined();
    expect(() => loadConfig({ EMBED_BATCH_TARGET_MS: '-1' })).toThrow(/EMBED_BATCH_TARGET_MS/);
  });
});
