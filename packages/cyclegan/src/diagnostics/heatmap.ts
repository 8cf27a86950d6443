import { fmtShape } from '@cg/tensor-core';
import { newImage, type RgbImage } from '../data/image.js';
import { DataError } from '../errors.js';
import { colorAt } from './kernels/index.js';
import { HEAT_MAX } from './scores.js';

/** RGB [N, 3, H, W] in [0, 1] (colorMap's output) → 8-bit images, rounded to the nearest level. */
export function rgb01ToImages(data: Float32Array, shape: readonly number[]): RgbImage[] {
  const [n, c, h, w] = shape;
  if (shape.length !== 4 || c !== 3 || data.length !== n * c * h * w) {
    throw new DataError(
      `rgb01ToImages: expected [N, 3, H, W] matching the data (got ${fmtShape(shape)}, ${data.length} values)`,
    );
  }
  const plane = h * w;
  return Array.from({ length: n }, (_, b) => {
    const img = newImage(w, h, 3);
    for (let k = 0; k < 3; k++) {
      const base = (b * 3 + k) * plane;
      for (let i = 0; i < plane; i++) {
        const v = data[base + i];
        img.data[i * 3 + k] = v >= 1 ? 255 : v > 0 ? Math.round(v * 255) : 0;
      }
    }
    return img;
  });
}

/** A horizontal inferno colour bar with its scale, as inline SVG for the report. */
export function heatLegendSvg(max = HEAT_MAX, width = 320): string {
  const stops = Array.from({ length: 11 }, (_, i) => {
    const [r, g, b] = colorAt('inferno', i / 10).map((v) => Math.round(v * 255));
    return `<stop offset="${i * 10}%" stop-color="rgb(${r},${g},${b})"/>`;
  }).join('');
  const levels = (v: number) => Math.round((v / 2) * 255);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width + 20}" height="44" font-family="sans-serif" font-size="11">` +
    `<defs><linearGradient id="inferno">${stops}</linearGradient></defs>` +
    `<rect x="10" y="4" width="${width}" height="14" fill="url(#inferno)" stroke="#999"/>` +
    `<text x="10" y="32">0 (perfect)</text>` +
    `<text x="${10 + width / 2}" y="32" text-anchor="middle">${max / 2}</text>` +
    `<text x="${10 + width}" y="32" text-anchor="end">≥ ${max} (≈${levels(max)} of 255 levels)</text>` +
    '</svg>'
  );
}
