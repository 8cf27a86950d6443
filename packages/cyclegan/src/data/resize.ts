import { DataError } from '../errors.js';
import type { RgbImage } from './image.js';

/*
 * PIL's `Image.resize(size, Image.BICUBIC)` (PIL ≥ 7, `ImagingResample` in libImaging/Resample.c), reproduced
 * step by step so that our training inputs are the official ones bit for bit:
 *  - separable: a horizontal pass into an 8-bit intermediate image, then a vertical pass;
 *  - cubic kernel with a = -0.5, support 2, widened by the scale factor when shrinking (antialiasing);
 *  - per-output weights normalised in float64, then turned into 22-bit fixed point and rounded away from zero;
 *  - accumulation starts at 0.5 (in fixed point) and results are clamped to [0, 255] and truncated.
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}
const BICUBIC_SUPPORT = 2;

/** Weights of one axis: output i reads `count[i]` inputs from `first[i]`, with fixed-point weights `k[i*ksize + j]`. */
interface Coeffs {
  ksize: number;
  first: Int32Array;
  count: Int32Array;
  k: Int32Array;
}

// `precompute_coeffs` + `normalize_coeffs_8bpc`; C's `(int)` casts truncate, hence Math.trunc.
function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, first, count, k };
}

function clip8(v: number): number {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

function resampleHorizontal(img: RgbImage, outWidth: number): RgbImage {
  const { ksize, first, count, k } = precomputeCoeffs(img.width, outWidth);
  const c = img.channels;
  const src = img.data;
  const out = new Uint8Array(outWidth * img.height * c);
  for (let y = 0; y < img.height; y++) {
    const rowIn = y * img.width * c;
    const rowOut = y * outWidth * c;
    for (let xx = 0; xx < outWidth; xx++) {
      const n = count[xx];
      const kb = xx * ksize;
      let p = rowIn + first[xx] * c;
      if (c === 3) {
        // All three channels in one pass over the taps, as PIL does.
        let s0 = ONE / 2;
        let s1 = ONE / 2;
        let s2 = ONE / 2;
        for (let x = 0; x < n; x++, p += 3) {
          const w = k[kb + x];
          s0 += src[p] * w;
          s1 += src[p + 1] * w;
          s2 += src[p + 2] * w;
        }
        const o = rowOut + xx * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      } else {
        let s0 = ONE / 2;
        for (let x = 0; x < n; x++, p++) s0 += src[p] * k[kb + x];
        out[rowOut + xx] = clip8(s0);
      }
    }
  }
  return { width: outWidth, height: img.height, channels: img.channels, data: out };
}

function resampleVertical(img: RgbImage, outHeight: number): RgbImage {
  const { ksize, first, count, k } = precomputeCoeffs(img.height, outHeight);
  const stride = img.width * img.channels;
  const src = img.data;
  const out = new Uint8Array(stride * outHeight);
  // Whole rows at a time: contiguous reads, and the same sums as PIL's per-pixel loop (integer, exact in float64).
  const acc = new Float64Array(stride);
  for (let yy = 0; yy < outHeight; yy++) {
    acc.fill(ONE / 2);
    const kb = yy * ksize;
    for (let y = 0; y < count[yy]; y++) {
      const w = k[kb + y];
      const row = (first[yy] + y) * stride;
      for (let i = 0; i < stride; i++) acc[i] += src[row + i] * w;
    }
    const rowOut = yy * stride;
    for (let i = 0; i < stride; i++) out[rowOut + i] = clip8(acc[i]);
  }
  return { width: img.width, height: outHeight, channels: img.channels, data: out };
}

function checkSize(op: string, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DataError(`${op}: target size must be positive integers (got ${width}×${height})`);
  }
}

/** `img.resize((width, height), Image.BICUBIC)` as PIL computes it. */
export function resizeBicubic(img: RgbImage, width: number, height: number): RgbImage {
  checkSize('resizeBicubic', width, height);
  let out = img;
  // Horizontal first, through an 8-bit intermediate, exactly like PIL (the order changes rounding).
  if (width !== img.width) out = resampleHorizontal(out, width);
  if (height !== img.height) out = resampleVertical(out, height);
  return out === img ? { ...img, data: img.data.slice() } : out;
}

/**
 * `img.resize((width, height), Image.NEAREST)` (PIL's `ImagingScaleAffine`), for masks and labels. PIL steps
 * the source position by repeated addition from half a step, and that float drift decides ties, so we do too.
 */
export function resizeNearest(img: RgbImage, width: number, height: number): RgbImage {
  checkSize('resizeNearest', width, height);
  const c = img.channels;
  const out = new Uint8Array(width * height * c);
  const xin = nearestTable(img.width, width);
  const yin = nearestTable(img.height, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (yin[y] * img.width + xin[x]) * c;
      const to = (y * width + x) * c;
      for (let ch = 0; ch < c; ch++) out[to + ch] = img.data[from + ch];
    }
  }
  return { width, height, channels: img.channels, data: out };
}

function nearestTable(inSize: number, outSize: number): Int32Array {
  const step = inSize / outSize;
  const table = new Int32Array(outSize);
  let pos = step * 0.5;
  for (let i = 0; i < outSize; i++) {
    table[i] = Math.min(inSize - 1, Math.trunc(pos));
    pos += step;
  }
  return table;
}
