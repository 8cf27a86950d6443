import type { Device, Shape } from '@cg/tensor-core';
import { ShapeError, sizeOf, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { concat, concatRef, split, splitRef } from '../src/ops/concat.js';
import {
  type PadMode,
  type Pads,
  pad2d,
  pad2dBackward,
  pad2dBackwardRef,
  pad2dRef,
  reflectionPad2d,
  reflectionPad2dBackward,
  reflectionPad2dBackwardRef,
  replicationPad2d,
  zeroPad2d,
  zeroPad2dBackward,
} from '../src/ops/pad2d.js';
import {
  type UpsampleMode,
  upsample2d,
  upsample2dBackward,
  upsample2dBackwardRef,
  upsample2dRef,
} from '../src/ops/upsample2d.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

type Ref = { data: Float64Array; shape: number[] };

/**
 * One row per op instance. Every op here is linear, with one or more inputs
 * and outputs: forward maps inputs to outputs, backward maps output
 * gradients to input gradients. The references are independent: forwards
 * from the definition, backwards as scatter-adds (the adjoint), while the
 * GPU backwards are gathers.
 */
interface Case {
  name: string;
  inShapes: Shape[];
  fwd: (xs: Tensor[]) => Tensor[];
  bwd: (dys: Tensor[]) => Tensor[];
  ref: (xs: Float64Array[]) => Ref[];
  bwdRef: (dys: Float64Array[]) => Ref[];
  rtol?: number;
}

function padCase(mode: PadMode, xShape: Shape, pads: Pads): Case {
  return {
    name: `${mode} pad ${JSON.stringify(xShape)} pads ${JSON.stringify(pads)}`,
    inShapes: [xShape],
    fwd: ([x]) => [pad2d(x, pads, mode)],
    bwd: ([dy]) => [pad2dBackward(dy, xShape, pads, mode)],
    ref: ([x]) => [pad2dRef(x, xShape, pads, mode)],
    bwdRef: ([dy]) => [pad2dBackwardRef(dy, xShape, pads, mode)],
  };
}

function concatCase(shapes: Shape[], axis: number): Case {
  const ax = axis < 0 ? axis + shapes[0].length : axis;
  const sizes = shapes.map((s) => s[ax]);
  const outShape = concatRef(
    shapes.map((shape) => ({ data: new Float64Array(sizeOf(shape)), shape })),
    axis,
  ).shape;
  return {
    name: `concat/split axis ${axis} ${shapes.map((s) => JSON.stringify(s)).join(' ')}`,
    inShapes: shapes,
    fwd: (xs) => [concat(xs, axis)],
    bwd: ([dy]) => split(dy, sizes, axis),
    ref: (xs) => [
      concatRef(
        xs.map((data, i) => ({ data, shape: shapes[i] })),
        axis,
      ),
    ],
    bwdRef: ([dy]) => splitRef(dy, outShape, sizes, axis),
  };
}

function splitCase(shape: Shape, sizes: number[], axis: number): Case {
  const ax = axis < 0 ? axis + shape.length : axis;
  return {
    name: `split/concat axis ${axis} ${JSON.stringify(shape)} into ${JSON.stringify(sizes)}`,
    inShapes: [shape],
    fwd: ([x]) => split(x, sizes, axis),
    bwd: (dys) => [concat(dys, axis)],
    ref: ([x]) => splitRef(x, shape, sizes, axis),
    bwdRef: (dys) => [
      concatRef(
        dys.map((data, i) => ({ data, shape: shape.map((d, j) => (j === ax ? sizes[i] : d)) })),
        axis,
      ),
    ],
  };
}

function upsampleCase(mode: UpsampleMode, xShape: Shape, scale: number): Case {
  return {
    name: `upsample ${mode} ×${scale} ${JSON.stringify(xShape)}`,
    inShapes: [xShape],
    fwd: ([x]) => [upsample2d(x, scale, mode)],
    bwd: ([dy]) => [upsample2dBackward(dy, xShape, scale, mode)],
    ref: ([x]) => [upsample2dRef(x, xShape, scale, mode)],
    bwdRef: ([dy]) => [upsample2dBackwardRef(dy, xShape, scale, mode)],
    rtol: mode === 'bilinear' ? 4e-6 : 1e-6,
  };
}

const CASES: Case[] = [
  padCase('reflect', [2, 3, 5, 7], [1, 2, 3, 4]),
  padCase('reflect', [1, 2, 4, 4], [3, 3, 3, 3]),
  padCase('reflect', [3, 1, 1, 6], [5, 2, 0, 0]),
  padCase('reflect', [1, 4, 13, 8], [1, 1, 1, 1]),
  padCase('reflect', [1, 1, 2, 2], [1, 0, 0, 1]),
  padCase('replicate', [2, 3, 5, 7], [1, 2, 3, 4]),
  padCase('replicate', [1, 2, 1, 1], [2, 3, 4, 5]),
  padCase('replicate', [1, 1, 3, 2], [0, 4, 2, 0]),
  padCase('zero', [2, 3, 5, 7], [1, 2, 3, 4]),
  padCase('zero', [1, 2, 6, 7], [-1, 2, -2, 0]),
  padCase('zero', [1, 1, 1, 1], [0, 0, 0, 0]),
  concatCase(
    [
      [2, 3, 4, 5],
      [2, 1, 4, 5],
      [2, 2, 4, 5],
    ],
    1,
  ),
  concatCase(
    [
      [1, 64, 3, 3],
      [1, 32, 3, 3],
    ],
    1,
  ),
  concatCase(
    [
      [1, 2, 3],
      [2, 2, 3],
    ],
    0,
  ),
  concatCase(
    [
      [2, 3, 4, 5],
      [2, 3, 4, 2],
    ],
    -1,
  ),
  concatCase(
    [
      [2, 3, 1, 5],
      [2, 3, 6, 5],
      [2, 3, 2, 5],
    ],
    2,
  ),
  concatCase([[3, 2, 2, 2]], 1),
  splitCase([2, 6, 3, 3], [1, 3, 2], 1),
  splitCase([20, 20, 2, 2], [5, 0, 15], 1),
  splitCase([2, 3, 4, 9], [4, 5], 3),
  upsampleCase('nearest', [2, 3, 5, 7], 2),
  upsampleCase('nearest', [1, 2, 4, 3], 3),
  upsampleCase('nearest', [1, 1, 3, 3], 1),
  upsampleCase('bilinear', [2, 3, 5, 7], 2),
  upsampleCase('bilinear', [1, 2, 4, 3], 3),
  upsampleCase('bilinear', [1, 1, 3, 5], 4),
  upsampleCase('bilinear', [1, 2, 1, 1], 2),
  upsampleCase('bilinear', [1, 2, 2, 1], 3),
  upsampleCase('bilinear', [1, 1, 3, 3], 1),
];

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

describe('pad, concat/split and upsample', () => {
  CASES.forEach((c, ci) => {
    describe(c.name, () => {
      const seed = 300 + 31 * ci;
      const xs = c.inShapes.map((s, i) => randomArray(sizeOf(s), seed + i, -2, 2));
      const outs = c.ref(xs.map((x) => Float64Array.from(x)));
      const dys = outs.map((o, i) => randomArray(o.data.length, seed + 50 + i, -1, 1));
      const rtol = c.rtol ?? 1e-6;

      it('GPU forward vs float64 reference', async () => {
        const got = tidy(() => c.fwd(xs.map((x, i) => Tensor.fromArray(device, x, c.inShapes[i]))));
        expect(got.map((t) => t.shape)).toEqual(outs.map((o) => o.shape));
        for (let i = 0; i < got.length; i++) {
          expectClose(await got[i].toArray(), outs[i].data, { rtol, atol: 1e-7, label: `y${i}` });
          got[i].dispose();
        }
      });

      it('reference backward vs central differences', () => {
        // L(x) = Σ <y_k(x), r_k> along a random direction v in every input.
        const r = dys.map((d) => Float64Array.from(d));
        const vs = xs.map((x, i) => Float64Array.from(randomArray(x.length, seed + 90 + i)));
        const eps = 1e-3;
        const L = (sign: number) =>
          c
            .ref(xs.map((x, i) => Float64Array.from(x, (v, j) => v + sign * eps * vs[i][j])))
            .reduce((s, o, k) => s + dot(o.data, r[k]), 0);
        const numeric = (L(1) - L(-1)) / (2 * eps);
        const grads = c.bwdRef(r);
        expect(grads.map((g) => g.shape)).toEqual(c.inShapes.map((s) => [...s]));
        const analytic = grads.reduce((s, g, i) => s + dot(g.data, vs[i]), 0);
        const scale = grads.reduce((s, g) => s + g.data.reduce((a, b) => a + Math.abs(b), 0), 0);
        expect(Math.abs(numeric - analytic)).toBeLessThanOrEqual(1e-9 * scale + 1e-12);
      });

      it('GPU backward vs reference backward', async () => {
        const want = c.bwdRef(dys.map((d) => Float64Array.from(d)));
        const got = tidy(() => c.bwd(dys.map((d, i) => Tensor.fromArray(device, d, outs[i].shape))));
        expect(got.map((t) => t.shape)).toEqual(want.map((w) => w.shape));
        for (let i = 0; i < got.length; i++) {
          expectClose(await got[i].toArray(), want[i].data, { rtol, atol: 1e-7, label: `dx${i}` });
          got[i].dispose();
        }
      });
    });
  });
});

describe('reflectionPad2d', () => {
  it('backward sums mirrored contributions: x=[1,2,3], pads (2,1), dy=[10..60] → dx=[30,120,60]', async () => {
    const xShape = [1, 1, 1, 3];
    const pads: Pads = [2, 1, 0, 0];
    const x = Tensor.fromArray(device, [1, 2, 3], xShape);
    const y = reflectionPad2d(x, pads);
    expect([...(await y.toArray())]).toEqual([3, 2, 1, 2, 3, 2]);
    const dy = Tensor.fromArray(device, [10, 20, 30, 40, 50, 60], [1, 1, 1, 6]);
    const dx = reflectionPad2dBackward(dy, xShape, pads);
    expect([...(await dx.toArray())]).toEqual([30, 120, 60]);
    expect([...reflectionPad2dBackwardRef([10, 20, 30, 40, 50, 60], xShape, pads).data]).toEqual([30, 120, 60]);
    for (const t of [x, y, dy, dx]) t.dispose();
  });

  it('pads [1,256,64,64] by 1 on every side (CycleGAN resnet block shape)', async () => {
    const shape = [1, 256, 64, 64];
    const xa = randomArray(sizeOf(shape), 9);
    const want = pad2dRef(xa, shape, [1, 1, 1, 1], 'reflect');
    const got = tidy(() => reflectionPad2d(Tensor.fromArray(device, xa, shape), [1, 1, 1, 1]));
    expectClose(await got.toArray(), want.data, { rtol: 0, atol: 0, label: 'y' });
    got.dispose();
  });
});

describe('shape errors', () => {
  it('reflect pads must be smaller than the padded dimension', () => {
    tidy(() => {
      const x = Tensor.zeros(device, [1, 2, 3, 4]);
      expect(() => reflectionPad2d(x, [4, 0, 0, 0])).toThrow(ShapeError);
      expect(() => reflectionPad2d(x, [4, 0, 0, 0])).toThrow(
        /reflectionPad2d: left pad must be smaller than the input's W \(expected < 4, got 4; x \[1,2,3,4\]\)/,
      );
      expect(() => reflectionPad2d(x, [0, 0, 0, 3])).toThrow(/bottom pad .*expected < 3, got 3/);
      expect(() => reflectionPad2d(x, [0, -1, 0, 0])).toThrow(/pads must be ≥ 0/);
      expect(() => replicationPad2d(x, [0, 0, -1, 0])).toThrow(/replicationPad2d: pads must be ≥ 0/);
      expect(() => reflectionPad2d(x, [1, 1, 1] as unknown as Pads)).toThrow(/pads must be 4 integers/);
      expect(() => zeroPad2d(x, [-2, -2, 0, 0])).toThrow(/zeroPad2d: pads leave no output/);
      expect(() => reflectionPad2d(Tensor.zeros(device, [2, 3, 4]), [1, 1, 1, 1])).toThrow(
        /x must be \[N,C,H,W\].*x \[2,3,4\]/,
      );
      const dy = Tensor.zeros(device, [1, 2, 5, 5]);
      expect(() => zeroPad2dBackward(dy, [1, 2, 3, 4], [1, 1, 1, 1])).toThrow(
        /zeroPad2dBackward: dy must have the padded shape \(expected \[1,2,5,6\], got \[1,2,5,5\]/,
      );
    });
  });

  it('concat and split check shapes and axes', () => {
    tidy(() => {
      const a = Tensor.zeros(device, [1, 2, 3, 3]);
      const b = Tensor.zeros(device, [1, 2, 4, 3]);
      expect(() => concat([a, b], 1)).toThrow(ShapeError);
      expect(() => concat([a, b], 1)).toThrow(
        /concat: tensor 1 does not match tensor 0 outside axis 1 \(expected \[1,2,3,3\], got \[1,2,4,3\]/,
      );
      expect(() => concat([], 1)).toThrow(/concat: needs at least one tensor/);
      expect(() => concat([a, a], 4)).toThrow(/concat: axis out of range/);
      expect(() => concat([a, Tensor.zeros(device, [1, 2, 3])], 0)).toThrow(ShapeError);
      expect(() => split(a, [1, 2], 1)).toThrow(/split: sizes must .*expected a sum of 2, got \[1,2\]/);
      expect(() => split(a, [2], -5)).toThrow(/split: axis out of range/);
    });
  });

  it('upsample checks scale, mode and dy', () => {
    tidy(() => {
      const x = Tensor.zeros(device, [1, 2, 3, 3]);
      expect(() => upsample2d(x, 1.5, 'nearest')).toThrow(ShapeError);
      expect(() => upsample2d(x, 0, 'bilinear')).toThrow(/upsample2d: scale must be a positive integer/);
      expect(() => upsample2d(x, 2, 'bicubic' as UpsampleMode)).toThrow(/unknown mode/);
      const dy = Tensor.zeros(device, [1, 2, 6, 5]);
      expect(() => upsample2dBackward(dy, [1, 2, 3, 3], 2, 'bilinear')).toThrow(
        /upsample2dBackward: dy must have the upsampled shape \(expected \[1,2,6,6\], got \[1,2,6,5\]/,
      );
    });
  });
});
