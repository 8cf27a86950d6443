import type { Device } from '@cg/tensor-core';
import { ShapeError, sizeOf, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray, readAndDispose } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { mean, meanAll, sum, sumAll, sumRef } from '../src/ops/reduce.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

const read = readAndDispose;

/** The mean over `axes` from the float64 sum reference. */
function meanRef(x: ArrayLike<number>, shape: number[], axes?: number[], keepDims = false) {
  const r = sumRef(x, shape, axes, keepDims);
  const norm = (a: number) => (a < 0 ? a + shape.length : a);
  const count = axes ? sizeOf([...new Set(axes.map(norm))].map((a) => shape[a])) : sizeOf(shape);
  return { data: r.data.map((v) => v / count), shape: r.shape };
}

describe('sumAll / meanAll', () => {
  // 1 element, primes, around one workgroup's 2048 elements, several passes, > 10^6.
  // (The 10^7 test below takes three passes.)
  const SIZES = [1, 7, 255, 2047, 2048, 2049, 65_537, 1_000_003];
  for (const n of SIZES) {
    it(`n=${n}`, async () => {
      const x = randomArray(n, n, -1, 2);
      const t = Tensor.fromArray(device, x, [n]);
      const s = sumAll(t);
      const m = meanAll(t);
      const scaled = sumAll(t, -0.5);
      expect(s.shape).toEqual([]);
      expect(m.shape).toEqual([]);
      let want = 0;
      let abs = 0;
      for (const v of x) {
        want += v;
        abs += Math.abs(v);
      }
      // Error relative to Σ|x| (the sum itself may cancel).
      const tol = { rtol: 0, atol: 1e-6 * abs };
      expectClose(await read(s), [want], { ...tol, label: 'sumAll' });
      expectClose(await read(scaled), [-0.5 * want], { ...tol, label: 'sumAll scaled' });
      expectClose(await read(m), [want / n], { rtol: 0, atol: (1e-6 * abs) / n, label: 'meanAll' });
      t.dispose();
    });
  }

  it('10^7 values 1 + 1e-3·noise sum to within 1e-6 of the float64 sum (tree + Kahan)', async () => {
    const n = 10_000_000;
    // One-sided noise: a running f32 sum drops most of it once the total
    // passes 2^23, so this input tells a naive sum from an accurate one.
    const noise = randomArray(n, 2024, 0, 1);
    const x = new Float32Array(n);
    let want = 0;
    let naive = 0;
    for (let i = 0; i < n; i++) {
      x[i] = 1 + 1e-3 * noise[i];
      want += x[i];
      naive = Math.fround(naive + x[i]);
    }
    expect(Math.abs(naive - want) / want, 'a running f32 sum fails this test').toBeGreaterThan(1e-5);
    const t = Tensor.fromArray(device, x, [n]);
    const got = (await read(sumAll(t)))[0];
    const gotMean = (await read(meanAll(t)))[0];
    t.dispose();
    expect(Math.abs(got - want) / want, `sum ${got} vs ${want}`).toBeLessThan(1e-6);
    expect(Math.abs(gotMean - want / n) / (want / n), `mean ${gotMean} vs ${want / n}`).toBeLessThan(1e-6);
  });

  it('an empty tensor sums to 0', async () => {
    const t = Tensor.zeros(device, [0, 3]);
    expect(Array.from(await read(sumAll(t)))).toEqual([0]);
    t.dispose();
  });
});

interface AxisCase {
  shape: number[];
  axes?: number[];
  note: string;
  /** Slow on a software adapter: run sum with keepDims=false only. */
  once?: boolean;
}

const AXIS_CASES: AxisCase[] = [
  { shape: [5], axes: [0], note: 'vector' },
  { shape: [2, 3, 4, 5], axes: [1], note: 'middle axis, few elements (one thread per output)' },
  { shape: [2, 3, 4, 5], axes: [0, 3], note: 'non-adjacent axes' },
  { shape: [2, 3, 4, 5], axes: [-1], note: 'negative axis' },
  { shape: [2, 3, 4, 5], axes: [-3, -1], note: 'two negative axes' },
  { shape: [2, 3, 4, 5], axes: [3, -1], note: 'the same axis twice' },
  { shape: [2, 3, 4, 5], axes: [0, 1, 2, 3], note: 'all axes listed' },
  { shape: [2, 3, 4, 5], axes: [], note: 'no axes: a copy' },
  { shape: [2, 3, 4, 5], note: 'axes omitted' },
  { shape: [4, 3, 17, 19], axes: [0, 2, 3], note: 'per-channel sum of NCHW (one workgroup per output)' },
  { shape: [2, 5, 33, 31], axes: [2, 3], note: 'per-(n,c) spatial sum, as instance norm' },
  { shape: [3, 40, 5, 7], axes: [1, 3], note: 'strided axes, 280 per output' },
  { shape: [7, 33], axes: [1], note: 'just above the thread/workgroup switch' },
  { shape: [7, 32], axes: [1], note: 'at the thread/workgroup switch' },
  { shape: [1, 1, 1], axes: [1], note: 'ones' },
  { shape: [97, 1031], axes: [0], note: 'long reduction over the outer axis' },
  { shape: [65_537, 33], axes: [1], note: 'more than 65535 outputs: 2-D dispatch, one workgroup each', once: true },
];

