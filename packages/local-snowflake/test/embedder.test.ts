import { cosineSimilarity, EMBEDDER_DIMS, EMPTY_TEXT_VECTOR, embedText } from '../src/embedder';

function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

describe('embedder (local lexical stand-in for e5-base-v2)', () => {
  it('returns 768-dimensional unit vectors', () => {
    for (const text of ['renewal at risk', 'A much longer text about pricing, procurement and a security review.', 'x']) {
      const v = embedText(text);
      expect(v).toBeInstanceOf(Float32Array);
      expect(v).toHaveLength(EMBEDDER_DIMS);
      expect(norm(v)).toBeCloseTo(1, 5);
    }
  });

  it('is deterministic within and across processes (fixed checksum)', () => {
    const a = embedText('Acme Corp raised concerns about pricing');
    const b = embedText('Acme Corp raised concerns about pricing');
    expect(Array.from(a)).toEqual(Array.from(b));
    // A stable hash (FNV-1a + murmur finaliser) over UTF-16 code units: this value never changes unless
    // the embedder itself is changed on purpose. Math.random or Node's string hashing would break it.
    let checksum = 0;
    a.forEach((x, i) => (checksum += x * ((i % 97) + 1)));
    expect(checksum).toBeCloseTo(-66.421537, 4);
  });

  it('ignores case, spacing and Unicode compatibility forms', () => {
    const base = embedText('renewal at risk');
    expect(cosineSimilarity(base, embedText('  RENEWAL   At\tRisk '))).toBeCloseTo(1, 6);
    expect(cosineSimilarity(embedText('ｐｒｉｃｉｎｇ'), embedText('pricing'))).toBeCloseTo(1, 6); // full-width
  });

  it('scores related texts above unrelated ones', () => {
    const cases: Array<[string, string, string]> = [
      ['pricing concerns on the renewal', 'the customer raised concerns about renewal pricing', 'lunch menu for the friday offsite'],
      ['SAML login loops back to the sign-in page', 'SSO login loop on the sign-in page', 'invoice shows the wrong seat count'],
      ['they are excited about the forecasting module', 'the team is really excited about forecasting', 'security review is blocked on SOC 2'],
      ['Salesforce connector sync fails for large tables', 'sync failures in the Salesforce connector', 'great QBR, usage is up'],
    ];
    for (const [query, related, unrelated] of cases) {
      const q = embedText(query);
      const near = cosineSimilarity(q, embedText(related));
      const far = cosineSimilarity(q, embedText(unrelated));
      expect(near).toBeGreaterThan(far + 0.2);
    }
  });

  it('keeps inflections and typos close through character n-grams', () => {
    const renewal = embedText('renewal');
    expect(cosineSimilarity(renewal, embedText('renewals'))).toBeGreaterThan(0.35);
    expect(cosineSimilarity(renewal, embedText('renewl'))).toBeGreaterThan(0.2);
    expect(cosineSimilarity(renewal, embedText('onboarding'))).toBeLessThan(0.2);
  });

  it('maps empty and whitespace-only text to the documented fixed vector', () => {
    for (const text of ['', '   ', '\n\t ']) expect(Array.from(embedText(text))).toEqual(Array.from(EMPTY_TEXT_VECTOR));
    expect(EMPTY_TEXT_VECTOR[0]).toBe(1);
    // Callers get copies: changing one cannot change the next result.
    embedText('')[0] = 42;
    expect(embedText('')[0]).toBe(1);
  });

  it('embeds text without letters (emoji, punctuation, control characters) as distinct unit vectors', () => {
    const party = embedText('🎉🎉🎉');
    const dollars = embedText('$$ $$');
    for (const v of [party, dollars, embedText('\u0000'), embedText('\u200f\u202e')]) expect(norm(v)).toBeCloseTo(1, 5);
    expect(cosineSimilarity(party, dollars)).toBeLessThan(0.9);
    expect(cosineSimilarity(party, EMPTY_TEXT_VECTOR)).toBeLessThan(0.9);
  });

  it('treats hostile-looking input as plain text', () => {
    const v = embedText("'); DROP TABLE deals; --");
    expect(norm(v)).toBeCloseTo(1, 5);
    expect(cosineSimilarity(v, embedText('drop table deals'))).toBeGreaterThan(0.9);
  });

  it('cosineSimilarity rejects vectors of different lengths', () => {
    expect(() => cosineSimilarity([1, 0], [1, 0, 0])).toThrow(/differ in length/);
  });
});
