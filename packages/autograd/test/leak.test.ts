import { type Device, Rng, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { F } from '../src/F.js';
import { noGrad } from '../src/grad_mode.js';
import * as nn from '../src/nn/index.js';
import { Adam } from '../src/optim/adam.js';
import { type Variable, variable } from '../src/variable.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
  nn.setDefaultDevice(device);
});

// One conv shape everywhere: each new shape compiles pipelines.
const conv = (rng: Rng) => new nn.Conv2d(2, 2, 3, { padding: 1, rng });
const makeG = (rng: Rng) =>
  new nn.Sequential(conv(rng), new nn.InstanceNorm2d(2), new nn.ReLU(), conv(rng), new nn.Tanh());
const makeD = (rng: Rng) => new nn.Sequential(conv(rng), new nn.LeakyReLU(0.2), conv(rng));

const image = (seed: number) => variable(Tensor.fromArray(device, randomArray(2 * 2 * 4 * 4, seed), [2, 2, 4, 4]));
const mem = () => {
  const m = device.memory();
  return { liveTensors: m.liveTensors, liveBytes: m.liveBytes };
};

/** One CycleGAN-style iteration: G step with D frozen, then a D step on the detached fake. */
function iteration(G: nn.Module, D: nn.Module, optG: Adam, optD: Adam, i: number, check: (what: string) => void) {
  const real = image(100 + i);
  const realB = image(200 + i);
  const fake = G.forward(real);
  const pooled = fake.detach(); // what the image pool keeps
  D.requiresGrad_(false);
  const lossG = F.add(F.mseLoss(D.forward(fake), 1), F.scale(F.l1Loss(fake, realB), 10));
  optG.zeroGrad();
  lossG.backward();
  check('after G backward');
  optG.step();
  D.requiresGrad_(true);
  const lossD = F.scale(F.add(F.mseLoss(D.forward(realB), 1), F.mseLoss(D.forward(pooled), 0)), 0.5);
  optD.zeroGrad();
  lossD.backward();
  optD.step();
  for (const v of [real, realB, fake, pooled, lossG, lossD]) v.dispose();
  optG.zeroGrad();
  optD.zeroGrad();
}

describe('memory stays flat over training steps', () => {
  it('G/D steps with Adam: live tensors and bytes equal params + optimizer moments after every step', async () => {
    const rng = new Rng(1);
    const start = mem();
    const G = makeG(rng);
    const D = makeD(rng);
    const optG = new Adam(G.parameters(), { lr: 2e-4, betas: [0.5, 0.999] });
    const optD = new Adam(D.parameters(), { lr: 2e-4, betas: [0.5, 0.999] });
    const nParams = G.parameters().length + D.parameters().length;
    const paramBytes = mem().liveBytes - start.liveBytes;
    const seen: { liveTensors: number; liveBytes: number }[] = [];
    for (let i = 0; i < 20; i++) {
      iteration(G, D, optG, optD, i, (what) => {
        if (i > 0) return;
        expect(
          G.parameters().every((p) => p.grad !== null),
          what,
        ).toBe(true);
        expect(
          D.parameters().every((p) => p.grad === null),
          `${what}: D frozen`,
        ).toBe(true);
      });
      seen.push(mem());
    }
    await device.sync();
    // Parameters, plus Adam's two moments per parameter; no gradients (zeroGrad), nothing else.
    expect(seen[0].liveTensors - start.liveTensors).toBe(3 * nParams);
    expect(seen[0].liveBytes - start.liveBytes).toBe(3 * paramBytes);
    for (const s of seen) expect(s).toEqual(seen[0]);
    optG.dispose();
    optD.dispose();
    G.dispose();
    D.dispose();
    expect(mem()).toEqual(start);
  });

  it('the same loop inside tidy() leaks nothing either', () => {
    const rng = new Rng(2);
    const start = mem();
    const G = makeG(rng);
    const D = makeD(rng);
    const optG = new Adam(G.parameters());
    const optD = new Adam(D.parameters());
    let first: ReturnType<typeof mem> | null = null;
    for (let i = 0; i < 5; i++) {
      tidy(() => iteration(G, D, optG, optD, i, () => {}));
      first ??= mem();
      expect(mem()).toEqual(first);
    }
    optG.dispose();
    optD.dispose();
    G.dispose();
    D.dispose();
    expect(mem()).toEqual(start);
  });

  it('graphs that never run backward are freed by tidy() or freeGraph()', () => {
    const rng = new Rng(3);
    const G = makeG(rng);
    const start = mem();
    // A training-mode forward whose loss is only logged.
    const logged = tidy(() => F.mean(F.abs(G.forward(image(1)))).detach());
    expect(mem().liveTensors - start.liveTensors).toBe(1);
    logged.dispose();
    // Kept outside tidy: freeGraph() releases the saved tensors.
    const x = image(2);
    const y = G.forward(x);
    expect(mem().liveTensors).toBeGreaterThan(start.liveTensors + 2 + 4);
    y.freeGraph();
    x.dispose();
    y.dispose();
    expect(mem()).toEqual(start);
    const z = noGrad(() => tidy(() => G.forward(image(3))));
    expect(z.node).toBeNull();
    z.dispose();
    G.dispose();
  });

  it('backward frees saved tensors and intermediates as it goes: only leaves, grads and the root remain', () => {
    const rng = new Rng(4);
    const G = makeG(rng);
    const x = image(5);
    const before = mem().liveTensors;
    const loss = F.mean(F.square(G.forward(x)));
    expect(mem().liveTensors).toBeGreaterThan(before + 10);
    loss.backward();
    // loss itself + one gradient per parameter
    expect(mem().liveTensors - before).toBe(1 + G.parameters().length);
    loss.dispose();
    x.dispose();
    G.dispose();
  });
});

export type { Variable };