describe('sum / mean over axes', () => {
  for (const c of AXIS_CASES) {
    for (const keepDims of c.once ? [false] : [false, true]) {
      it(`${JSON.stringify(c.shape)} axes ${JSON.stringify(c.axes)} keepDims=${keepDims}: ${c.note}`, async () => {
        const n = sizeOf(c.shape);
        const x = randomArray(n, n + 1, -1, 1);
        const t = Tensor.fromArray(device, x, c.shape);
        const s = sum(t, c.axes, keepDims);
        const m = c.once ? null : mean(t, c.axes, keepDims);
        const wantS = sumRef(x, c.shape, c.axes, keepDims);
        const wantM = meanRef(x, c.shape, c.axes, keepDims);
        expect(s.shape).toEqual(wantS.shape);
        if (m) expect(m.shape).toEqual(wantS.shape);
        const count = n / Math.max(wantS.data.length, 1);
        // The error of a sum of `count` terms of size ≤ 1 is far below 1e-6·count.
        expectClose(await read(s), wantS.data, { rtol: 0, atol: 1e-6 * Math.max(count, 1), label: 'sum' });
        if (m) expectClose(await read(m), wantM.data, { rtol: 0, atol: 1e-6, label: 'mean' });
        t.dispose();
      });
    }
  }

  it('keepDims shapes and the scale argument', () => {
    tidy(() => {
      const t = Tensor.zeros(device, [2, 3, 4, 5]);
      expect(sum(t, [0, 2, 3], true).shape).toEqual([1, 3, 1, 1]);
      expect(sum(t, [0, 2, 3]).shape).toEqual([3]);
      expect(sum(t, undefined, true).shape).toEqual([1, 1, 1, 1]);
      expect(mean(t).shape).toEqual([]);
      expect(sum(t, [-4]).shape).toEqual([3, 4, 5]);
    });
  });

  it('a sum over an empty axis is 0 (as PyTorch)', async () => {
    const t = Tensor.zeros(device, [3, 0, 2]);
    const s = sum(t, [1]);
    expect(s.shape).toEqual([3, 2]);
    expect(Array.from(await read(s))).toEqual([0, 0, 0, 0, 0, 0]);
    const e = sum(t, [0]);
    expect(e.shape).toEqual([0, 2]);
    e.dispose();
    t.dispose();
  });

  it('applies scale', async () => {
    const x = randomArray(60, 3);
    const t = Tensor.fromArray(device, x, [3, 20]);
    const got = await read(sum(t, [1], false, 0.25));
    expectClose(
      got,
      sumRef(x, [3, 20], [1]).data.map((v) => v * 0.25),
      { rtol: 1e-6, label: 'scaled sum' },
    );
    t.dispose();
  });

  it('known values', async () => {
    const t = Tensor.fromArray(device, [1, 2, 3, 4, 5, 6], [2, 3]);
    expect(Array.from(await read(sum(t, [0])))).toEqual([5, 7, 9]);
    expect(Array.from(await read(sum(t, [1])))).toEqual([6, 15]);
    expect(Array.from(await read(mean(t, [-1], true)))).toEqual([2, 5]);
    expect(Array.from(await read(sumAll(t)))).toEqual([21]);
    expect(Array.from(await read(meanAll(t)))).toEqual([3.5]);
    t.dispose();
  });

  it('throws ShapeError naming the op and the shape for bad axes', () => {
    tidy(() => {
      const t = Tensor.zeros(device, [2, 3, 4, 5]);
      expect(() => sum(t, [4])).toThrow(ShapeError);
      expect(() => sum(t, [4])).toThrow(/sum: axis 4 is out of range for \[2,3,4,5\]/);
      expect(() => sum(t, [-5])).toThrow(/sum: axis -5 is out of range/);
      expect(() => sum(t, [1.5])).toThrow(ShapeError);
      expect(() => mean(t, [0, 7])).toThrow(/mean: axis 7 is out of range for \[2,3,4,5\]/);
      expect(() => sum(Tensor.zeros(device, []), [0])).toThrow(ShapeError);
    });
  });
});
