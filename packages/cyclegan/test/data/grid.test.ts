import { DataError } from '@cg/cyclegan';
import { describe, expect, it } from 'vitest';
import { makeGrid, tensorToImages } from '../../src/data/grid.js';
import type { RgbImage } from '../../src/data/image.js';

describe('tensorToImages (official tensor2im)', () => {
  it('scales (y + 1) / 2 · 255 in float32 and truncates like numpy astype(uint8)', () => {
    // y such that (y+1)/2·255 is just below 255, 128 and 1: truncation, not rounding.
    const below = (v: number) => Math.fround((v / 255) * 2 - 1 - 1e-6);
    const ys = [-1, 1, 0, below(255), below(128), below(1), Math.fround(0.99)];
    const [img] = tensorToImages(Float32Array.from(ys), [1, 1, 1, ys.length]);
    const expected = ys.map((y) => Math.trunc(Math.fround(Math.fround(Math.fround(y + 1) / 2) * 255)));
    expect(expected).toEqual([0, 255, 127, 254, 127, 0, 253]);
    expect(Array.from(img.data.filter((_, i) => i % 3 === 0))).toEqual(expected);
  });

  it('clamps out-of-range values and NaN instead of wrapping', () => {
    const [img] = tensorToImages(Float32Array.of(-3, 5, Number.NaN), [1, 1, 1, 3]);
    expect(Array.from(img.data)).toEqual([0, 0, 0, 255, 255, 255, 0, 0, 0]);
  });

  it('CHW → HWC, one image per batch entry; one channel is tiled to RGB', () => {
    // N=2, C=3, H=1, W=2: channel planes are contiguous.
    const data = Float32Array.of(-1, 1, 0, 0, 1, -1, /* n=1 */ 1, 1, 1, 1, -1, -1);
    const [a, b] = tensorToImages(data, [2, 3, 1, 2]);
    expect(a).toMatchObject({ width: 2, height: 1, channels: 3 });
    expect(Array.from(a.data)).toEqual([0, 127, 255, 255, 127, 0]);
    expect(Array.from(b.data)).toEqual([255, 255, 0, 255, 255, 0]);
    const [g] = tensorToImages(Float32Array.of(1, -1), [1, 1, 1, 2]);
    expect(Array.from(g.data)).toEqual([255, 255, 255, 0, 0, 0]);
    expect(() => tensorToImages(new Float32Array(5), [1, 3, 1, 2])).toThrow(DataError);
  });
});

describe('makeGrid', () => {
  const solid = (w: number, h: number, v: number, c: 1 | 3 = 3): RgbImage => ({
    width: w,
    height: h,
    channels: c,
    data: new Uint8Array(w * h * c).fill(v),
  });
  const at = (img: RgbImage, x: number, y: number) => img.data[(y * img.width + x) * 3];

  it('tiles row by row with padding', () => {
    const g = makeGrid([solid(2, 2, 10), solid(2, 2, 20), solid(2, 2, 30, 1)], 2, 1, 255);
    expect([g.width, g.height, g.channels]).toEqual([2 * 2 + 3, 2 * 2 + 3, 3]);
    expect(at(g, 0, 0)).toBe(255);
    expect(at(g, 1, 1)).toBe(10);
    expect(at(g, 4, 2)).toBe(20);
    expect(at(g, 1, 4)).toBe(30);
    expect(at(g, 4, 4)).toBe(255); // empty last cell
  });

  it('uses the largest image as the cell size and rejects nonsense', () => {
    const g = makeGrid([solid(3, 1, 1), solid(1, 2, 2)], 5, 0);
    expect([g.width, g.height]).toEqual([6, 2]);
    expect(() => makeGrid([], 2)).toThrow(/no images/);
    expect(() => makeGrid([solid(1, 1, 0)], 0)).toThrow(DataError);
  });
});
