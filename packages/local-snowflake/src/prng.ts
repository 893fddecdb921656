/**
 * A small seeded PRNG (mulberry32) for the demo dataset. Deterministic for a given seed on every
 * platform, so the same `seed` always yields the same deals and texts; never use it for secrets.
 */
export interface SeededRandom {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** True with probability `p`. */
  chance(p: number): boolean;
}

// Read once: generating the dataset calls these millions of times, and under jest's vm sandbox every
// `Math.x` lookup is a slow global read.
const { imul, floor } = Math;

export function seededRandom(seed: number): SeededRandom {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + floor(next() * (max - min + 1)),
    pick: (items) => {
      if (items.length === 0) throw new RangeError('cannot pick from an empty list');
      return items[floor(next() * items.length)];
    },
    chance: (p) => next() < p,
  };
}
