import { type Device, LifetimeError, ShapeError, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { F } from '../src/F.js';
import { isGradEnabled, noGrad } from '../src/grad_mode.js';
import { record, type Variable, variable } from '../src/variable.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

const leaf = (data: number[], shape = [data.length], requiresGrad = true) =>
  variable(Tensor.fromArray(device, data, shape), { requiresGrad });
const read = async (t: Tensor | null) => Array.from(await t!.toArray());
const live = () => device.memory().liveTensors;

function freeAll(...vs: Variable[]) {
  for (const v of vs) v.dispose();
}

describe('tape', () => {
  it('fan-out accumulates: y = x*x + x gives dy/dx = 2x + 1', async () => {
    const x = leaf([1, -2, 3]);
    const y = F.sum(F.add(F.mul(x, x), x));
    y.backward();
    expectClose(await read(x.grad), [3, -3, 7]);
    expect(await y.item()).toBe(1 + 4 + 9 + 1 - 2 + 3);
    freeAll(x, y);
  });

  it('a shared subgraph gets the sum of both paths', async () => {
    // h = x·w; y = sum(h·h + 3h) → dy/dh = 2h + 3; dx = w(2h+3), dw = x(2h+3)
    const x = leaf([1, 2]);
    const w = leaf([3, -1]);
    const h = F.mul(x, w);
    const y = F.sum(F.add(F.mul(h, h), F.scale(h, 3)));
    y.backward();
    expectClose(await read(x.grad), [3 * 9, -1 * -1]);
    expectClose(await read(w.grad), [1 * 9, 2 * -1]);
    freeAll(x, w, y);
  });

  it('leaf gradients accumulate over backward calls until zeroGrad', async () => {
    const x = leaf([1, 2, 3]);
    F.sum(F.scale(x, 2)).backward();
    F.sum(F.square(x)).backward();
    expectClose(await read(x.grad), [2 + 2, 2 + 4, 2 + 6]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
    F.mean(x).backward();
    expectClose(await read(x.grad), [1 / 3, 1 / 3, 1 / 3]);
    x.dispose();
  });

  it('broadcast inputs get gradients reduced to their own shapes', async () => {
    const a = variable(Tensor.full(device, [2, 3, 4], 2), { requiresGrad: true });
    const b = variable(Tensor.fromArray(device, [1, 2, 3], [1, 3, 1]), { requiresGrad: true });
    const c = leaf([5], []);
    // y = sum((a·b + c) / c)
    const y = F.sum(F.div(F.add(F.mul(a, b), c), c));
    y.backward();
    expect(a.grad!.shape).toEqual([2, 3, 4]);
    expect(b.grad!.shape).toEqual([1, 3, 1]);
    expect(c.grad!.shape).toEqual([]);
    // dy/db_j = Σ a / c over the 8 broadcast positions = 8·2/5
    expectClose(await read(b.grad), [3.2, 3.2, 3.2]);
    expectClose(
      await read(a.grad),
      Array.from({ length: 24 }, (_, i) => [1, 2, 3][Math.floor(i / 4) % 3] / 5),
    );
    // d/dc of (ab + c)/c = −ab/c² per element: Σ −ab/25 = −(2·4·2·(1+2+3))/25
    expectClose(await read(c.grad), [-(2 * 4 * 2 * 6) / 25]);
    freeAll(a, b, c, y);
  });

  it('sub, neg, exp, log, sqrt, abs, tanh, sigmoid, relu, leakyRelu, mean over axes, reshape', async () => {
    const xs = [0.5, -1.5, 2, -0.25, 1, 3];
    const x = leaf(xs, [2, 3]);
    const pos = leaf([1, 2, 3, 4, 5, 6], [2, 3]);
    const terms = [
      F.sub(F.neg(x), pos),
      F.exp(x),
      F.log(pos),
      F.sqrt(pos),
      F.abs(x),
      F.tanh(x),
      F.sigmoid(x),
      F.relu(x),
      F.leakyRelu(x, 0.2),
      F.reshape(F.mean(x, [1], true), [2, 1]),
    ];
    let acc = terms[0];
    for (const t of terms.slice(1)) acc = F.add(acc, t);
    const y = F.sum(acc);
    y.backward();
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const want = xs.map(
      (v) =>
        -1 +
        Math.exp(v) +
        Math.sign(v) +
        (1 - Math.tanh(v) ** 2) +
        sig(v) * (1 - sig(v)) +
        (v > 0 ? 1 : 0) +
        (v > 0 ? 1 : 0.2) +
        3 / 3,
    );
    expectClose(await read(x.grad), want, { rtol: 1e-5 });
    expectClose(
      await read(pos.grad),
      [1, 2, 3, 4, 5, 6].map((p) => -1 + 1 / p + 0.5 / Math.sqrt(p)),
      { rtol: 1e-5 },
    );
    freeAll(x, pos, y);
  });

  it('losses: dL/dx and dL/dtarget', async () => {
    const xv = [0.5, -1, 2, 0];
    const tv = [1, 1, -1, 0.5];
    const x = leaf(xv);
    const t = leaf(tv);
    const u = leaf([0, 1, 0.5, 0.25]);
    const y = F.add(
      F.add(F.mseLoss(x, t), F.l1Loss(x, 0.25)),
      F.add(F.bceWithLogitsLoss(x, 1), F.bceWithLogitsLoss(x, u)),
    );
    y.backward();
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const uv = [0, 1, 0.5, 0.25];
    expectClose(
      await read(x.grad),
      xv.map((v, i) => (2 * (v - tv[i]) + Math.sign(v - 0.25) + (sig(v) - 1) + (sig(v) - uv[i])) / 4),
      { rtol: 1e-5 },
    );
    expectClose(
      await read(t.grad),
      xv.map((v, i) => (-2 * (v - tv[i])) / 4),
      { rtol: 1e-5 },
    );
    expectClose(
      await read(u.grad),
      xv.map((v) => -v / 4),
      { rtol: 1e-5 },
    );
    freeAll(x, t, u, y);
  });

  it('frozen leaves get no gradient, but gradients flow through them', async () => {
    const x = leaf([1, 2]);
    const w = leaf([3, 4]);
    w.requiresGrad = false;
    const y = F.sum(F.mul(F.mul(x, w), w));
    y.backward();
    expect(w.grad).toBeNull();
    expectClose(await read(x.grad), [9, 16]);
    freeAll(x, w, y);
  });

  it('noGrad records nothing', async () => {
    const x = leaf([1, 2]);
    const y = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      return F.mul(x, x);
    });
    expect(isGradEnabled()).toBe(true);
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    expect(() => y.backward(Tensor.zeros(device, [2]))).toThrow(/does not require grad/);
    const z = await noGrad(async () => {
      await Promise.resolve();
      expect(isGradEnabled()).toBe(false);
      return F.mul(x, x);
    });
    expect(isGradEnabled()).toBe(true);
    expect(z.node).toBeNull();
    freeAll(x, y, z);
  });

  it('backward frees intermediates; detach() keeps a value alive', async () => {
    const before = live();
    const x = leaf([1, 2, 3]);
    const h = F.scale(x, 2);
    const kept = h.detach();
    const y = F.sum(F.square(h));
    y.backward();
    expect(() => h.data).toThrow(LifetimeError);
    expect(() => h.data).toThrow('freed by backward(); call .detach() before backward() to keep it');
    expect(() => F.relu(h)).toThrow(/freed by backward/);
    expect(Array.from(await kept.toArray())).toEqual([2, 4, 6]);
    expect(await y.item()).toBe(4 + 16 + 36);
    expectClose(await read(x.grad), [8, 16, 24]);
    // What is left: x (data + grad), y (data), kept (data).
    expect(live() - before).toBe(4);
    freeAll(x, y, kept, h);
    expect(live()).toBe(before);
  });

  it('a second backward through a freed graph is a clear error', async () => {
    const x = leaf([1, 2]);
    const y = F.sum(F.square(x));
    y.backward();
    expect(() => y.backward()).toThrow(/already freed by an earlier backward\(\)/);
    freeAll(x, y);
  });

  it('non-scalar outputs need a seed gradient of their shape', async () => {
    const x = leaf([1, 2, 3]);
    const y = F.scale(x, 3);
    expect(() => y.backward()).toThrow(ShapeError);
    expect(() => y.backward()).toThrow(/not a scalar/);
    const bad = Tensor.zeros(device, [2]);
    expect(() => y.backward(bad)).toThrow(/must have the output's shape/);
    const seed = Tensor.fromArray(device, [1, 10, 100], [3]);
    y.backward(seed);
    expectClose(await read(x.grad), [3, 30, 300]);
    expect(seed.isDisposed).toBe(false);
    freeAll(x, y);
    seed.dispose();
    bad.dispose();
  });

  it('an op without a rule fails loudly, before anything is freed', () => {
    const before = live();
    const x = leaf([1, 2]);
    const [y] = record('xyz', { x }, [x.data.clone()], () => ({}));
    const z = F.sum(F.square(y));
    expect(() => z.backward()).toThrow('autograd: no gradient rule for "xyz"');
    expect(y.data.isDisposed).toBe(false);
    z.freeGraph();
    freeAll(x, y, z);
    expect(live()).toBe(before);
  });

  it('a graph built inside tidy() survives it through the returned variable', async () => {
    const before = live();
    const x = leaf([1, 2, 3]);
    const y = tidy(() => F.sum(F.square(F.scale(x, 2))));
    // x, y and the square node's saved input
    expect(live() - before).toBe(3);
    y.backward();
    expectClose(await read(x.grad), [8, 16, 24]);
    expect(live() - before).toBe(3); // x, x.grad, y
    freeAll(x, y);
    // backward inside tidy: leaf grads escape the scope
    const w = leaf([1, -1]);
    tidy(() => {
      F.sum(F.mul(w, w)).backward();
    });
    expectClose(await read(w.grad), [2, -2]);
    w.dispose();
    expect(live()).toBe(before);
  });

  it('multi-output nodes (split): one node, per-output gradients, unused outputs count as zero', async () => {
    const x = leaf([1, 2, 3, 4], [1, 4]);
    const [a, b, c] = F.split(x, [1, 2, 1], 1);
    expect(a.node).toBe(b.node);
    expect(c.outputIndex).toBe(2);
    // b used twice, a once, c not at all.
    F.add(F.sum(F.add(F.scale(b, 2), F.square(b))), F.sum(F.scale(a, 5))).backward();
    expectClose(await read(x.grad), [5, 2 + 4, 2 + 6, 0]);
    expect(() => c.data).toThrow(/freed by backward/);
    freeAll(x, a, b, c);
  });
});
