import type { Device } from '@cg/tensor-core';
import { ArgumentError, ShapeError, sizeOf, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray, readAndDispose } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { type AdamHyper, adamStep, adamStepRef } from '../src/ops/adam.js';
import {
  bceWithLogitsLoss,
  bceWithLogitsLossBackward,
  bceWithLogitsLossRef,
  LOSS_OPS,
  type LossOp,
  l1Loss,
  l1LossBackward,
  meanLoss,
  meanLossBackward,
  meanLossBackwardRef,
  meanLossRef,
  mseLoss,
  mseLossBackward,
  mseLossBackwardRef,
  mseLossRef,
} from '../src/ops/loss.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

/** Counts dispatches recorded while `fn` runs. */
function countDispatches(fn: () => void): number {
  let count = 0;
  const original = device.dispatch;
  device.dispatch = function (this: Device, ...args: Parameters<Device['dispatch']>) {
    count++;
    return original.apply(this, args);
  };
  try {
    fn();
  } finally {
    device.dispatch = original;
  }
  return count;
}

const read = readAndDispose;

// Awkward sizes: one element, primes, non-multiples of the workgroup (and of
// the 2048 elements one workgroup sums), a multi-pass reduction, and > 10^6.
const SHAPES: number[][] = [[1], [7], [2, 3, 5], [3, 1, 13, 17], [2049], [1, 3, 61, 67], [1_000_003]];

interface LossCase {
  op: LossOp;
  /** Range of x and of tensor targets. */
  x: [number, number];
  t: [number, number];
  /** Number targets to test besides a tensor target. */
  scalars: number[];
  /** Keep finite-difference samples this far from x = t (the kink of |x − t|). */
  kinkMargin: number;
  /** Tolerance of the GPU mean vs the float64 mean, relative to its magnitude. */
  rtol: number;
}

const CASES: LossCase[] = [
  { op: 'mseLoss', x: [-2, 2], t: [-1, 1], scalars: [1, 0], kinkMargin: 0, rtol: 2e-6 },
  { op: 'l1Loss', x: [-2, 2], t: [-1, 1], scalars: [1, 0], kinkMargin: 1e-2, rtol: 2e-6 },
  { op: 'bceWithLogitsLoss', x: [-12, 12], t: [0, 1], scalars: [1, 0, 0.3], kinkMargin: 0, rtol: 1e-5 },
];

type TargetKind = 'tensor' | number;
const kindName = (k: TargetKind) => (k === 'tensor' ? 'tensor target' : `target ${k}`);

function inputs(c: LossCase, n: number, seed: number, kind: TargetKind) {
  const x = randomArray(n, seed, c.x[0], c.x[1]);
  const t = kind === 'tensor' ? randomArray(n, seed + 1, c.t[0], c.t[1]) : kind;
  if (c.kinkMargin > 0) {
    for (let i = 0; i < n; i++) {
      const ti = typeof t === 'number' ? t : t[i];
      if (Math.abs(x[i] - ti) < c.kinkMargin) x[i] = ti + 2 * c.kinkMargin;
    }
  }
  return { x, t };
}

