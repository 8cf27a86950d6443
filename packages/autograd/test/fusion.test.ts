import { type Device, Tensor } from '@cg/tensor-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { F } from '../src/F.js';
import * as nn from '../src/nn/index.js';
import { type Variable, variable } from '../src/variable.js';

/**
 * nn.Sequential's fused chains (nn/fusion.ts): the same modules and keys, the
 * same values and gradients to the bit as the unfused layers, fewer dispatches.
 */

let device: Device;
beforeAll(async () => {
  device = await testDevice();
  nn.setDefaultDevice(device);
});
afterEach(() => nn.setFusion(null));

const input = (shape: number[], seed: number) =>
  variable(
    Tensor.fromArray(
      device,
      randomArray(
        shape.reduce((a, b) => a * b, 1),
        seed,
      ),
      shape,
    ),
    { requiresGrad: true },
  );

/** Counts the device's dispatches while `fn` runs. */
function dispatchesOf<T>(fn: () => T): { value: T; dispatches: number } {
  let n = 0;
  const dispatch = device.dispatch;
  device.dispatch = function (this: Device, ...args: Parameters<Device['dispatch']>) {
    n++;
    return dispatch.apply(this, args);
  };
  try {
    return { value: fn(), dispatches: n };
  } finally {
    delete (device as Partial<Device>).dispatch;
  }
}

interface Run {
  y: Float32Array;
  grads: Float32Array[];
  forward: number;
  backward: number;
}

/** Forward (counted), L = Σ y·r, backward (counted); returns y and every gradient of `wrt`. */
async function run(net: (x: Variable) => Variable, x: Variable, wrt: Variable[], fused: boolean): Promise<Run> {
  nn.setFusion(fused);
  for (const v of [x, ...wrt]) v.zeroGrad();
  const f = dispatchesOf(() => net(x));
  const y = await f.value.toArray();
  const r = variable(Tensor.fromArray(device, randomArray(y.length, 99), f.value.shape));
  const L = F.sum(F.mul(f.value, r));
  const b = dispatchesOf(() => L.backward());
  const grads = await Promise.all([x, ...wrt].map((v) => v.grad!.toArray()));
  r.dispose();
  L.dispose();
  return { y, grads, forward: f.dispatches, backward: b.dispatches };
}

async function fusedVsUnfused(net: (x: Variable) => Variable, x: Variable, wrt: Variable[]) {
  const unfused = await run(net, x, wrt, false);
  const fused = await run(net, x, wrt, true);
  expect([...fused.y]).toEqual([...unfused.y]);
  fused.grads.forEach((g, i) => {
    expect([...g], `gradient ${i}`).toEqual([...unfused.grads[i]]);
  });
  return { fused, unfused };
}

