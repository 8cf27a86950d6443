import type { Device } from '@cg/tensor-core';
import { ShapeError, sizeOf, Tensor } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray, readAndDispose } from '../../../../test/helpers/compare.js';
import { testDevice } from '../../../../test/helpers/device.js';
import {
  absDiffMap,
  absDiffMapRef,
  COLOR_MAPS,
  type ColorMapName,
  colorAt,
  colorMap,
  colorMapRef,
  type DistanceMetric,
  type Filter3x3,
  filter3x3Ref,
  laplacian,
  luminance,
  luminanceRef,
  meanAbsDiff,
  meanAbsDiffRef,
  pairwiseDistance,
  pairwiseDistanceRef,
  planeMoments,
  planeMomentsRef,
  sobelMagnitude,
  ssim,
  ssimMap,
  ssimRef,
} from '../../src/diagnostics/kernels/index.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

const read = readAndDispose;

function upload(shape: number[], seed: number, lo = -1, hi = 1): { data: Float32Array; t: Tensor } {
  const data = randomArray(sizeOf(shape), seed, lo, hi);
  return { data, t: Tensor.fromArray(device, data, shape) };
}

// Awkward image shapes: single pixel, single row/column, primes, more than one workgroup per plane.
const IMAGE_SHAPES: number[][] = [
  [1, 1, 1, 1],
  [1, 3, 1, 5],
  [2, 3, 7, 1],
  [2, 3, 13, 17],
  [1, 1, 67, 33],
];

describe('luminance', () => {
  for (const shape of [...IMAGE_SHAPES, [3, 1, 5, 7]]) {
    it(`${JSON.stringify(shape)}`, async () => {
      const { data, t } = upload(shape, 11 + shape[2]);
      for (const o of [{}, { scale: 0.5, shift: 0.5 }]) {
        const y = luminance(t, o);
        expect(y.shape).toEqual([shape[0], 1, shape[2], shape[3]]);
        expectClose(await read(y), luminanceRef(data, shape, o), { label: 'luminance' });
      }
      t.dispose();
    });
  }
  it('uses the ITU-R 601 weights (PIL convert("L")) and rejects 2 channels', async () => {
    const t = Tensor.fromArray(device, [1, 0, 0, 0, 1, 0, 0, 0, 1], [3, 3, 1, 1]);
    expectClose(await read(luminance(t)), [0.299, 0.587, 0.114], { label: 'weights' });
    t.dispose();
    const bad = Tensor.zeros(device, [1, 2, 2, 2]);
    expect(() => luminance(bad)).toThrow(ShapeError);
    bad.dispose();
  });
});

describe('3×3 filters (replicate borders)', () => {
  const FILTERS: [Filter3x3, (x: Tensor) => Tensor][] = [
    ['laplacian', laplacian],
    ['sobelMagnitude', sobelMagnitude],
  ];
  for (const [kind, fn] of FILTERS) {
    for (const shape of IMAGE_SHAPES) {
      it(`${kind} ${JSON.stringify(shape)}`, async () => {
        const { data, t } = upload(shape, 5 + shape[3]);
        const y = fn(t);
        expect(y.shape).toEqual(shape);
        expectClose(await read(y), filter3x3Ref(kind, data, shape), { rtol: 1e-5, atol: 1e-5, label: kind });
        t.dispose();
      });
    }
  }
  it('a constant image has zero Laplacian and Sobel everywhere (borders included); a step edge answers 4', async () => {
    const flat = Tensor.full(device, [1, 1, 6, 5], 0.7);
    expect(Array.from(await read(laplacian(flat))).every((v) => Math.abs(v) < 1e-6)).toBe(true);
    expect(Array.from(await read(sobelMagnitude(flat))).every((v) => Math.abs(v) < 1e-6)).toBe(true);
    flat.dispose();
    const step = Tensor.fromArray(device, [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1], [1, 1, 3, 4]);
    expect(Array.from(await read(sobelMagnitude(step)))).toEqual([0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0]);
    step.dispose();
  });
});

