import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/data/fs-images.js';
import type { RgbImage } from '../../src/data/image.js';
import { toGray } from '../../src/data/image.js';
import { resizeBicubic, resizeNearest } from '../../src/data/resize.js';

// Goldens from PIL (test/fixtures/make_data_fixtures.py); regenerate with that script, never by hand.
const fixture = (name: string): RgbImage => {
  const path = fileURLToPath(new URL(`../fixtures/data/${name}`, import.meta.url));
  return decodeImage(readFileSync(path), path);
};

/** Share of values within ±1 of PIL, share exactly equal, and the worst difference. */
function compare(ours: RgbImage, pil: RgbImage) {
  expect([ours.width, ours.height, ours.channels]).toEqual([pil.width, pil.height, pil.channels]);
  let within1 = 0;
  let exact = 0;
  let worst = 0;
  for (let i = 0; i < ours.data.length; i++) {
    const d = Math.abs(ours.data[i] - pil.data[i]);
    if (d <= 1) within1++;
    if (d === 0) exact++;
    worst = Math.max(worst, d);
  }
  return { within1: within1 / ours.data.length, exact: exact / ours.data.length, worst, n: ours.data.length };
}

const BICUBIC = [
  [71, 53],
  [13, 11],
  [17, 45],
  [40, 19],
  [25, 30],
  [90, 7],
] as const;

describe('resize matches PIL', () => {
  const src = fixture('src_rgb.png');

  it.each(BICUBIC)('bicubic 40x30 -> %ix%i', (w, h) => {
    const r = compare(resizeBicubic(src, w, h), fixture(`bicubic_${w}x${h}.png`));
    // The brief asks for ±1 on 99%; we reproduce PIL's fixed-point arithmetic, so demand bit-exactness.
    expect(r.within1).toBeGreaterThanOrEqual(0.99);
    expect(r).toMatchObject({ exact: 1, worst: 0 });
  });

  it.each([
    [71, 53],
    [13, 11],
  ] as const)('gray convert + bicubic -> %ix%i', (w, h) => {
    const gray = toGray(src);
    expect(compare(gray, fixture('gray.png')).exact).toBe(1);
    const r = compare(resizeBicubic(gray, w, h), fixture(`gray_bicubic_${w}x${h}.png`));
    expect(r).toMatchObject({ exact: 1, worst: 0 });
  });

  it.each([
    [71, 53],
    [17, 11],
  ] as const)('nearest -> %ix%i', (w, h) => {
    expect(compare(resizeNearest(src, w, h), fixture(`nearest_${w}x${h}.png`)).exact).toBe(1);
  });

  it('same size is an unchanged copy', () => {
    const out = resizeBicubic(src, src.width, src.height);
    expect(out.data).toEqual(src.data);
    expect(out.data).not.toBe(src.data);
  });
});
