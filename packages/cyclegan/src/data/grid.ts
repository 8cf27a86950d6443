import { fmtShape } from '@cg/tensor-core';
import { DataError } from '../errors.js';
import { newImage, type RgbImage, toRgb } from './image.js';

/**
 * Model outputs `[N, C, H, W]` in [-1, 1] → 8-bit RGB images, as the official `tensor2im`:
 * `(y + 1) / 2 * 255` in float32, then `astype(uint8)`, which truncates (254.9 → 254). The official does not
 * clamp (numpy wraps out-of-range values); we clamp to [0, 255] first, which changes nothing for tanh outputs.
 * One-channel outputs are tiled to three channels like the official.
 */
export function tensorToImages(data: Float32Array, shape: readonly [number, number, number, number]): RgbImage[] {
  const [n, c, h, w] = shape;
  if ((c !== 1 && c !== 3) || data.length !== n * c * h * w) {
    throw new DataError(
      `tensorToImages: expected [N, 1|3, H, W] matching the data (got shape ${fmtShape(shape)} and ${data.length} values)`,
    );
  }
  const plane = h * w;
  const images: RgbImage[] = [];
  for (let b = 0; b < n; b++) {
    const img = newImage(w, h, 3);
    for (let k = 0; k < 3; k++) {
      const base = (b * c + (c === 1 ? 0 : k)) * plane;
      for (let i = 0; i < plane; i++) {
        // Each step rounded to float32, as numpy does on a float32 array.
        const v = Math.fround(Math.fround(Math.fround(data[base + i] + 1) / 2) * 255);
        // NaN fails both comparisons and lands on 0.
        img.data[i * 3 + k] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
      }
    }
    images.push(img);
  }
  return images;
}

/**
 * Tiles images into one RGB image, row by row, `cols` per row, with `pad` pixels of `padValue` around and
 * between cells (like torchvision's make_grid). Cells are the size of the largest image; smaller ones sit in
 * their cell's top-left corner.
 */
export function makeGrid(images: readonly RgbImage[], cols: number, pad = 2, padValue = 0): RgbImage {
  if (images.length === 0) throw new DataError('makeGrid: no images to tile');
  if (!Number.isInteger(cols) || cols < 1 || !Number.isInteger(pad) || pad < 0) {
    throw new DataError(`makeGrid: cols must be ≥ 1 and pad ≥ 0 integers (got cols ${cols}, pad ${pad})`);
  }
  const cellW = Math.max(...images.map((im) => im.width));
  const cellH = Math.max(...images.map((im) => im.height));
  const ncols = Math.min(cols, images.length);
  const nrows = Math.ceil(images.length / ncols);
  const W = ncols * cellW + (ncols + 1) * pad;
  const H = nrows * cellH + (nrows + 1) * pad;
  const out = newImage(W, H, 3);
  out.data.fill(padValue);
  images.forEach((im, idx) => {
    const rgb = toRgb(im);
    const x0 = pad + (idx % ncols) * (cellW + pad);
    const y0 = pad + Math.floor(idx / ncols) * (cellH + pad);
    for (let y = 0; y < rgb.height; y++) {
      const from = y * rgb.width * 3;
      out.data.set(rgb.data.subarray(from, from + rgb.width * 3), ((y0 + y) * W + x0) * 3);
    }
  });
  return out;
}
