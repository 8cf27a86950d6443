import { Rng } from '@cg/tensor-core';
import { describe, expect, it } from 'vitest';
import { blueness, makeSyntheticDomains, meanColor } from '../../src/data/synthetic.js';

describe('synthetic two-domain dataset', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = makeSyntheticDomains(4, 32, new Rng(9));
    const b = makeSyntheticDomains(4, 32, new Rng(9));
    const c = makeSyntheticDomains(4, 32, new Rng(10));
    expect(a).toEqual(b);
    expect(a.A[0].data).not.toEqual(c.A[0].data);
    expect(a.A).toHaveLength(4);
    expect(a.B[3]).toMatchObject({ width: 32, height: 32, channels: 3 });
  });

  it('A is warm and B is cool, by a wide margin', () => {
    const { A, B } = makeSyntheticDomains(16, 32, new Rng(1));
    const [rA, , bA] = meanColor(A);
    const [rB, , bB] = meanColor(B);
    expect(rA).toBeGreaterThan(bA);
    expect(bB).toBeGreaterThan(rB);
    expect(blueness(A)).toBeLessThan(-20);
    expect(blueness(B)).toBeGreaterThan(20);
  });

  it('B is striped: more change between diagonal neighbours inside shapes than A', () => {
    const { A, B } = makeSyntheticDomains(8, 48, new Rng(2));
    const roughness = (imgs: typeof A) => {
      let sum = 0;
      for (const img of imgs) {
        for (let y = 0; y < 47; y++) {
          for (let x = 0; x < 47; x++) {
            const i = (y * 48 + x) * 3;
            sum += Math.abs(img.data[i + 2] - img.data[i + 3 + 2]) + Math.abs(img.data[i] - img.data[i + 3]);
          }
        }
      }
      return sum / imgs.length;
    };
    expect(roughness(B)).toBeGreaterThan(1.5 * roughness(A));
  });

  it('meanColor treats one-channel images as gray', () => {
    expect(meanColor([{ width: 1, height: 2, channels: 1, data: Uint8Array.of(10, 30) }])).toEqual([20, 20, 20]);
    expect(meanColor([])).toEqual([0, 0, 0]);
  });
});
