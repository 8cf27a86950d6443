import type { Rng } from '@cg/tensor-core';
import { DataError } from '../errors.js';
import { cropImage, flipHorizontal, type RgbImage, toChannels } from './image.js';
import type { DataOptions } from './options.js';
import { resizeBicubic } from './resize.js';

/** The options the official `get_transform` reads. */
export type TransformOptions = Pick<DataOptions, 'preprocess' | 'load_size' | 'crop_size' | 'no_flip'>;

/** A transformed image as a `[C, H, W]` float tensor in [-1, 1]. */
export interface TensorImage {
  data: Float32Array;
  shape: [number, number, number];
}

/** Python's round(): halves go to the even neighbour (round(2.5) = 2), which `__make_power_2` relies on. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Official `__make_power_2(img, base=4)`: the nearest multiple of 4 in each direction, bicubic. */
export function makePower2(img: RgbImage, base: number, path = 'image'): RgbImage {
  const w = roundHalfEven(img.width / base) * base;
  const h = roundHalfEven(img.height / base) * base;
  if (w === img.width && h === img.height) return img;
  if (w === 0 || h === 0) {
    throw new DataError(
      `${path}: ${img.width}×${img.height} is too small for --preprocess none (sizes round to a multiple of ${base}); ` +
        'use images of at least 2×2 pixels',
    );
  }
  return resizeBicubic(img, w, h);
}

/** Official `__scale_width`: width to `targetWidth`, aspect kept, height at least `cropSize`. */
export function scaleWidth(img: RgbImage, targetWidth: number, cropSize: number): RgbImage {
  if (img.width === targetWidth && img.height >= cropSize) return img;
  const h = Math.trunc(Math.max((targetWidth * img.height) / img.width, cropSize));
  return resizeBicubic(img, targetWidth, h);
}

/** torchvision `RandomCrop(size)` without padding: draws the top row, then the left column. */
export function randomCrop(img: RgbImage, size: number, rng: Rng, path = 'image'): RgbImage {
  if (img.width < size || img.height < size) {
    throw new DataError(
      `${path}: ${img.width}×${img.height} after resizing is smaller than --crop_size ${size}; ` +
        'use larger images, a smaller --crop_size, or --preprocess resize_and_crop',
    );
  }
  if (img.width === size && img.height === size) return img;
  const top = rng.int(0, img.height - size);
  const left = rng.int(0, img.width - size);
  return cropImage(img, left, top, size, size);
}

/**
 * The official `get_transform(opt, grayscale=channels == 1)` up to (not including) ToTensor: gray conversion,
 * resize, crop, `none`'s multiple-of-4 resize, random flip. Randomness is drawn from `rng` in the official order.
 * May return `img` itself when nothing changes; treat images as immutable.
 */
export function augment(img: RgbImage, opts: TransformOptions, channels: 1 | 3, rng: Rng, path = 'image'): RgbImage {
  // Gray conversion is exact per pixel and commutes with everything below, so a gray source that must become
  // RGB is expanded last (three times less resizing); an RGB source that must become gray is converted first.
  let out = channels === 1 ? toChannels(img, 1) : img;
  const p = opts.preprocess;
  if (p === 'resize_and_crop') out = resizeBicubic(out, opts.load_size, opts.load_size);
  else if (p === 'scale_width' || p === 'scale_width_and_crop') out = scaleWidth(out, opts.load_size, opts.crop_size);
  if (p === 'resize_and_crop' || p === 'crop' || p === 'scale_width_and_crop') {
    out = randomCrop(out, opts.crop_size, rng, path);
  }
  if (p === 'none') out = makePower2(out, 4, path);
  // torchvision RandomHorizontalFlip: flip when torch.rand(1) < 0.5.
  if (!opts.no_flip && rng.random() < 0.5) out = flipHorizontal(out);
  return toChannels(out, channels);
}

/**
 * ToTensor + Normalize((0.5,…), (0.5,…)) as float32 arithmetic: x / 255, − 0.5, / 0.5, each rounded to float32
 * like PyTorch does, so our inputs equal the official ones exactly.
 */
const TO_UNIT = (() => {
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(v / 255) - 0.5) / 0.5;
  return lut;
})();

/** HWC uint8 → CHW float in [-1, 1], written into `out` at `offset` (for batching) or a new array. */
export function toTensor(img: RgbImage, out?: Float32Array, offset = 0): TensorImage {
  const { width: w, height: h, channels: c } = img;
  const plane = w * h;
  const data = out ?? new Float32Array(c * plane);
  if (data.length < offset + c * plane) {
    throw new DataError(`toTensor: output too small (need ${offset + c * plane} floats, got ${data.length})`);
  }
  const src = img.data;
  for (let ch = 0; ch < c; ch++) {
    const base = offset + ch * plane;
    for (let i = 0; i < plane; i++) data[base + i] = TO_UNIT[src[i * c + ch]];
  }
  return { data, shape: [c, h, w] };
}

/** The whole official transform: `augment` then `toTensor`. */
export function getTransform(
  opts: TransformOptions,
  channels: 1 | 3,
): (img: RgbImage, rng: Rng, path?: string) => TensorImage {
  return (img, rng, path) => toTensor(augment(img, opts, channels, rng, path));
}
