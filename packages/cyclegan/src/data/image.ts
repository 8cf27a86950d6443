import { DataError } from '../errors.js';

/** An 8-bit image, rows top to bottom, channels interleaved (HWC), as PIL holds `L` and `RGB` images. */
export interface RgbImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

/** A zeroed image of the given size. */
export function newImage(width: number, height: number, channels: 1 | 3): RgbImage {
  return { width, height, channels, data: new Uint8Array(width * height * channels) };
}

/** Throws if `data` cannot hold `width × height × channels` bytes: decoders and callers build these by hand. */
export function checkImage(img: RgbImage, what = 'image'): void {
  const ok =
    Number.isInteger(img.width) &&
    Number.isInteger(img.height) &&
    img.width > 0 &&
    img.height > 0 &&
    (img.channels === 1 || img.channels === 3) &&
    img.data.length === img.width * img.height * img.channels;
  if (!ok) {
    throw new DataError(
      `${what}: inconsistent image (expected width×height×channels bytes with channels 1 or 3, got ` +
        `${img.width}×${img.height}×${img.channels} and ${img.data.length} bytes)`,
    );
  }
}

/**
 * PIL's `convert('L')` from RGB. PIL documents L = R·299/1000 + G·587/1000 + B·114/1000 but computes it
 * in 16-bit fixed point with rounding (`L24` in Convert.c); we use the latter so gray inputs match bit for bit.
 */
export function toGray(img: RgbImage): RgbImage {
  if (img.channels === 1) return img;
  const n = img.width * img.height;
  const src = img.data;
  const out = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    out[i] = (src[j] * 19595 + src[j + 1] * 38470 + src[j + 2] * 7471 + 0x8000) >>> 16;
  }
  return { width: img.width, height: img.height, channels: 1, data: out };
}

/** PIL's `convert('RGB')` from L: the gray value in all three channels. */
export function toRgb(img: RgbImage): RgbImage {
  if (img.channels === 3) return img;
  const n = img.width * img.height;
  const src = img.data;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    const v = src[i];
    out[j] = v;
    out[j + 1] = v;
    out[j + 2] = v;
  }
  return { width: img.width, height: img.height, channels: 3, data: out };
}

/** The image with `channels` channels, converting the way the official loader does (`convert('RGB')`, `Grayscale(1)`). */
export function toChannels(img: RgbImage, channels: 1 | 3): RgbImage {
  return channels === 1 ? toGray(img) : toRgb(img);
}

/** A `width × height` window whose top-left corner is (left, top); the caller checks bounds. */
export function cropImage(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  const c = img.channels;
  const out = new Uint8Array(width * height * c);
  const rowBytes = width * c;
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * img.width + left) * c;
    out.set(img.data.subarray(from, from + rowBytes), y * rowBytes);
  }
  return { width, height, channels: img.channels, data: out };
}

/** Mirror left-right (PIL `FLIP_LEFT_RIGHT`). */
export function flipHorizontal(img: RgbImage): RgbImage {
  const { width, height, channels: c } = img;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * c;
    for (let x = 0; x < width; x++) {
      const from = row + x * c;
      const to = row + (width - 1 - x) * c;
      for (let k = 0; k < c; k++) out[to + k] = img.data[from + k];
    }
  }
  return { width, height, channels: c, data: out };
}