describe('losses', () => {
  for (const c of CASES) {
    describe(c.op, () => {
      const kinds: TargetKind[] = ['tensor', ...c.scalars];
      for (const kind of kinds) {
        for (const n of [1, 7, 300]) {
          it(`reference backward vs central differences, ${kindName(kind)}, n=${n}`, () => {
            const { x, t } = inputs(c, n, 40 + n, kind);
            const xd = Float64Array.from(x);
            const v = Float64Array.from(randomArray(n, n + 3, -1, 1));
            const dLoss = 0.75;
            const h = 1e-6;
            const L = (s: number) =>
              dLoss *
              meanLossRef(
                c.op,
                xd.map((xi, i) => xi + s * v[i]),
                t,
              );
            const fd = (L(h) - L(-h)) / (2 * h);
            const dx = meanLossBackwardRef(c.op, dLoss, xd, t);
            let an = 0;
            let mag = 0;
            for (let i = 0; i < n; i++) {
              an += dx[i] * v[i];
              mag += Math.abs(dx[i] * v[i]);
            }
            expect(Math.abs(fd - an), `fd ${fd} vs analytic ${an}`).toBeLessThan(1e-7 * (mag + 1e-3));
          });
        }
      }

      for (const shape of SHAPES) {
        for (const kind of kinds.slice(0, 2)) {
          const n = sizeOf(shape);
          it(`GPU forward and backward vs reference ${JSON.stringify(shape)}, ${kindName(kind)}`, async () => {
            const { x, t } = inputs(c, n, n + 9, kind);
            const xt = Tensor.fromArray(device, x, shape);
            const tt = typeof t === 'number' ? t : Tensor.fromArray(device, t, shape);
            const y = meanLoss(c.op, xt, tt);
            expect(y.shape).toEqual([]);
            const dLoss = Tensor.fromArray(device, [0.75], []);
            const dx = meanLossBackward(c.op, dLoss, xt, tt);
            expect(dx.shape).toEqual(shape);
            expectClose(await read(y), [meanLossRef(c.op, x, t)], {
              rtol: c.rtol,
              atol: 1e-7,
              label: `${c.op} forward`,
            });
            expectClose(await read(dx), meanLossBackwardRef(c.op, Math.fround(0.75), x, t), {
              rtol: 4e-6,
              // A few f32 ulps of an O(1) gradient before the 1/n: sigmoid(x) − t and x − t cancel.
              atol: (3e-7 * 0.75) / n,
              label: `${c.op} backward`,
            });
            xt.dispose();
            dLoss.dispose();
            if (typeof tt !== 'number') tt.dispose();
          });
        }
      }

      it('checks shapes: target, dLoss, empty x', () => {
        tidy(() => {
          const x = Tensor.zeros(device, [2, 3]);
          expect(() => meanLoss(c.op, x, Tensor.zeros(device, [3, 2]))).toThrow(ShapeError);
          expect(() => meanLoss(c.op, x, Tensor.zeros(device, [3, 2]))).toThrow(
            new RegExp(`${c.op}: x \\[2,3\\] and target \\[3,2\\] must have the same shape`),
          );
          expect(() => meanLossBackward(c.op, Tensor.zeros(device, [2]), x, 1)).toThrow(
            new RegExp(`${c.op}Backward: dLoss must hold one element \\(expected shape \\[\\], got \\[2\\]\\)`),
          );
          expect(() => meanLossBackward(c.op, Tensor.zeros(device, []), x, Tensor.zeros(device, [6]))).toThrow(
            ShapeError,
          );
          expect(() => meanLoss(c.op, Tensor.zeros(device, [0, 3]), 1)).toThrow(/x is empty/);
        });
      });

      it('forward of up to 2048 elements and backward are one dispatch each', () => {
        tidy(() => {
          const x = Tensor.zeros(device, [2048]);
          expect(countDispatches(() => meanLoss(c.op, x, 1))).toBe(1);
          expect(countDispatches(() => meanLoss(c.op, x, x))).toBe(1);
          expect(countDispatches(() => meanLossBackward(c.op, Tensor.zeros(device, []), x, 1))).toBe(1);
        });
      });
    });
  }

  it('covers every loss in the table', () => {
    expect(CASES.map((c) => c.op).sort()).toEqual(Object.keys(LOSS_OPS).sort());
  });

  it('known values on tiny inputs', async () => {
    const v = (a: number[]) => Tensor.fromArray(device, a, [a.length]);
    const one = Tensor.fromArray(device, [1], []);
    const got = await Promise.all(
      tidy(() => [
        mseLoss(v([1, 2, 3]), v([0, 0, 0])),
        mseLoss(v([1, 2, 3]), 1),
        l1Loss(v([1, -2, 3]), 0),
        l1Loss(v([1, -2, 3]), v([1, 0, 0])),
        bceWithLogitsLoss(v([0, 0]), v([1, 0])),
        mseLossBackward(one, v([1, 2, 3]), 0),
        l1LossBackward(one, v([1, -2, 3]), v([1, 0, 0])),
        bceWithLogitsLossBackward(one, v([0, 0]), v([1, 0])),
      ]).map(read),
    );
    one.dispose();
    expectClose(got[0], [14 / 3], { rtol: 1e-7, label: 'mse' });
    expectClose(got[1], [5 / 3], { rtol: 1e-7, label: 'mse scalar target' });
    expectClose(got[2], [2], { rtol: 1e-7, label: 'l1' });
    expectClose(got[3], [5 / 3], { rtol: 1e-7, label: 'l1 tensor target' });
    expectClose(got[4], [Math.LN2], { rtol: 1e-7, label: 'bce' });
    expectClose(got[5], [2 / 3, 4 / 3, 2], { rtol: 1e-7, label: 'mse backward' });
    expectClose(mseLossBackwardRef(1, [1, 2, 3], 0), [2 / 3, 4 / 3, 2], { rtol: 1e-12, label: 'mse backward ref' });
    expectClose([mseLossRef([1, 2, 3], [0, 0, 0])], [14 / 3], { rtol: 1e-12, label: 'mse ref' });
    expect(Array.from(got[6])).toEqual([0, -1 / 3, 1 / 3].map(Math.fround)); // sign(0) = 0
    expectClose(got[7], [-0.25, 0.25], { rtol: 1e-7, label: 'bce backward' });
  });

  it('BCE with logits is finite and correct at |x| = 100 (and at 30, 0)', async () => {
    const xs = [100, -100, 100, -100, 30, -30, 0, 100, -100];
    const ts = [1, 1, 0, 0, 1, 0, 0.5, 0.3, 0.3];
    const dLoss = Tensor.fromArray(device, [1], []);
    for (let i = 0; i < xs.length; i++) {
      const x = Tensor.fromArray(device, [xs[i]], [1]);
      for (const target of [ts[i], Tensor.fromArray(device, [ts[i]], [1])]) {
        const y = (await read(bceWithLogitsLoss(x, target)))[0];
        const dx = (await read(bceWithLogitsLossBackward(dLoss, x, target)))[0];
        const want = bceWithLogitsLossRef([xs[i]], ts[i]);
        const wantDx = meanLossBackwardRef('bceWithLogitsLoss', 1, [xs[i]], ts[i])[0];
        expect(Number.isFinite(y) && Number.isFinite(dx), `x=${xs[i]} t=${ts[i]}: ${y}, ${dx}`).toBe(true);
        // want is 100, 70, 30, log 2, or below 1e-13.
        expect(Math.abs(y - want), `loss x=${xs[i]} t=${ts[i]}`).toBeLessThanOrEqual(1e-6 * Math.abs(want) + 1e-12);
        expect(Math.abs(dx - wantDx), `grad x=${xs[i]} t=${ts[i]}`).toBeLessThanOrEqual(1e-7);
        if (typeof target !== 'number') target.dispose();
      }
      x.dispose();
    }
    dLoss.dispose();
  });

  it('BCE keeps precision for confident, correct logits (log1p of tiny values)', async () => {
    // Every element's loss is e^-|x| ≈ 2e-9 … 1e-7; log(1 + e^-|x|) in f32 would round them to 0.
    const n = 10_001;
    const x = randomArray(n, 5, 16, 20);
    const xt = Tensor.fromArray(device, x, [n]);
    const got = (await read(bceWithLogitsLoss(xt, 1)))[0];
    xt.dispose();
    const want = bceWithLogitsLossRef(x, 1);
    expect(Math.abs(got - want) / want).toBeLessThan(1e-4);
  });

  it('mean of 4·10^6 elements stays accurate (partials + tree, not a running f32 sum)', async () => {
    const n = 4_000_037;
    const x = randomArray(n, 8, 0.9, 1.1);
    const xt = Tensor.fromArray(device, x, [n]);
    const got = (await read(mseLoss(xt, 0)))[0];
    xt.dispose();
    expect(Math.abs(got - mseLossRef(x, 0)) / mseLossRef(x, 0)).toBeLessThan(1e-6);
  });
});

