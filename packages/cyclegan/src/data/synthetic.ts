import type { Rng } from '@cg/tensor-core';
import { DataError } from '../errors.js';
import { newImage, type RgbImage } from './image.js';

/*
 * A tiny two-domain dataset for the demo and tests, learnable in minutes: both domains show the same kinds of
 * scenes (one to three circles and squares on a dark background) and differ in two things a CycleGAN must
 * learn to translate: colour (warm orange/red → cool blue/cyan) and texture (smooth shading → stripes).
 */

type Rgb = [number, number, number];

interface Shape {
  kind: 'circle' | 'square';
  cx: number;
  cy: number;
  r: number;
  color: Rgb;
}

const WARM = (rng: Rng): Rgb => [rng.int(200, 255), rng.int(40, 150), rng.int(10, 50)];
const COOL = (rng: Rng): Rgb => [rng.int(10, 50), rng.int(110, 210), rng.int(200, 255)];

function drawShapes(rng: Rng, size: number, color: (rng: Rng) => Rgb): Shape[] {
  const count = rng.int(1, 3);
  return Array.from({ length: count }, () => {
    const r = size * (0.12 + 0.16 * rng.random());
    return {
      kind: rng.random() < 0.5 ? 'circle' : 'square',
      cx: r + (size - 2 * r) * rng.random(),
      cy: r + (size - 2 * r) * rng.random(),
      r,
      color: color(rng),
    };
  });
}

/** Signed distance in pixels from (x, y) to the shape's edge (negative inside). */
function distance(s: Shape, x: number, y: number): number {
  const dx = x - s.cx;
  const dy = y - s.cy;
  return s.kind === 'circle' ? Math.hypot(dx, dy) - s.r : Math.max(Math.abs(dx), Math.abs(dy)) - s.r;
}

function render(size: number, shapes: Shape[], striped: boolean, stripePhase: number): RgbImage {
  const img = newImage(size, size, 3);
  const period = Math.max(4, size / 8);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Dark background with a faint vertical gradient, so it is not a constant the nets can trivially copy.
      let rgb: Rgb = [18 + (12 * y) / size, 18 + (10 * y) / size, 24 + (14 * y) / size];
      for (const s of shapes) {
        const px = x + 0.5;
        const py = y + 0.5;
        const cover = Math.min(1, Math.max(0, 0.5 - distance(s, px, py))); // 1-pixel antialiased edge
        if (cover === 0) continue;
        // Smooth: light falls off from the upper left of the shape. Striped: flat colour in diagonal bands.
        const shade = striped
          ? Math.sin(((px + py) / period + stripePhase) * Math.PI) > 0
            ? 1
            : 0.45
          : 1 - 0.45 * Math.min(1, Math.hypot(px - (s.cx - s.r / 3), py - (s.cy - s.r / 3)) / (1.6 * s.r));
        rgb = [0, 1, 2].map((k) => rgb[k] * (1 - cover) + s.color[k] * shade * cover) as Rgb;
      }
      const i = (y * size + x) * 3;
      img.data[i] = Math.round(rgb[0]);
      img.data[i + 1] = Math.round(rgb[1]);
      img.data[i + 2] = Math.round(rgb[2]);
    }
  }
  return img;
}

/**
 * `n` images of each domain, `size`×`size` RGB. A: smooth warm shapes; B: striped cool shapes. Deterministic
 * for a given rng state; the two domains are drawn independently (unpaired, as CycleGAN expects).
 */
export function makeSyntheticDomains(n: number, size: number, rng: Rng): { A: RgbImage[]; B: RgbImage[] } {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(size) || size < 8) {
    throw new DataError(`makeSyntheticDomains: need n ≥ 1 and size ≥ 8 (got n ${n}, size ${size})`);
  }
  const rngA = rng.fork();
  const rngB = rng.fork();
  const A = Array.from({ length: n }, () => render(size, drawShapes(rngA, size, WARM), false, 0));
  const B = Array.from({ length: n }, () => render(size, drawShapes(rngB, size, COOL), true, 2 * rngB.random()));
  return { A, B };
}

/** Mean R, G, B over all pixels of all images, in 0..255 (1-channel images count as gray). */
export function meanColor(images: readonly RgbImage[]): Rgb {
  const sum: Rgb = [0, 0, 0];
  let pixels = 0;
  for (const img of images) {
    const n = img.width * img.height;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) sum[k] += img.data[i * img.channels + (img.channels === 3 ? k : 0)];
    }
    pixels += n;
  }
  return pixels === 0 ? [0, 0, 0] : (sum.map((v) => v / pixels) as Rgb);
}

/**
 * Mean blue minus mean red, in levels (−255..255): clearly negative for domain A, clearly positive for B. A
 * generator A→B that learned the mapping moves its outputs from A's value towards B's.
 */
export function blueness(images: readonly RgbImage[]): number {
  const [r, , b] = meanColor(images);
  return b - r;
}
