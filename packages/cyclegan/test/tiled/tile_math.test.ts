import { pad2dRef } from '@cg/kernels-wgsl';
import { describe, expect, it } from 'vitest';
import {
  convInputRange,
  convTransposeInputRange,
  type FillMode,
  sourceIndex,
  splitRange,
} from '../../src/tiled/tile_math.js';

/** Seeded values in [-1, 1). */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** 1-D convolution from the definition: y[o] = Σ_t pad(x)[o·s + t] w[t], pad(x) of length n + 2p. */
function conv1d(x: number[], w: number[], s: number, p: number, fill: FillMode): number[] {
  const n = x.length;
  const k = w.length;
  const padded = pad2dRef(x, [1, 1, 1, n], [p, p, 0, 0], fill === 'zeros' ? 'zero' : fill).data;
  const out: number[] = [];
  for (let o = 0; o + k <= n + 2 * p; o += s) {
    let acc = 0;
    for (let t = 0; t < k; t++) acc += padded[o + t] * w[t];
    out.push(acc);
  }
  return out;
}

/** 1-D transposed convolution from the definition, as a scatter: x[i]·w[t] lands on i·s − p + t. */
function convT1d(x: number[], w: number[], s: number, p: number, op: number): number[] {
  const k = w.length;
  const len = (x.length - 1) * s - 2 * p + k + op;
  const out = new Array<number>(len).fill(0);
  for (let i = 0; i < x.length; i++) {
    for (let t = 0; t < k; t++) {
      const o = i * s - p + t;
      if (o >= 0 && o < len) out[o] += x[i] * w[t];
    }
  }
  return out;
}

describe('tile index math', () => {
  it('sourceIndex matches pad2dRef for reflect, replicate and zero fills', () => {
    for (const n of [1, 2, 3, 5, 8]) {
      const x = Array.from({ length: n }, (_, i) => i + 1);
      for (const fill of ['reflect', 'replicate', 'zeros'] as const) {
        const p = fill === 'reflect' ? Math.max(0, n - 1) : 4;
        const ref = pad2dRef(x, [1, 1, 1, n], [p, p, 0, 0], fill === 'zeros' ? 'zero' : fill).data;
        const mine = Array.from({ length: n + 2 * p }, (_, q) => {
          const i = sourceIndex(q - p, n, fill);
          return i < 0 ? 0 : x[i];
        });
        expect(mine, `${fill} n=${n}`).toEqual(Array.from(ref));
      }
    }
  });

  it('splitRange covers [0, n) in near-equal pieces', () => {
    expect(splitRange(10, 3)).toEqual([
      { start: 0, end: 3 },
      { start: 3, end: 6 },
      { start: 6, end: 10 },
    ]);
    expect(splitRange(2, 5)).toHaveLength(2);
  });

  it('a tiled convolution with halos equals the whole one (every tiling, k, s, p, fill)', () => {
    for (const [k, s, p] of [
      [7, 1, 3],
      [3, 1, 1],
      [3, 2, 1],
      [4, 2, 1],
      [1, 1, 0],
      [5, 3, 2],
    ]) {
      for (const n of [9, 16, 23]) {
        const x = values(n, n * 31 + k);
        const w = values(k, k * 7 + s);
        for (const fill of ['zeros', 'reflect', 'replicate'] as const) {
          const whole = conv1d(x, w, s, p, fill);
          for (const parts of [1, 2, 3, 5, whole.length]) {
            const tiled: number[] = [];
            for (const r of splitRange(whole.length, parts)) {
              const inR = convInputRange(r.start, r.end, k, s, p);
              const tile = Array.from({ length: inR.end - inR.start }, (_, i) => {
                const j = sourceIndex(inR.start + i, n, fill);
                return j < 0 ? 0 : x[j];
              });
              tiled.push(...conv1d(tile, w, s, 0, 'zeros'));
            }
            expect(tiled.length).toBe(whole.length);
            for (let o = 0; o < whole.length; o++) expect(tiled[o]).toBeCloseTo(whole[o], 12);
          }
        }
      }
    }
  });

  it('a tiled transposed convolution with halos equals the whole one (k < s, k ≥ s, output padding)', () => {
    for (const [k, s, p, op] of [
      [3, 2, 1, 1],
      [3, 2, 1, 0],
      [4, 2, 1, 0],
      [2, 3, 0, 1],
      [5, 1, 2, 0],
      [1, 2, 0, 1],
      [7, 3, 3, 2],
    ]) {
      for (const n of [5, 8, 13]) {
        const x = values(n, n * 13 + k);
        const w = values(k, k * 5 + s);
        const whole = convT1d(x, w, s, p, op);
        for (const parts of [1, 2, 3, 4, 7, whole.length]) {
          const tiled: number[] = [];
          for (const r of splitRange(whole.length, parts)) {
            const inR = convTransposeInputRange(r.start, r.end, k, s, p);
            const tile = Array.from({ length: inR.end - inR.start }, (_, i) => {
              const j = inR.start + i;
              return j >= 0 && j < n ? x[j] : 0;
            });
            const y = convT1d(tile, w, s, 0, 0);
            for (let o = r.start; o < r.end; o++) {
              const t = o + inR.offset;
              expect(t, `k${k} s${s} p${p} o${o}`).toBeGreaterThanOrEqual(0);
              expect(t).toBeLessThan(y.length);
              tiled.push(y[t]);
            }
          }
          for (let o = 0; o < whole.length; o++) expect(tiled[o]).toBeCloseTo(whole[o], 12);
        }
      }
    }
  });

  it('the transposed conv range is the one the definition gives: ⌈(o+p−k+1)/s⌉ … ⌊(o+p)/s⌋ inside it', () => {
    const [k, s, p] = [3, 2, 1];
    for (let o = 0; o < 20; o++) {
      const r = convTransposeInputRange(o, o + 1, k, s, p);
      const lo = Math.ceil((o + p - k + 1) / s);
      const hi = Math.floor((o + p) / s);
      expect(r.start).toBeLessThanOrEqual(lo);
      expect(r.end).toBeGreaterThan(hi);
      expect(r.end - r.start).toBeLessThanOrEqual(3);
    }
  });
});