describe('planeMoments', () => {
  for (const shape of [...IMAGE_SHAPES, [1, 2, 129, 131]]) {
    it(`${JSON.stringify(shape)}`, async () => {
      // An offset makes E[x²] − E[x]² lose digits; the two-pass kernel must not.
      const { data, t } = upload(shape, 3 + shape[1], 99, 101);
      const { mean, variance } = planeMoments(t);
      expect(mean.shape).toEqual([shape[0], shape[1]]);
      const want = planeMomentsRef(data, shape);
      expectClose(await read(mean), want.mean, { rtol: 1e-6, atol: 0, label: 'mean' });
      expectClose(await read(variance), want.variance, { rtol: 2e-3, atol: 1e-6, label: 'variance' });
      t.dispose();
    });
  }
  it('a constant plane has variance exactly 0', async () => {
    const t = Tensor.full(device, [2, 1, 9, 11], 0.3);
    const { mean, variance } = planeMoments(t);
    expect(Array.from(await read(variance))).toEqual([0, 0]);
    expectClose(await read(mean), [0.3, 0.3], { label: 'mean' });
    t.dispose();
  });
});

describe('ssim (Gaussian σ 1.5, 11 taps, replicate borders)', () => {
  const SHAPES = [
    [1, 1, 1, 1],
    [2, 1, 13, 17],
    [1, 3, 31, 9],
    [1, 1, 4, 40],
  ];
  for (const shape of SHAPES) {
    it(`${JSON.stringify(shape)} vs float64 reference`, async () => {
      const a = upload(shape, 21 + shape[2], 0, 1);
      // y: x plus some noise, so SSIM sits in the interesting middle range.
      const noise = randomArray(sizeOf(shape), 77, -0.3, 0.3);
      const yData = a.data.map((v, i) => v + noise[i]);
      const y = Tensor.fromArray(device, yData, shape);
      const want = ssimRef(a.data, yData, shape, { dataRange: 1 });
      expectClose(await read(ssimMap(a.t, y)), want.map, { rtol: 0, atol: 2e-4, label: 'ssim map' });
      const s = ssim(a.t, y);
      expect(s.shape).toEqual([shape[0], shape[1]]);
      expectClose(await read(s), want.mean, { rtol: 0, atol: 2e-4, label: 'ssim mean' });
      a.t.dispose();
      y.dispose();
    });
  }
  it('identical images score 1; dataRange sets the constants', async () => {
    const a = upload([2, 1, 12, 10], 8, 0, 4);
    expectClose(await read(ssim(a.t, a.t, { dataRange: 4 })), [1, 1], { rtol: 0, atol: 1e-5, label: 'identity' });
    const b = upload([2, 1, 12, 10], 9, 0, 4);
    const want = ssimRef(a.data, b.data, [2, 1, 12, 10], { dataRange: 4 }).mean;
    expectClose(await read(ssim(a.t, b.t, { dataRange: 4 })), want, { rtol: 0, atol: 2e-4, label: 'range 4' });
    a.t.dispose();
    b.t.dispose();
  });
});

describe('pairwiseDistance', () => {
  const CASES: { x: number[]; y?: number[]; note: string }[] = [
    { x: [1, 5], note: 'one row' },
    { x: [5, 3, 7, 7], note: 'images, self' },
    { x: [9, 300], note: 'more elements than threads' },
    { x: [70, 3], note: 'many pairs (triangular index past 2000)' },
    { x: [4, 2, 5, 5], y: [3, 2, 5, 5], note: 'cross, N ≠ M' },
    { x: [1, 1], y: [2, 1], note: 'one element per row' },
  ];
  for (const c of CASES) {
    for (const metric of ['l1', 'l2'] as DistanceMetric[]) {
      it(`${metric} x ${JSON.stringify(c.x)}${c.y ? ` y ${JSON.stringify(c.y)}` : ''}: ${c.note}`, async () => {
        const x = upload(c.x, c.x[0] * 7 + 1);
        const y = c.y ? upload(c.y, c.y[0] * 5 + 2) : null;
        const d = pairwiseDistance(x.t, y?.t, metric);
        const n = c.x[0];
        const m = c.y ? c.y[0] : n;
        expect(d.shape).toEqual([n, m]);
        const got = await read(d);
        expectClose(got, pairwiseDistanceRef(x.data, n, y?.data, m, metric), { rtol: 1e-5, atol: 1e-6, label: metric });
        if (!c.y) {
          for (let i = 0; i < n; i++) {
            expect(got[i * n + i]).toBe(0);
            for (let j = 0; j < i; j++) expect(got[i * n + j]).toBe(got[j * n + i]);
          }
        }
        x.t.dispose();
        y?.t.dispose();
      });
    }
  }
  it('rejects rows of different lengths', () => {
    const a = Tensor.zeros(device, [2, 3]);
    const b = Tensor.zeros(device, [2, 4]);
    expect(() => pairwiseDistance(a, b)).toThrow(/same number of elements/);
    a.dispose();
    b.dispose();
  });
});

