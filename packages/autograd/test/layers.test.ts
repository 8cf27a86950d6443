import { type Device, Rng, Tensor } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { F } from '../src/F.js';
import { noGrad } from '../src/grad_mode.js';
import * as nn from '../src/nn/index.js';
import { type Variable, variable } from '../src/variable.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
  nn.setDefaultDevice(device);
});

const input = (shape: number[], seed: number, requiresGrad = false) =>
  variable(
    Tensor.fromArray(
      device,
      randomArray(
        shape.reduce((a, b) => a * b, 1),
        seed,
      ),
      shape,
    ),
    { requiresGrad },
  );

/**
 * Checks backward() against central differences along one random direction
 * through all of `wrt` at once (JAX's check_grads idea): cheap, and it
 * exercises every rule on the path together with the engine's accumulation.
 */
async function directionalCheck(wrt: Variable[], loss: () => Variable, seed: number, eps = 1e-2): Promise<void> {
  const L = loss();
  L.backward();
  const rng = new Rng(seed);
  const originals = await Promise.all(wrt.map((v) => v.toArray()));
  // A unit direction, so eps is the actual step length.
  const dirs = originals.map((o) => Float32Array.from(o, () => rng.normal()));
  const norm = Math.sqrt(dirs.reduce((s, d) => s + d.reduce((a, v) => a + v * v, 0), 0));
  for (const d of dirs) for (let j = 0; j < d.length; j++) d[j] /= norm;
  let analytic = 0;
  for (let i = 0; i < wrt.length; i++) {
    const g = await wrt[i].grad!.toArray();
    for (let j = 0; j < g.length; j++) analytic += g[j] * dirs[i][j];
  }
  const at = async (s: number) => {
    wrt.forEach((v, i) => {
      const moved = Float32Array.from(originals[i], (x, j) => x + s * dirs[i][j]);
      device.write(v.data.buffer, moved);
    });
    const l = noGrad(loss);
    const value = await l.item();
    l.dispose();
    return value;
  };
  const numeric = ((await at(eps)) - (await at(-eps))) / (2 * eps);
  await at(0);
  L.dispose();
  expect(
    Math.abs(numeric - analytic) / Math.max(1, Math.abs(analytic)),
    `numeric ${numeric} analytic ${analytic}`,
  ).toBeLessThan(2e-3);
}

