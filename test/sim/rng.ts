/**
 * Seeded randomness for the simulation: every random choice (schedules, message times, queue ids,
 * identities, a bad provider's coin flips) comes from a stream derived from one printed seed, so a
 * failing seed reproduces. Each actor gets its own stream, so what one user draws does not depend on
 * how the others' requests interleave.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Uniform in [a, b). */
  range(a: number, b: number): number;
  /** Exponentially distributed with the given mean. */
  exp(mean: number): number;
  bytes(n: number): Uint8Array;
  pick<T>(items: readonly T[]): T;
  /** A new array, shuffled. */
  shuffled<T>(items: readonly T[]): T[];
}

/** SplitMix32-style mixing of (seed, stream) into a 32-bit state. */
function mix(seed: number, stream: number): number {
  let h = (seed ^ Math.imul(stream + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x21f0aaad);
  h = Math.imul(h ^ (h >>> 15), 0x735a2d97);
  return (h ^ (h >>> 15)) >>> 0;
}

/** Mulberry32 on a mixed state: fast, 2^32 period, plenty for a simulation. */
export function createRng(seed: number, stream = 0): Rng {
  let s = mix(seed >>> 0, stream);
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Rng = {
    next,
    int: (n) => Math.floor(next() * n),
    range: (a, b) => a + next() * (b - a),
    exp: (mean) => -mean * Math.log(1 - next()),
    bytes(n) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
      return out;
    },
    pick: (items) => items[Math.floor(next() * items.length)]!,
    shuffled(items) {
      const a = items.slice();
      for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [a[i], a[j]] = [a[j]!, a[i]!];
      }
      return a;
    },
  };
  return rng;
}
