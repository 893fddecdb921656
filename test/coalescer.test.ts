import { type BatchEvent, batchThatFailed, Coalescer } from '../src/workers/coalescer';

const tick = () => new Promise((r) => setImmediate(r));

describe('Coalescer', () => {
  it('gathers concurrent loads into batches of at most maxBatchSize and records the batch', async () => {
    const calls: string[][] = [];
    const c = new Coalescer<string, string>({
      name: 't',
      maxBatchSize: 3,
      maxWaitMs: 5,
      loadBatch: async (keys) => {
        calls.push(keys);
        return keys.map((k) => k.toUpperCase());
      },
    });
    const results = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((k) => c.load(k)));
    expect(calls).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e'],
    ]);
    expect(results.map((r) => r.value)).toEqual(['A', 'B', 'C', 'D', 'E']);
    expect(results[0].batch.size).toBe(3);
    expect(results[3].batch.size).toBe(2);
    expect(results[0].batch.batchId).not.toBe(results[3].batch.batchId);
  });

  it('loads identical keys once, pending or in flight', async () => {
    const calls: string[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const inFlight = new Promise<void>((r) => (started = r));
    const c = new Coalescer<string, number>({
      name: 't',
      maxBatchSize: 10,
      maxWaitMs: 1,
      loadBatch: async (keys) => {
        calls.push(keys);
        started();
        await gate;
        return keys.map((k) => k.length);
      },
    });
    const first = [c.load('x'), c.load('x'), c.load('yy')];
    await inFlight;
    const late = c.load('x');
    release();
    const values = (await Promise.all([...first, late])).map((r) => r.value);
    expect(values).toEqual([1, 1, 2, 1]);
    expect(calls).toEqual([['x', 'yy']]);
    expect(c.stats().deduplicated).toBe(2);
  });

  it('fails only the key whose entry is an Error', async () => {
    const c = new Coalescer<string, string>({
      name: 't',
      maxWaitMs: 1,
      loadBatch: async (keys) => keys.map((k) => (k === 'bad' ? new Error('bad key') : k)),
    });
    const settled = await Promise.allSettled(['a', 'bad', 'b'].map((k) => c.load(k)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('bisects a failing batch so one poison item fails alone', async () => {
    const sizes: number[] = [];
    const c = new Coalescer<number, number>({
      name: 't',
      maxBatchSize: 100,
      maxWaitMs: 1,
      loadBatch: async (keys) => {
        sizes.push(keys.length);
        if (keys.includes(37)) throw new Error('statement failed on item 37');
        return keys.map((k) => k * 2);
      },
    });
    const settled = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => c.load(i)));
    const rejected = settled.map((s, i) => (s.status === 'rejected' ? i : -1)).filter((i) => i >= 0);
    expect(rejected).toEqual([37]);
    expect(sizes[0]).toBe(100);
    // log2(100) levels, two calls per level at most
    expect(sizes.length).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(100)));
  });

  it('does not split on a transient error: every key fails with it', async () => {
    let calls = 0;
    const c = new Coalescer<number, number>({
      name: 't',
      maxWaitMs: 1,
      loadBatch: async () => {
        calls++;
        throw Object.assign(new Error('warehouse down'), { transient: true });
      },
    });
    const settled = await Promise.allSettled([1, 2, 3, 4].map((k) => c.load(k)));
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(calls).toBe(1);
  });

  it('bounds batch calls in flight and grows batches while the slots are busy', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const sizes: number[] = [];
    const c = new Coalescer<number, number>({
      name: 't',
      maxBatchSize: 50,
      maxWaitMs: 1,
      maxConcurrentBatches: 2,
      loadBatch: async (keys) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        sizes.push(keys.length);
        await new Promise((r) => setTimeout(r, 20)); // the scenario: a batch call takes 20 ms
        inFlight--;
        return keys;
      },
    });
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) {
      all.push(c.load(i));
      if (i % 10 === 0) await tick();
    }
    await Promise.all(all);
    expect(maxInFlight).toBe(2);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(400);
    expect(sizes.length).toBeLessThanOrEqual(12);
  });

  it('rejects bad options with the option name', () => {
    expect(() => new Coalescer({ name: 'x', loadBatch: async () => [], maxBatchSize: 0 })).toThrow(/maxBatchSize/);
    expect(() => new Coalescer({ name: 'x', loadBatch: async () => [], maxConcurrentBatches: 1.5 })).toThrow(/maxConcurrentBatches/);
  });

  it('close() flushes pending keys and refuses new ones', async () => {
    const c = new Coalescer<string, string>({ name: 't', maxWaitMs: 10_000, loadBatch: async (k) => k });
    const p = c.load('a');
    await c.close();
    await expect(p).resolves.toMatchObject({ value: 'a' });
    await expect(c.load('b')).rejects.toThrow(/closed/);
  });
});