describe('meanAbsDiff / absDiffMap', () => {
  for (const shape of [
    [1, 1],
    [3, 2, 5, 7],
    [2, 1000],
    [1, 3, 1, 1],
  ]) {
    it(`meanAbsDiff ${JSON.stringify(shape)}`, async () => {
      const a = upload(shape, 31);
      const b = upload(shape, 32);
      const r = meanAbsDiff(a.t, b.t);
      expect(r.shape).toEqual([shape[0]]);
      expectClose(await read(r), meanAbsDiffRef(a.data, b.data, shape[0]), { label: 'meanAbsDiff' });
      a.t.dispose();
      b.t.dispose();
    });
  }
  for (const shape of IMAGE_SHAPES) {
    it(`absDiffMap ${JSON.stringify(shape)}`, async () => {
      const a = upload(shape, 41);
      const b = upload(shape, 42);
      const r = absDiffMap(a.t, b.t);
      expect(r.shape).toEqual([shape[0], 1, shape[2], shape[3]]);
      expectClose(await read(r), absDiffMapRef(a.data, b.data, shape), { label: 'absDiffMap' });
      a.t.dispose();
      b.t.dispose();
    });
  }
});

describe('colorMap', () => {
  for (const map of Object.keys(COLOR_MAPS) as ColorMapName[]) {
    it(`${map} on [2,1,5,7] with out-of-range values`, async () => {
      const shape = [2, 1, 5, 7];
      const x = upload(shape, 51, -0.5, 1.5);
      const o = { lo: -0.25, hi: 1.25, map };
      const y = colorMap(x.t, o);
      expect(y.shape).toEqual([2, 3, 5, 7]);
      expectClose(await read(y), colorMapRef(x.data, shape, o), { rtol: 0, atol: 2e-5, label: map });
      x.t.dispose();
    });
  }
  it('the polynomials stay within 0.025 of matplotlib’s tables', () => {
    // matplotlib's _inferno_data / _viridis_data at entries 0, 64, 128, 191, 255.
    const TABLE: Record<ColorMapName, [number, [number, number, number]][]> = {
      inferno: [
        [0, [0.001462, 0.000466, 0.013866]],
        [64 / 255, [0.3415, 0.062325, 0.429425]],
        [128 / 255, [0.735683, 0.215906, 0.330245]],
        [191 / 255, [0.978422, 0.557937, 0.034931]],
        [1, [0.988362, 0.998364, 0.644924]],
      ],
      viridis: [
        [0, [0.267004, 0.004874, 0.329415]],
        [64 / 255, [0.229739, 0.322361, 0.545706]],
        [128 / 255, [0.127568, 0.566949, 0.550556]],
        [191 / 255, [0.369214, 0.788888, 0.382914]],
        [1, [0.993248, 0.906157, 0.143936]],
      ],
    };
    for (const [map, rows] of Object.entries(TABLE) as [ColorMapName, [number, number[]][]][]) {
      for (const [t, rgb] of rows) {
        const got = colorAt(map, t);
        for (let k = 0; k < 3; k++) expect(Math.abs(got[k] - rgb[k]), `${map}(${t})[${k}]`).toBeLessThan(0.025);
      }
    }
  });
  it('a zero error map is uniformly the first colour (black for inferno)', async () => {
    const zero = Tensor.zeros(device, [1, 1, 3, 3]);
    const rgb = await read(colorMap(zero, { hi: 0.5 }));
    const black = colorAt('inferno', 0);
    for (let k = 0; k < 3; k++) for (let p = 0; p < 9; p++) expect(rgb[k * 9 + p]).toBeCloseTo(black[k], 6);
    expect(Math.max(...black)).toBeLessThan(0.002);
    zero.dispose();
  });
});
