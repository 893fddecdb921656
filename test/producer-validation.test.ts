import { ValidationError } from '../src/contracts/errors';
import { createProducer, idempotentJobId } from '../src/producers';
import { testRedis, uniquePrefix } from './helpers/redis';

describe('producer validation: bad input is refused before it reaches Redis', () => {
  const redis = testRedis();
  const prefix = uniquePrefix('validation');
  const producer = createProducer({ connection: redis, prefix });
  afterAll(async () => {
    await producer.close();
    await redis.quit();
  });

  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['empty text', () => producer.embed(''), /text: must not be empty/],
    ['whitespace text', () => producer.embed('   \n'), /must not be empty/],
    ['8,001 characters', () => producer.embed('x'.repeat(8001)), /at most 8000 characters/],
    ['NUL byte', () => producer.embed('a\u0000b'), /NUL/],
    ['lone surrogate', () => producer.embed('a\uD800b'), /lone surrogate/],
    ['non-string text', () => producer.embed(42 as unknown as string), /must be a string/],
    ['unknown model', () => producer.embed('x', { model: 'gpt-9' as never }), /model: must be one of/],
    ['bad index id', () => producer.embed('x', { index: { namespace: 'calls', id: ' spaced ' } }), /index.id/],
    ['one bad text in a batch enqueues none', () => producer.embed(['fine', '', 'fine too']), /texts\[1\]: must not be empty/],
    ['no deal ids', () => producer.dealInsights([]), /dealIds: must contain at least one id/],
    ['1,001 deal ids', () => producer.dealInsights(Array.from({ length: 1001 }, (_, i) => `D-${i}`)), /at most 1000 ids/],
    ['malformed deal id', () => producer.dealInsights(["D-1'; DROP TABLE deals; --"]), /dealIds\[0\]/],
    ['duplicate deal ids', () => producer.dealInsights(['D-1', 'D-1']), /dealIds\[1\]: duplicate id "D-1"/],
    ['NaN priority', () => producer.embed('x', { priority: Number.NaN }), /priority/],
    ['empty idempotency key', () => producer.embed('x', { idempotencyKey: '' }), /idempotencyKey/],
  ];

  it.each(cases)('%s', async (_name, call, message) => {
    const err: any = await call().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toMatch(message);
  });

  it('enqueued nothing for any of them', async () => {
    expect(await producer.queue('embeddings').count()).toBe(0);
    expect(await producer.queue('deals').count()).toBe(0);
  });

  it('maps idempotency keys to BullMQ-safe job ids (no ":", never integer-like), stable across calls', () => {
    for (const key of ['a:b', '123', '0', 'x'.repeat(500)]) {
      const id = idempotentJobId('embeddings', key);
      expect(id).not.toMatch(/:/);
      expect(Number.isInteger(Number(id))).toBe(false);
      expect(idempotentJobId('embeddings', key)).toBe(id);
    }
    expect(idempotentJobId('embeddings', 'k')).not.toBe(idempotentJobId('deals', 'k'));
  });
});