describe('adamStep', () => {
  const HYPERS: { name: string; h: Omit<AdamHyper, 'step'> }[] = [
    {
      name: 'CycleGAN (lr 2e-4, betas 0.5/0.999)',
      h: { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
    },
    { name: 'PyTorch defaults', h: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 } },
    { name: 'weight decay', h: { lr: 1e-2, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 } },
    { name: 'large lr and eps', h: { lr: 0.3, beta1: 0.9, beta2: 0.999, eps: 0.1, weightDecay: 0.5 } },
  ];
  const STEPS = 5;
  const ADAM_SHAPES: number[][] = [[1], [7], [3, 5, 17], [64, 3, 7, 7], [100_003]];

  for (const { name, h } of HYPERS) {
    for (const shape of ADAM_SHAPES) {
      it(`${STEPS} steps vs float64 PyTorch formula: ${name} ${JSON.stringify(shape)}`, async () => {
        const n = sizeOf(shape);
        // Parameters at the scale of normal(0, 0.02) init, so f32 rounding of p stays far below the updates.
        const p0 = randomArray(n, n, -0.05, 0.05);
        const param = Tensor.fromArray(device, p0, shape);
        const m = Tensor.zeros(device, shape);
        const v = Tensor.zeros(device, shape);
        const rp = Float64Array.from(p0);
        const rm = new Float64Array(n);
        const rv = new Float64Array(n);
        for (let step = 1; step <= STEPS; step++) {
          // Gradients of mixed scale and sign, correlated with the previous step like real ones.
          const g = randomArray(n, n * 13 + step, -1, 1).map((gi, i) => gi * (i % 3 === 0 ? 1e-3 : 1) + 0.3);
          const grad = Tensor.fromArray(device, g, shape);
          expect(countDispatches(() => adamStep(param, grad, m, v, { ...h, step }))).toBe(1);
          adamStepRef(rp, g, rm, rv, { ...h, step });
          if (step === STEPS) expect(await grad.toArray()).toEqual(g); // grad is left alone
          grad.dispose();
        }
        const got = await read(param);
        const delta = Float64Array.from(got, (pi, i) => pi - p0[i]);
        const wantDelta = Float64Array.from(rp, (pi, i) => pi - p0[i]);
        expectClose(delta, wantDelta, { rtol: 2e-5, atol: 0, label: 'param update' });
        expectClose(await read(m), rm, { rtol: 4e-6, atol: 0, label: 'm' });
        expectClose(await read(v), rv, { rtol: 4e-6, atol: 0, label: 'v' });
      });
    }
  }

  it('first step moves each parameter by lr·sign(g) (bias correction, eps 0)', async () => {
    const g = [3, -0.001, 1e-6, -50];
    const [param, grad, m, v] = [[1, 1, 1, 1], g, [0, 0, 0, 0], [0, 0, 0, 0]].map((a) =>
      Tensor.fromArray(device, a, [4]),
    );
    adamStep(param, grad, m, v, { lr: 0.125, beta1: 0.9, beta2: 0.999, eps: 0, weightDecay: 0, step: 1 });
    expectClose(await read(param), [0.875, 1.125, 0.875, 1.125], { rtol: 1e-6, label: 'step 1' });
    for (const t of [grad, m, v]) t.dispose();
  });

  it('validates shapes and hyperparameters', () => {
    tidy(() => {
      const z = (s: number[]) => Tensor.zeros(device, s);
      const ok: AdamHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 };
      expect(() => adamStep(z([2, 3]), z([2, 3]), z([6]), z([2, 3]), ok)).toThrow(
        /adamStep: param \[2,3\] and m \[6\] must have the same shape/,
      );
      expect(() => adamStep(z([2]), z([3]), z([2]), z([2]), ok)).toThrow(ShapeError);
      for (const bad of [{ step: 0 }, { step: 1.5 }, { lr: -1 }, { beta1: 1 }, { beta2: -0.1 }, { eps: Number.NaN }]) {
        expect(() => adamStep(z([2]), z([2]), z([2]), z([2]), { ...ok, ...bad })).toThrow(ArgumentError);
      }
    });
  });
});
