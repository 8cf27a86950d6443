/**
 * Seeded PRNG (xoshiro128**) used for weight init, dropout seeds, data
 * shuffling and augmentation, so a run is reproducible from `--seed` and its
 * state can be saved and restored for an exact resume.
 */
export class Rng {
  private s: Uint32Array;

  constructor(seed = 0) {
    this.s = new Uint32Array(4);
    // splitmix32 expands the seed so nearby seeds give unrelated streams.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  /** Uniform uint32. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits (like Python's random.random() for our needs). */
  random(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  /** Standard normal (Box-Muller). */
  normal(mean = 0, std = 1): number {
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** A new generator whose stream is derived from this one (advances this). */
  fork(): Rng {
    return new Rng(this.nextU32());
  }

  getState(): number[] {
    return [...this.s];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4) throw new Error(`Rng.setState: expected 4 uint32 words, got ${state.length}`);
    this.s = Uint32Array.from(state);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
