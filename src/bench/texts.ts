const WORDS =
  'renewal pricing churn risk champion budget procurement legal security review expansion pilot onboarding integration roadmap discount competitor timeline executive sponsor quarter forecast pipeline'.split(
    ' ',
  );

/**
 * `n` distinct, realistic-looking texts starting with `seed` (each job its own text, so nothing is
 * de-duplicated or cached away and every job costs a real embedding).
 */
export function benchTexts(n: number, seed: string): string[] {
  return Array.from({ length: n }, (_, i) => {
    const w = (k: number) => WORDS[(i * 7 + k * 13 + k * k) % WORDS.length];
    return `${seed} note ${i}: customer raised ${w(1)} and ${w(2)} concerns; next step ${w(3)} ${w(4)} with the ${w(5)} team`;
  });
}
