import { StateDictError } from '@cg/autograd';
import { type Device, Rng, sizeOf } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../test/helpers/device.js';
import * as nn from '../src/nn/index.js';
import type { HostTensor } from '../src/nn/module.js';
import type { Variable } from '../src/variable.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
  nn.setDefaultDevice(device);
});

/** The official ResnetBlock's layout: a `conv_block` Sequential. */
class ResnetBlock extends nn.Module {
  readonly conv_block: nn.Sequential;
  constructor(dim: number) {
    super();
    this.conv_block = this.registerModule(
      'conv_block',
      new nn.Sequential(
        new nn.ReflectionPad2d(1),
        new nn.Conv2d(dim, dim, 3),
        new nn.InstanceNorm2d(dim),
        new nn.ReLU(),
        new nn.ReflectionPad2d(1),
        new nn.Conv2d(dim, dim, 3),
        new nn.InstanceNorm2d(dim),
      ),
    );
  }
  forward(x: Variable): Variable {
    return x; // layout only
  }
}

class TinyGenerator extends nn.Module {
  readonly model: nn.Sequential;
  constructor(ngf = 4, options: { rng?: Rng } = {}) {
    super();
    this.model = this.registerModule(
      'model',
      new nn.Sequential(
        new nn.ReflectionPad2d(3),
        new nn.Conv2d(3, ngf, 7, { rng: options.rng }),
        new nn.BatchNorm2d(ngf),
        new nn.ReLU(),
        new ResnetBlock(ngf),
        new nn.ConvTranspose2d(ngf, 3, 3, { stride: 2, padding: 1, outputPadding: 1, bias: false }),
        new nn.Tanh(),
      ),
    );
  }
  forward(x: Variable): Variable {
    return this.model.forward(x);
  }
}

const live = () => device.memory().liveTensors;

