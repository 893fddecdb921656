import { CostMeter, creditsOf, estimateTokens } from '../src/pool';

const PRICES = { warehouseCreditsPerHour: 3600, cortexCreditsPerMTokens: { 'EMBED_TEXT_768:e5-base-v2': 0.03, EMBED_TEXT_768: 0.05, SENTIMENT: 0.08 } };

describe('cost meter', () => {
  it('charges overlapping statements their share of the busy time, never more than the time itself', () => {
    let t = 0;
    const meter = new CostMeter(PRICES, () => t);
    const a = meter.begin(); // t=0: A alone
    t = 1000;
    const b = meter.begin(); // t=1s: A and B share
    t = 3000;
    meter.end(a, 'embeddings'); // A: 1 + 2/2 = 2 s
    t = 4000;
    meter.end(b, 'deals'); // B: 2/2 + 1 = 2 s
    t = 10_000; // idle time is nobody's
    const c = meter.begin();
    t = 10_500;
    meter.end(c, 'embeddings');
    const totals = meter.totals();
    expect(totals.get('embeddings')).toMatchObject({ statements: 2, warehouseSeconds: 2.5, warehouseCredits: 2.5 });
    expect(totals.get('deals')).toMatchObject({ statements: 1, warehouseSeconds: 2, warehouseCredits: 2 });
    // The sum is the process's busy time (4 s + 0.5 s), not the 5.5 s of summed statement durations.
    expect(totals.get('embeddings')!.warehouseSeconds + totals.get('deals')!.warehouseSeconds).toBe(4.5);
  });

  it('prices Cortex input by function and model, the specific key first, estimating four characters a token', () => {
    const t = 0;
    const meter = new CostMeter(PRICES, () => t);
    const token = meter.begin();
    meter.end(token, 'embeddings', [
      { function: 'EMBED_TEXT_768', model: 'e5-base-v2', chars: 4_000_000 }, // 1M tokens at 0.03
      { function: 'EMBED_TEXT_768', model: 'other-model', chars: 4_000_000 }, // 1M tokens at the function's 0.05
      { function: 'UNPRICED', chars: 4_000_000 }, // no price: counted in tokens, never guessed in credits
    ]);
    const e = meter.totals().get('embeddings')!;
    expect(e.cortexTokens).toBe(3_000_000);
    expect(e.cortexCredits).toBeCloseTo(0.08);
    expect(creditsOf(e)).toBeCloseTo(0.08);
    expect(estimateTokens(9)).toBe(3);
  });

  it('hands out copies', () => {
    const meter = new CostMeter(PRICES, () => 0);
    meter.end(meter.begin(), 'q');
    meter.totals().get('q')!.statements = 99;
    expect(meter.totals().get('q')!.statements).toBe(1);
  });
});
