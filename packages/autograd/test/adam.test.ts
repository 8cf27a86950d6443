import { StateDictError } from '@cg/autograd';
import { type Device, keep, Tensor } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { Adam } from '../src/optim/adam.js';
import { parameter, type Variable } from '../src/variable.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

/** torch.optim.Adam's update in float64, written from its documentation. */
class AdamRef {
  m: Float64Array;
  v: Float64Array;
  t = 0;
  constructor(
    public p: Float64Array,
    readonly h: { lr: number; b1: number; b2: number; eps: number; wd: number },
  ) {
    this.m = new Float64Array(p.length);
    this.v = new Float64Array(p.length);
  }
  step(grad: ArrayLike<number>, lr = this.h.lr): void {
    const { b1, b2, eps, wd } = this.h;
    this.t++;
    for (let i = 0; i < this.p.length; i++) {
      const g = grad[i] + wd * this.p[i];
      this.m[i] = b1 * this.m[i] + (1 - b1) * g;
      this.v[i] = b2 * this.v[i] + (1 - b2) * g * g;
      const mHat = this.m[i] / (1 - b1 ** this.t);
      const vHat = this.v[i] / (1 - b2 ** this.t);
      this.p[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  }
}

const param = (data: Float32Array, shape: number[]) => parameter(Tensor.fromArray(device, data, shape));
function setGrad(p: Variable, g: Float32Array): void {
  p.zeroGrad();
  p.grad = keep(Tensor.fromArray(device, g, p.shape));
}

describe('Adam', () => {
  for (const wd of [0, 0.1]) {
    it(`matches a float64 reference over 5 steps (weightDecay ${wd}), skipping params without grad`, async () => {
      const h = { lr: 0.01, b1: 0.5, b2: 0.999, eps: 1e-8, wd };
      const a0 = randomArray(7, 1);
      const b0 = randomArray(6, 2);
      const c0 = randomArray(4, 3);
      const a = param(a0, [7]);
      const b = param(b0, [2, 3]);
      const c = param(c0, [4]); // never gets a gradient
      const opt = new Adam([a, b, c], { lr: h.lr, betas: [h.b1, h.b2], eps: h.eps, weightDecay: wd });
      const ra = new AdamRef(Float64Array.from(a0), h);
      const rb = new AdamRef(Float64Array.from(b0), h);
      for (let s = 0; s < 5; s++) {
        const ga = randomArray(7, 10 + s, -2, 2);
        setGrad(a, ga);
        ra.step(ga);
        if (s !== 2) {
          // b misses step 2: its step count lags a's, as in PyTorch.
          const gb = randomArray(6, 20 + s, -1e-3, 1e-3);
          setGrad(b, gb);
          rb.step(gb);
        } else {
          b.zeroGrad();
        }
        opt.step();
      }
      expectClose(await a.toArray(), ra.p, { rtol: 2e-6, atol: 1e-7, label: 'a' });
      expectClose(await b.toArray(), rb.p, { rtol: 2e-6, atol: 1e-7, label: 'b' });
      expect(Array.from(await c.toArray())).toEqual(Array.from(c0));
      const sd = await opt.stateDict();
      expect(sd.state.map((s) => s?.step ?? null)).toEqual([5, 4, null]);
      expectClose(sd.state[0]!.expAvg.data, ra.m, { rtol: 1e-5, label: 'exp_avg' });
      expectClose(sd.state[0]!.expAvgSq.data, ra.v, { rtol: 1e-5, label: 'exp_avg_sq' });
      opt.dispose();
      for (const p of [a, b, c]) p.dispose();
    });
  }

  it('setLearningRate applies to the next step', async () => {
    const p = param(new Float32Array([1, -1]), [2]);
    const opt = new Adam([p], { lr: 0.1 });
    const ref = new AdamRef(Float64Array.from([1, -1]), { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0 });
    setGrad(p, new Float32Array([0.5, 0.25]));
    opt.step();
    ref.step([0.5, 0.25]);
    opt.setLearningRate(0.05);
    expect(opt.lr).toBe(0.05);
    opt.step();
    ref.step([0.5, 0.25], 0.05);
    expectClose(await p.toArray(), ref.p, { rtol: 1e-6 });
    expect(() => opt.setLearningRate(Number.NaN)).toThrow(/lr must be/);
    opt.dispose();
    p.dispose();
  });

  it('stateDict/loadStateDict resume exactly', async () => {
    const init = randomArray(10, 5);
    const grads = [0, 1, 2, 3, 4].map((s) => randomArray(10, 40 + s));
    const run = async (opt: Adam, p: Variable, steps: number[]) => {
      for (const s of steps) {
        setGrad(p, grads[s]);
        opt.step();
      }
      p.zeroGrad();
    };
    // Straight through: 5 steps.
    const p1 = param(init, [10]);
    const o1 = new Adam([p1], { lr: 0.02, betas: [0.5, 0.999] });
    await run(o1, p1, [0, 1, 2, 3, 4]);
    // Interrupted after 3 steps, resumed into a fresh optimizer.
    const p2 = param(init, [10]);
    const o2 = new Adam([p2], { lr: 0.02, betas: [0.5, 0.999] });
    await run(o2, p2, [0, 1, 2]);
    const saved = await o2.stateDict();
    const p3 = param(await p2.toArray(), [10]);
    const o3 = new Adam([p3]);
    o3.loadStateDict(saved);
    expect(o3.lr).toBe(0.02);
    expect(o3.betas).toEqual([0.5, 0.999]);
    await run(o3, p3, [3, 4]);
    expect(Array.from(await p3.toArray())).toEqual(Array.from(await p1.toArray()));

    const bad = { ...saved, state: [{ ...saved.state[0]!, expAvg: { shape: [9], data: new Float32Array(9) } }] };
    expect(() => o3.loadStateDict(bad)).toThrow(StateDictError);
    expect(() => o3.loadStateDict({ ...saved, state: [] })).toThrow(/has 0 parameters, this optimizer 1/);
    for (const o of [o1, o2, o3]) o.dispose();
    for (const p of [p1, p2, p3]) p.dispose();
  });
});