describe('fusion in nn.Sequential', () => {
  it('a ResnetBlock body ([pad, conv, IN, ReLU] ×2 with skip + IN): same values and gradients, fewer dispatches', async () => {
    const dim = 5;
    const body = new nn.Sequential(
      new nn.ReflectionPad2d(1),
      new nn.Conv2d(dim, dim, 3, { bias: true }),
      new nn.InstanceNorm2d(dim),
      new nn.ReLU(),
      new nn.ReflectionPad2d(1),
      new nn.Conv2d(dim, dim, 3, { bias: true }),
      new nn.InstanceNorm2d(dim),
    );
    const keys = [...body.stateDict().keys()];
    const x = input([2, dim, 7, 9], 3);
    const { fused, unfused } = await fusedVsUnfused((v) => body.forwardAdd(v, v), x, body.parameters());
    // The two pads fold into the convs, the relu and the add into the norms; backward saves the relu's map.
    expect(unfused.forward - fused.forward).toBe(4);
    expect(unfused.backward - fused.backward).toBe(1);
    expect([...body.stateDict().keys()]).toEqual(keys);
    x.dispose();
    body.dispose();
  });

  it('[conv, affine IN, LeakyReLU(0.2)] and IN + LeakyReLU in eval mode', async () => {
    const net = new nn.Sequential(
      new nn.Conv2d(3, 6, 4, { stride: 2, padding: 1 }),
      new nn.InstanceNorm2d(6, { affine: true }),
      new nn.LeakyReLU(0.2),
      new nn.Conv2d(6, 1, 3, { padding: 1 }),
    );
    const x = input([2, 3, 11, 10], 5);
    const { fused, unfused } = await fusedVsUnfused((v) => net.forward(v), x, net.parameters());
    expect(unfused.forward - fused.forward).toBe(1);
    net.eval();
    const ev = await fusedVsUnfused((v) => net.forward(v), x, net.parameters());
    expect(ev.unfused.forward - ev.fused.forward).toBe(1);
    x.dispose();
    net.dispose();
  });

  it('a generator head and tail: [reflect pad 3, conv 7×7, Tanh], a Conv2d with paddingMode reflect, ZeroPad2d', async () => {
    const net = new nn.Sequential(
      new nn.ReflectionPad2d(3),
      new nn.Conv2d(3, 4, 7),
      new nn.ReLU(),
      new nn.Conv2d(4, 4, 3, { padding: 1, paddingMode: 'reflect', bias: false }),
      new nn.ZeroPad2d(1),
      new nn.Conv2d(4, 4, 3, { stride: 2 }),
      new nn.ReplicationPad2d(2),
      new nn.Conv2d(4, 3, 5),
      new nn.Tanh(),
    );
    const x = input([2, 3, 9, 8], 11);
    const { fused, unfused } = await fusedVsUnfused((v) => net.forward(v), x, net.parameters());
    // pad+relu, pad, pad, pad+tanh.
    expect(unfused.forward - fused.forward).toBe(6);
    expect(fused.backward).toBeLessThan(unfused.backward);
    x.dispose();
    net.dispose();
  });

  it('leaves alone what it cannot fuse: running statistics, a negative slope, asymmetric pads, a subclass', async () => {
    // A subclass may override forward(): a fused chain must not skip it.
    class DoubledReLU extends nn.ReLU {
      forward(x: Variable): Variable {
        return F.scale(F.relu(x), 2);
      }
    }
    const net = new nn.Sequential(
      new nn.InstanceNorm2d(3),
      new DoubledReLU(),
      new nn.InstanceNorm2d(3, { trackRunningStats: true }),
      new nn.ReLU(),
      new nn.InstanceNorm2d(3),
      new nn.LeakyReLU(-0.5),
      new nn.ReflectionPad2d([1, 1, 2, 0]),
      new nn.Conv2d(3, 3, 3),
      new nn.ReflectionPad2d(1),
      new nn.Conv2d(3, 3, 5, { padding: 1 }),
      new nn.InstanceNorm2d(3),
    );
    const x = input([1, 3, 6, 5], 7);
    const { fused, unfused } = await fusedVsUnfused((v) => net.forwardAdd(v, v), x, []);
    // Only the closing norm's add is fused (asymmetric pads, a padded conv after a pad: unfused).
    expect(unfused.forward - fused.forward).toBe(1);
    x.dispose();
    net.dispose();
  });

  it('CG_FUSION=0 turns it off when setFusion has not been called', () => {
    const env = (globalThis as { process: { env: Record<string, string | undefined> } }).process.env;
    const old = env.CG_FUSION;
    try {
      nn.setFusion(null);
      env.CG_FUSION = '0';
      expect(nn.fusionEnabled()).toBe(false);
      nn.setFusion(true);
      expect(nn.fusionEnabled()).toBe(true);
      nn.setFusion(null);
      delete env.CG_FUSION;
      expect(nn.fusionEnabled()).toBe(true);
    } finally {
      if (old === undefined) delete env.CG_FUSION;
      else env.CG_FUSION = old;
    }
  });
});