describe('layers: forward and backward through modules', () => {
  it('a CycleGAN-like stack: gradients of params and input match finite differences', async () => {
    const rng = new Rng(11);
    const net = new nn.Sequential(
      new nn.ReflectionPad2d(1),
      new nn.Conv2d(2, 3, 3, { stride: 2, padding: 1, paddingMode: 'reflect', rng }),
      new nn.InstanceNorm2d(3, { affine: true }),
      new nn.LeakyReLU(0.2),
      new nn.BatchNorm2d(3),
      new nn.Tanh(),
      new nn.ConvTranspose2d(3, 2, 3, { stride: 2, padding: 1, outputPadding: 1, rng }),
      new nn.ZeroPad2d([1, 0, 0, 1]),
      new nn.ReplicationPad2d([0, 1, 1, 0]),
      new nn.Sigmoid(),
    );
    // Conv shapes are kept few: every new one compiles pipelines (seconds on a software adapter).
    const x = input([2, 2, 6, 6], 1, true);
    const target = input([2, 2, 10, 10], 2);
    const loss = () => {
      const y = net.forward(x);
      expect(y.shape).toEqual([2, 2, 10, 10]);
      return F.add(F.mseLoss(y, target), F.bceWithLogitsLoss(F.scale(y, 3), 0.5));
    };
    await directionalCheck([x, ...net.parameters()], loss, 5);
    net.dispose();
    x.dispose();
    target.dispose();
  });

  it('upsample, concat and split route gradients; unused split pieces count as zero', async () => {
    const a = input([1, 2, 3, 3], 3, true);
    const b = input([1, 1, 3, 3], 4, true);
    const loss = () => {
      const up = new nn.Upsample(2, 'nearest').forward(F.concat([a, F.square(b)], 1));
      const [p, , r] = F.split(up, [1, 1, 1], 1);
      return F.add(F.sum(F.mul(p, p)), F.mean(F.exp(r)));
    };
    await directionalCheck([a, b], loss, 6);
    // The middle piece was unused: a's second channel gets no gradient.
    const g = await a.grad!.toArray();
    expect(Array.from(g.slice(9, 18))).toEqual(new Array(9).fill(0));
    a.dispose();
    b.dispose();
  });

  it('bilinear upsample and BatchNorm2d in eval mode (running statistics as constants)', async () => {
    const bn = new nn.BatchNorm2d(3);
    const x = input([2, 3, 4, 4], 7, true);
    // Some training steps give running statistics that are not the defaults.
    noGrad(() => {
      for (let i = 0; i < 3; i++) bn.forward(x).dispose();
    });
    expect(await bn.getBuffer('num_batches_tracked')!.item()).toBe(3);
    nn.init.normal_(bn.weight!, 1, 0.5, new Rng(1));
    nn.init.normal_(bn.bias!, 0, 0.5, new Rng(2));
    bn.eval();
    const before = await bn.getBuffer('running_mean')!.toArray();
    const loss = () => F.mean(F.square(new nn.Upsample(2, 'bilinear').forward(bn.forward(x))));
    await directionalCheck([x, bn.weight!, bn.bias!], loss, 8);
    expect(Array.from(await bn.getBuffer('running_mean')!.toArray())).toEqual(Array.from(before));
    expect(await bn.getBuffer('num_batches_tracked')!.item()).toBe(3);
    bn.dispose();
    x.dispose();
  });

  it('BatchNorm2d training updates running stats as PyTorch (unbiased variance, momentum)', async () => {
    const bn = new nn.BatchNorm2d(2, { momentum: 0.25 });
    const data = randomArray(2 * 2 * 3 * 3, 9, -2, 3);
    const x = variable(Tensor.fromArray(device, data, [2, 2, 3, 3]));
    bn.forward(x).dispose();
    const mean = [0, 0];
    const sq = [0, 0];
    for (let i = 0; i < data.length; i++) mean[Math.floor(i / 9) % 2] += data[i] / 18;
    for (let i = 0; i < data.length; i++) sq[Math.floor(i / 9) % 2] += (data[i] - mean[Math.floor(i / 9) % 2]) ** 2;
    expectClose(
      await bn.getBuffer('running_mean')!.toArray(),
      mean.map((m) => 0.25 * m),
      { rtol: 1e-5 },
    );
    expectClose(
      await bn.getBuffer('running_var')!.toArray(),
      sq.map((s) => 0.75 + (0.25 * s) / 17),
      { rtol: 1e-5 },
    );
    bn.dispose();
    x.dispose();
  });

  it('InstanceNorm2d with trackRunningStats: batch-averaged running stats in training, used in eval', async () => {
    const inorm = new nn.InstanceNorm2d(2, { trackRunningStats: true, momentum: 0.5 });
    const data = randomArray(3 * 2 * 4, 10, -1, 2); // [3, 2, 2, 2]
    const x = variable(Tensor.fromArray(device, data, [3, 2, 2, 2]));
    const y = inorm.forward(x);
    const mean = [0, 0];
    const vr = [0, 0];
    for (let n = 0; n < 3; n++) {
      for (let c = 0; c < 2; c++) {
        const plane = data.slice((n * 2 + c) * 4, (n * 2 + c + 1) * 4);
        const m = plane.reduce((a, b) => a + b, 0) / 4;
        mean[c] += m / 3;
        vr[c] += plane.reduce((a, b) => a + (b - m) ** 2, 0) / 3 / 3;
      }
    }
    expectClose(
      await inorm.getBuffer('running_mean')!.toArray(),
      mean.map((m) => 0.5 * m),
      { rtol: 1e-4, atol: 1e-6 },
    );
    expectClose(
      await inorm.getBuffer('running_var')!.toArray(),
      vr.map((v) => 0.5 + 0.5 * v),
      { rtol: 1e-4 },
    );
    expect(await inorm.getBuffer('num_batches_tracked')!.item()).toBe(1);
    inorm.eval();
    const rm = await inorm.getBuffer('running_mean')!.toArray();
    const rv = await inorm.getBuffer('running_var')!.toArray();
    const ye = inorm.forward(x);
    const got = await ye.toArray();
    const want = Array.from(data, (v, i) => {
      const c = Math.floor(i / 4) % 2;
      return (v - rm[c]) / Math.sqrt(rv[c] + 1e-5);
    });
    expectClose(got, want, { rtol: 1e-5 });
    for (const v of [y, ye, x]) v.dispose();
    inorm.dispose();
  });

  it('Dropout: seeded masks in train mode, identity in eval, gradient through the same mask', async () => {
    const x = variable(Tensor.full(device, [4, 64], 1), { requiresGrad: true });
    const d1 = new nn.Dropout(0.5, { rng: new Rng(4) });
    const d2 = new nn.Dropout(0.5, { rng: new Rng(4) });
    const y1 = d1.forward(x);
    const y2 = d2.forward(x);
    const v1 = await y1.toArray();
    expect(Array.from(v1)).toEqual(Array.from(await y2.toArray()));
    const kept = v1.filter((v) => v !== 0);
    expect(kept.every((v) => v === 2)).toBe(true);
    expect(kept.length / v1.length).toBeGreaterThan(0.35);
    expect(kept.length / v1.length).toBeLessThan(0.65);
    F.sum(y1).backward();
    expect(Array.from(await x.grad!.toArray())).toEqual(Array.from(v1));
    d1.eval();
    expect(d1.forward(x)).toBe(x);
    y2.dispose();
    x.dispose();
  });

  it('Conv2d paddingMode reflect equals ReflectionPad2d + unpadded conv', async () => {
    // The same conv shape as the first test (its pipelines are compiled already).
    const conv = new nn.Conv2d(2, 3, 3, { stride: 2, padding: 1, paddingMode: 'reflect', rng: new Rng(3) });
    const x = input([2, 2, 8, 8], 12);
    const y = conv.forward(x);
    const z = F.conv2d(F.reflectionPad2d(x, 1), conv.weight, conv.bias, { stride: 2 });
    expect(y.shape).toEqual([2, 3, 4, 4]);
    expectClose(await y.toArray(), await z.toArray(), { rtol: 1e-6 });
    for (const v of [x, y, z]) v.dispose();
    conv.dispose();
  });
});