describe('Coalescer: what a batch call reports, and which batch failed a load', () => {
  it('carries the query id a call names (BatchCall.onQueryId) to its event, the last one named; none when it names none', async () => {
    const events: BatchEvent[] = [];
    const c = new Coalescer<string, string>({
      name: 'q',
      maxWaitMs: 1,
      loadBatch: async (keys, _batch, call) => {
        if (keys.includes('silent')) return keys;
        call.onQueryId('01-first');
        call.onQueryId('01-answered');
        if (keys.includes('bad')) throw Object.assign(new Error('after its statement'), { transient: true });
        return keys;
      },
      onBatch: (e) => events.push(e),
    });
    await c.load('a');
    await c.load('bad').catch(() => undefined);
    await c.load('silent');
    expect(events.map((e) => [e.ok, e.queryId])).toEqual([
      [true, '01-answered'],
      [false, '01-answered'],
      [true, undefined],
    ]);
    expect(events[2]).not.toHaveProperty('queryId');
  });

  it('batchThatFailed names the batch whose call failed a load (after a bisection the smallest), or answered its key with an Error', async () => {
    const events: BatchEvent[] = [];
    const c = new Coalescer<string, string>({
      name: 'f',
      maxWaitMs: 1,
      loadBatch: async (keys) => {
        if (keys.includes('poison')) throw new Error(`statement of ${keys.length} failed`);
        return keys.map((k) => (k === 'own' ? new Error('own error') : k));
      },
      onBatch: (e) => events.push(e),
    });
    const settled = await Promise.allSettled(['a', 'poison', 'own', 'b'].map((k) => c.load(k)));
    const reasons = settled.map((s) => (s.status === 'rejected' ? s.reason : undefined));
    expect(reasons.map((r) => (r as Error | undefined)?.message)).toEqual([undefined, 'statement of 1 failed', 'own error', undefined]);
    const root = events[0].batch.batchId;
    expect(events.map((e) => [e.batch.batchId, e.ok])).toEqual([
      [root, false],
      [`${root}.1`, false],
      [`${root}.1.1`, true],
      [`${root}.1.2`, false],
      [`${root}.2`, true],
    ]);
    expect(batchThatFailed(reasons[1])).toMatchObject({ batchId: `${root}.1.2`, size: 1, jobs: 1 });
    expect(batchThatFailed(reasons[2])).toMatchObject({ batchId: `${root}.2`, size: 2 });
    expect(batchThatFailed(new Error('not from a batch'))).toBeUndefined();
    expect(batchThatFailed('a string')).toBeUndefined();
  });
});

describe('Coalescer after a failure', () => {
  it('a key loaded again after its batch failed starts a new load (a retried job never joins a settled one)', async () => {
    let calls = 0;
    const c = new Coalescer<string, string>({
      name: 't',
      maxWaitMs: 1,
      loadBatch: async (keys) => {
        calls++;
        // 'bad' fails in the batch and in its split half; the other half is slow, so the batch is
        // still running when the caller retries 'bad'
        if (keys.includes('bad') && calls <= 2) throw new Error('poison');
        if (keys.includes('slow')) await new Promise((r) => setTimeout(r, 300)); // the scenario: a slow half
        return keys.map((k) => k.toUpperCase());
      },
    });
    const bad = c.load('bad');
    const slow = c.load('slow');
    await expect(bad).rejects.toThrow('poison');
    const retried = await Promise.race([c.load('bad'), new Promise((_, rej) => setTimeout(() => rej(new Error('hung')), 2000))]);
    expect(retried).toMatchObject({ value: 'BAD' });
    await expect(slow).resolves.toMatchObject({ value: 'SLOW' });
  });
});

describe('Coalescer with a zero wait window', () => {
  it('batches the loads of one event-loop turn without a timer clamp', async () => {
    const calls: number[][] = [];
    const c = new Coalescer<number, number>({
      name: 'z',
      maxWaitMs: 0,
      loadBatch: async (keys) => {
        calls.push(keys);
        return keys;
      },
    });
    await Promise.all([1, 2, 3].map((k) => c.load(k)));
    await c.load(4);
    expect(calls).toEqual([[1, 2, 3], [4]]);
  });
});
