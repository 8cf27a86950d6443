import type { Device } from '@cg/tensor-core';
import { ShapeError, sizeOf, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import {
  BINARY_OPS,
  type BinaryOp,
  binary,
  binaryRef,
  UNARY_OPS,
  type UnaryOp,
  unary,
  unaryRef,
} from '../src/index.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

// Awkward sizes: one element, primes, non-multiples of the workgroup, and > 10^6.
const SHAPES: number[][] = [[1], [7], [2, 3, 5], [3, 1, 13, 17], [1, 1, 1, 1], [1_000_003]];

/** Inputs inside each op's domain. */
const DOMAIN: Partial<Record<UnaryOp, [number, number]>> = {
  sqrt: [0.01, 4],
  log: [0.01, 4],
  tanh: [-30, 30],
  exp: [-5, 5],
  sigmoid: [-40, 40],
};

describe('unary ops vs float64 reference', () => {
  for (const op of Object.keys(UNARY_OPS) as UnaryOp[]) {
    for (const shape of SHAPES) {
      it(`${op} ${JSON.stringify(shape)}`, async () => {
        const [lo, hi] = DOMAIN[op] ?? [-3, 3];
        const x = randomArray(sizeOf(shape), shape.length * 31 + shape[0], lo, hi);
        const p = op === 'leakyRelu' ? 0.2 : 1.75;
        const t = Tensor.fromArray(device, x, shape);
        const y = unary(op, t, p);
        expect(y.shape).toEqual(shape);
        expectClose(await y.toArray(), unaryRef(op, x, p), { rtol: 2e-6 * 4, atol: 1e-6, label: op });
        t.dispose();
        y.dispose();
      });
    }
  }
});

/**
 * gelu's Φ (WGSL has no erf) and silu's σ are approximations worth holding
 * to a per-element relative error, not just one relative to the largest
 * output: in the left tail the outputs are tiny and 1 + erf(x/√2) would
 * lose every digit. Measured on SwiftShader: ≤ 8.3e-7 for x ≥ -3, 2e-6 at
 * x = -6 and 5.4e-6 at x = -10 (the f32 exp's own error grows with |arg|).
 */
describe('gelu and silu: per-element relative error over a wide range', () => {
  const BANDS: [number, number, number][] = [
    [-3, 12, 1.5e-6],
    [-12, -3, 2e-5],
  ];
  for (const op of ['gelu', 'silu'] as const) {
    for (const [lo, hi, tol] of BANDS) {
      it(`${op} on [${lo}, ${hi}] within ${tol}`, async () => {
        const n = 100_001;
        const x = Float32Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
        const t = Tensor.fromArray(device, x, [n]);
        const y = unary(op, t);
        const got = await y.toArray();
        const want = unaryRef(op, x);
        let worst = 0;
        let at = 0;
        for (let i = 0; i < n; i++) {
          const err = Math.abs(got[i] - want[i]) / Math.abs(want[i] || 1);
          if (err > worst) [worst, at] = [err, x[i]];
        }
        expect(worst, `${op}: worst relative error at x = ${at}`).toBeLessThanOrEqual(tol);
        t.dispose();
        y.dispose();
      });
    }
  }
});

const PAIRS: [number[], number[]][] = [
  [[5], [5]],
  [
    [2, 3, 4, 5],
    [2, 3, 4, 5],
  ],
  [
    [2, 3, 4, 5],
    [1, 3, 1, 1],
  ], // per-channel vector over NCHW
  [
    [3, 1, 7],
    [1, 5, 1],
  ], // both sides broadcast
  [[2, 3, 4], []], // scalar
  [[1], [6, 1]],
];

describe('binary ops with broadcasting vs float64 reference', () => {
  for (const op of Object.keys(BINARY_OPS) as BinaryOp[]) {
    for (const [sa, sb] of PAIRS) {
      it(`${op} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, async () => {
        const a = randomArray(sizeOf(sa), 3, -2, 2);
        const b = randomArray(sizeOf(sb), 4, 0.5, 2);
        const ta = Tensor.fromArray(device, a, sa);
        const tb = Tensor.fromArray(device, b, sb);
        const y = binary(op, ta, tb, 0.5);
        const want = binaryRef(op, a, sa, b, sb, 0.5);
        expect(y.shape).toEqual(want.shape);
        expectClose(await y.toArray(), want.data, { rtol: 1e-6, label: op });
        for (const t of [ta, tb, y]) t.dispose();
      });
    }
  }

  it('names the op and both shapes when shapes do not broadcast', () => {
    tidy(() => {
      const a = Tensor.zeros(device, [2, 3]);
      const b = Tensor.zeros(device, [4]);
      expect(() => binary('add', a, b)).toThrow(ShapeError);
      expect(() => binary('add', a, b)).toThrow(/add: shapes \[2,3\] and \[4\] do not broadcast/);
    });
  });
});
