import { DataError } from '@cg/cyclegan';
import { Rng } from '@cg/tensor-core';
import { describe, expect, it } from 'vitest';
import { newImage, type RgbImage, toGray } from '../../src/data/image.js';
import { resizeBicubic } from '../../src/data/resize.js';
import {
  augment,
  getTransform,
  makePower2,
  scaleWidth,
  type TransformOptions,
  toTensor,
} from '../../src/data/transforms.js';

function noise(w: number, h: number, c: 1 | 3 = 3, seed = 1): RgbImage {
  const img = newImage(w, h, c);
  const rng = new Rng(seed);
  for (let i = 0; i < img.data.length; i++) img.data[i] = rng.int(0, 255);
  return img;
}

const opts = (o: Partial<TransformOptions>): TransformOptions => ({
  preprocess: 'resize_and_crop',
  load_size: 286,
  crop_size: 256,
  no_flip: false,
  ...o,
});

function pixel(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * img.channels;
  return Array.from(img.data.subarray(i, i + img.channels));
}

describe('get_transform shapes per preprocess', () => {
  const cases: [string, Partial<TransformOptions>, [number, number], [number, number, number]][] = [
    ['resize_and_crop', { preprocess: 'resize_and_crop', load_size: 40, crop_size: 32 }, [50, 30], [3, 32, 32]],
    ['crop', { preprocess: 'crop', crop_size: 16 }, [50, 30], [3, 16, 16]],
    ['scale_width (landscape)', { preprocess: 'scale_width', load_size: 40, crop_size: 16 }, [80, 60], [3, 30, 40]],
    // Height would be 40·10/80 = 5, but __scale_width keeps it at least crop_size.
    ['scale_width (min height)', { preprocess: 'scale_width', load_size: 40, crop_size: 16 }, [80, 10], [3, 16, 40]],
    [
      'scale_width_and_crop',
      { preprocess: 'scale_width_and_crop', load_size: 40, crop_size: 24 },
      [80, 60],
      [3, 24, 24],
    ],
    // none: round(50/4)=12 → 48, round(30/4)=round(7.5)=8 (half to even) → 32.
    ['none', { preprocess: 'none' }, [50, 30], [3, 32, 48]],
    ['none (already ×4)', { preprocess: 'none' }, [48, 32], [3, 32, 48]],
  ];
  it.each(cases)('%s', (_name, o, [w, h], shape) => {
    const t = getTransform(opts(o), 3)(noise(w, h), new Rng(3), 'x.png');
    expect(t.shape).toEqual(shape);
    expect(t.data.length).toBe(shape[0] * shape[1] * shape[2]);
    for (const v of t.data) {
      expect(v).toBeGreaterThanOrEqual(-1);
      expect(v).toBeLessThanOrEqual(1);
    }
  });

  it('grayscale output (nc 1) converts like PIL before resizing', () => {
    const img = noise(20, 20);
    const o = opts({ preprocess: 'resize_and_crop', load_size: 12, crop_size: 12, no_flip: true });
    const out = augment(img, o, 1, new Rng(0));
    expect(out).toEqual(resizeBicubic(toGray(img), 12, 12));
    // A gray source that must be RGB is tiled (official: convert('RGB') first; resizing commutes with tiling).
    const g = augment(noise(20, 20, 1), o, 3, new Rng(0));
    expect(g.channels).toBe(3);
    expect(pixel(g, 5, 5)[0]).toBe(pixel(g, 5, 5)[2]);
  });
});

describe('randomness', () => {
  it('the crop comes from the rng (top, then left) and is the window of the resized image', () => {
    const img = noise(30, 20);
    const o = opts({ preprocess: 'crop', crop_size: 8, no_flip: true });
    const out = augment(img, o, 3, new Rng(42));
    const r = new Rng(42);
    const top = r.int(0, 12);
    const left = r.int(0, 22);
    expect(pixel(out, 0, 0)).toEqual(pixel(img, left, top));
    expect(pixel(out, 7, 7)).toEqual(pixel(img, left + 7, top + 7));
  });

  it('a flip reverses the columns; no_flip never flips; both outcomes occur', () => {
    const img = noise(8, 4);
    const o = opts({ preprocess: 'none' });
    let flipped = 0;
    for (let seed = 0; seed < 40; seed++) {
      const out = augment(img, o, 3, new Rng(seed));
      const didFlip = new Rng(seed).random() < 0.5;
      for (let x = 0; x < 8; x++) expect(pixel(out, x, 1)).toEqual(pixel(img, didFlip ? 7 - x : x, 1));
      if (didFlip) flipped++;
      expect(augment(img, { ...o, no_flip: true }, 3, new Rng(seed)).data).toEqual(img.data);
    }
    expect(flipped).toBeGreaterThan(5);
    expect(flipped).toBeLessThan(35);
  });

  it('draws nothing when the crop is the whole image and flipping is off', () => {
    const rng = new Rng(5);
    const before = rng.getState();
    augment(
      noise(16, 16),
      opts({ preprocess: 'resize_and_crop', load_size: 16, crop_size: 16, no_flip: true }),
      3,
      rng,
    );
    expect(rng.getState()).toEqual(before);
  });
});

describe('errors and helpers', () => {
  it('an image smaller than the crop is a DataError naming the file', () => {
    const o = opts({ preprocess: 'crop', crop_size: 64 });
    expect(() => augment(noise(100, 40), o, 3, new Rng(0), 'trainA/small.jpg')).toThrow(DataError);
    expect(() => augment(noise(100, 40), o, 3, new Rng(0), 'trainA/small.jpg')).toThrow(
      /trainA\/small\.jpg: 100×40 .*smaller than --crop_size 64/,
    );
  });

  it('makePower2 rounds half to even like Python and leaves multiples of 4 alone', () => {
    expect(makePower2(noise(10, 6), 4)).toMatchObject({ width: 8, height: 8 }); // 2.5 → 2, 1.5 → 2
    expect(makePower2(noise(14, 9), 4)).toMatchObject({ width: 16, height: 8 }); // 3.5 → 4, 2.25 → 2
    const same = noise(8, 12);
    expect(makePower2(same, 4)).toBe(same);
    expect(() => makePower2(noise(1, 8), 4, 'tiny.png')).toThrow(/tiny\.png: 1×8 is too small/);
  });

  it('scaleWidth keeps an image already at the target width and tall enough', () => {
    const img = noise(40, 30);
    expect(scaleWidth(img, 40, 16)).toBe(img);
    expect(scaleWidth(img, 40, 32)).toMatchObject({ width: 40, height: 32 });
  });

  it('toTensor is ToTensor + Normalize(0.5, 0.5) in float32, CHW', () => {
    const img: RgbImage = { width: 2, height: 1, channels: 3, data: Uint8Array.of(0, 128, 255, 1, 2, 3) };
    const t = toTensor(img);
    expect(t.shape).toEqual([3, 1, 2]);
    const f = (v: number) => Math.fround(Math.fround(Math.fround(v / 255) - 0.5) / 0.5);
    expect(Array.from(t.data)).toEqual([f(0), f(1), f(128), f(2), f(255), f(3)]);
    expect(t.data[0]).toBe(-1);
    expect(t.data[4]).toBe(1);
  });
});