describe('Module', () => {
  it('names parameters and buffers with PyTorch keys, in PyTorch order', () => {
    const before = live();
    const g = new TinyGenerator();
    expect([...g.stateDict().keys()]).toEqual([
      'model.1.weight',
      'model.1.bias',
      'model.2.weight',
      'model.2.bias',
      'model.2.running_mean',
      'model.2.running_var',
      'model.2.num_batches_tracked',
      'model.4.conv_block.1.weight',
      'model.4.conv_block.1.bias',
      'model.4.conv_block.5.weight',
      'model.4.conv_block.5.bias',
      'model.5.weight',
    ]);
    expect([...g.namedParameters()].map(([k]) => k)).toEqual([
      'model.1.weight',
      'model.1.bias',
      'model.2.weight',
      'model.2.bias',
      'model.4.conv_block.1.weight',
      'model.4.conv_block.1.bias',
      'model.4.conv_block.5.weight',
      'model.4.conv_block.5.bias',
      'model.5.weight',
    ]);
    expect([...g.namedBuffers()].map(([k]) => k)).toEqual([
      'model.2.running_mean',
      'model.2.running_var',
      'model.2.num_batches_tracked',
    ]);
    const shapes = Object.fromEntries([...g.stateDict()].map(([k, t]) => [k, t.shape]));
    expect(shapes['model.1.weight']).toEqual([4, 3, 7, 7]);
    expect(shapes['model.5.weight']).toEqual([4, 3, 3, 3]); // ConvTranspose2d: [in, out, kH, kW]
    expect(shapes['model.2.num_batches_tracked']).toEqual([]);
    expect(g.numParameters()).toBe(4 * 3 * 49 + 4 + 4 + 4 + 2 * (4 * 4 * 9 + 4) + 4 * 3 * 9);
    expect([...g.namedModules()].map(([k]) => k).slice(0, 3)).toEqual(['', 'model', 'model.0']);
    g.dispose();
    expect(live()).toBe(before);
  });

  it('train/eval and requiresGrad_ reach every descendant', () => {
    const g = new TinyGenerator();
    g.eval();
    expect(g.modules().every((m) => !m.training)).toBe(true);
    g.train();
    expect(g.modules().every((m) => m.training)).toBe(true);
    g.requiresGrad_(false);
    expect(g.parameters().every((p) => !p.requiresGrad)).toBe(true);
    g.requiresGrad_(true);
    expect(g.parameters().every((p) => p.requiresGrad)).toBe(true);
    g.dispose();
  });

  it('default init is PyTorch’s: U(±1/√fan_in) for conv weights and bias, seeded', async () => {
    const a = new nn.Conv2d(16, 32, 3, { rng: new Rng(7) });
    const b = new nn.Conv2d(16, 32, 3, { rng: new Rng(7) });
    const w = await a.weight.toArray();
    expect(Array.from(await b.weight.toArray())).toEqual(Array.from(w));
    const bound = 1 / Math.sqrt(16 * 9);
    let sq = 0;
    for (const v of w) {
      expect(Math.abs(v)).toBeLessThanOrEqual(bound);
      sq += v * v;
    }
    // U(−b, b) has std b/√3.
    expect(Math.sqrt(sq / w.length) / (bound / Math.sqrt(3))).toBeCloseTo(1, 1);
    const bias = await a.bias!.toArray();
    for (const v of bias) expect(Math.abs(v)).toBeLessThanOrEqual(bound);
    // The default generator follows manualSeed.
    nn.manualSeed(3);
    const c = new nn.Conv2d(2, 2, 1);
    nn.manualSeed(3);
    const d = new nn.Conv2d(2, 2, 1);
    expect(Array.from(await c.weight.toArray())).toEqual(Array.from(await d.weight.toArray()));
    for (const m of [a, b, c, d]) m.dispose();
  });

  it('stateDictHost → loadStateDict round-trips exactly', async () => {
    const a = new TinyGenerator(4, { rng: new Rng(1) });
    const b = new TinyGenerator(4, { rng: new Rng(2) });
    const sd = await a.stateDictHost();
    expect((await b.stateDictHost()).get('model.1.weight')!.data).not.toEqual(sd.get('model.1.weight')!.data);
    const result = b.loadStateDict(sd);
    expect(result).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const back = await b.stateDictHost();
    expect([...back.keys()]).toEqual([...sd.keys()]);
    for (const [k, v] of sd) expect(Array.from(back.get(k)!.data), k).toEqual(Array.from(v.data));
    a.dispose();
    b.dispose();
  });

  it('strict loading lists missing, unexpected and mis-shaped keys in one error, and writes nothing', async () => {
    const g = new TinyGenerator();
    const sd = new Map<string, HostTensor>(await g.stateDictHost());
    const original = sd.get('model.1.bias')!.data.slice();
    sd.delete('model.2.running_var');
    sd.delete('model.5.weight');
    sd.set('model.9.weight', { shape: [1], data: new Float32Array(1) });
    sd.set('model.4.conv_block.1.weight', { shape: [4, 4, 1, 1], data: new Float32Array(16) });
    sd.set('model.1.bias', { shape: [4], data: new Float32Array([9, 9, 9, 9]) });
    let err: unknown;
    try {
      g.loadStateDict(sd);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDictError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/missing keys \(2\):\n\s+model\.2\.running_var\n\s+model\.5\.weight/);
    expect(msg).toMatch(/unexpected keys \(1\):\n\s+model\.9\.weight/);
    expect(msg).toContain('model.4.conv_block.1.weight: expected [4,4,3,3], got [4,4,1,1]');
    expect(Array.from(await g.stateDict().get('model.1.bias')!.toArray())).toEqual(Array.from(original));

    // Non-strict: mis-shaped keys are still an error (as PyTorch) …
    expect(() => g.loadStateDict(sd, { strict: false })).toThrow(/mis-shaped keys \(1\)/);
    // … and once fixed, the rest loads and the leftovers are reported.
    sd.delete('model.4.conv_block.1.weight');
    const r = g.loadStateDict(sd, { strict: false });
    expect(r.missingKeys).toEqual(['model.2.running_var', 'model.4.conv_block.1.weight', 'model.5.weight']);
    expect(r.unexpectedKeys).toEqual(['model.9.weight']);
    expect(Array.from(await g.stateDict().get('model.1.bias')!.toArray())).toEqual([9, 9, 9, 9]);
    g.dispose();
  });

  it('InstanceNorm2d registers running stats only when tracking, BatchNorm2d by default', () => {
    const inorm = new nn.InstanceNorm2d(3);
    expect([...inorm.stateDict().keys()]).toEqual([]);
    const tracked = new nn.InstanceNorm2d(3, { affine: true, trackRunningStats: true });
    expect([...tracked.stateDict().keys()]).toEqual([
      'weight',
      'bias',
      'running_mean',
      'running_var',
      'num_batches_tracked',
    ]);
    const bn = new nn.BatchNorm2d(3, { affine: false, trackRunningStats: false });
    expect([...bn.stateDict().keys()]).toEqual([]);
    for (const m of [inorm, tracked, bn]) m.dispose();
  });

  it('Sequential indexes its children and dispose() frees every tensor', () => {
    const before = live();
    const s = new nn.Sequential(new nn.Conv2d(2, 3, 1), new nn.LeakyReLU(0.2));
    s.append(new nn.Conv2d(3, 1, 1, { bias: false }));
    expect(s.length).toBe(3);
    expect(s.at(1)).toBeInstanceOf(nn.LeakyReLU);
    expect([...s.stateDict().keys()]).toEqual(['0.weight', '0.bias', '2.weight']);
    expect(live() - before).toBe(3);
    expect(sizeOf(s.stateDict().get('2.weight')!.shape)).toBe(3);
    s.dispose();
    expect(live()).toBe(before);
  });
});
