import type { nn } from '@cg/autograd';
import { type Device, Rng } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import {
  ResnetGenerator,
  type RgbImage,
  tensorToImages,
  translateAnySize,
  translateToFloat,
  UnetGenerator,
} from '../../src/index.js';
import type { Norm } from '../../src/options.js';
import { convWork, planNetwork, tiledHostBytes, wholeImageBytes } from '../../src/tiled/plan.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

function seededImage(width: number, height: number, seed: number): RgbImage {
  let s = seed >>> 0;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    // Smooth structure plus noise, so norms see non-trivial statistics.
    const p = Math.floor(i / 3);
    const x = p % width;
    const y = Math.floor(p / width);
    data[i] = (128 + 90 * Math.sin(x / 7 + (i % 3)) * Math.cos(y / 5) + (s >>> 27)) & 255;
  }
  return { width, height, channels: 3, data };
}

function build(norm: Norm, n_blocks: number, ngf: number, seed: number, use_dropout = false): ResnetGenerator {
  return new ResnetGenerator(
    { input_nc: 3, output_nc: 3, ngf, norm, n_blocks, use_dropout },
    { device, rng: new Rng(seed) },
  );
}

/** Non-trivial batch-norm affine parameters and running statistics, so eval mode means something. */
async function randomizeBatchNorm(net: nn.Module, seed: number): Promise<void> {
  const sd = await net.stateDictHost();
  let s = seed >>> 0;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const fill = (t: { data: Float32Array }, f: () => number) => {
    for (let i = 0; i < t.data.length; i++) t.data[i] = f();
  };
  for (const [k, t] of sd) {
    const prefix = k.slice(0, k.lastIndexOf('.') + 1);
    if (!sd.has(`${prefix}running_mean`)) continue; // only batch-norm entries
    if (k.endsWith('running_mean') || k.endsWith('.bias')) fill(t, () => u() - 0.5);
    else if (k.endsWith('running_var') || k.endsWith('.weight')) fill(t, () => 0.5 + u());
  }
  net.loadStateDict(sd);
}

function compare(a: Float32Array, b: Float32Array, shape: [number, number, number, number]) {
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
  const ia = tensorToImages(a, shape)[0].data;
  const ib = tensorToImages(b, shape)[0].data;
  let maxLevel = 0;
  for (let i = 0; i < ia.length; i++) maxLevel = Math.max(maxLevel, Math.abs(ia[i] - ib[i]));
  return { maxAbs, maxLevel };
}

interface Case {
  name: string;
  norm: Norm;
  blocks: number;
  ngf: number;
  eval: boolean;
  size: [number, number];
  minTiles: number;
  dropout?: boolean;
}

const cases: Case[] = [
  { name: 'instance, 2 blocks, 64×48', norm: 'instance', blocks: 2, ngf: 8, eval: true, size: [64, 48], minTiles: 4 },
  {
    name: 'instance, 6 blocks, 101×75 (padded to 104×76)',
    norm: 'instance',
    blocks: 6,
    ngf: 4,
    eval: true,
    size: [101, 75],
    minTiles: 9,
  },
  {
    name: 'batch, train mode, 2 blocks, 70×58',
    norm: 'batch',
    blocks: 2,
    ngf: 8,
    eval: false,
    size: [70, 58],
    minTiles: 6,
  },
  {
    name: 'batch, eval mode, 2 blocks, 70×58',
    norm: 'batch',
    blocks: 2,
    ngf: 8,
    eval: true,
    size: [70, 58],
    minTiles: 16,
  },
  {
    name: 'batch + dropout, train mode, 64×64',
    norm: 'batch',
    blocks: 2,
    ngf: 4,
    eval: false,
    size: [64, 64],
    minTiles: 4,
    dropout: true,
  },
];

describe('tiled ResNet generator equals whole-image inference', () => {
  for (const c of cases) {
    it(c.name, async () => {
      // Two identical nets: train-mode dropout draws a seed per forward from the net's rng.
      const whole = build(c.norm, c.blocks, c.ngf, 3, c.dropout);
      const tiled = build(c.norm, c.blocks, c.ngf, 3, c.dropout);
      if (c.norm === 'batch') {
        await randomizeBatchNorm(whole, 11);
        await randomizeBatchNorm(tiled, 11);
      }
      const image = seededImage(c.size[0], c.size[1], 7);
      const o = { multiple: 4, input_nc: 3, eval: c.eval };
      const ref = await translateToFloat(whole, image, o);
      const got = await translateAnySize(tiled, image, { ...o, forceTiled: true, minTiles: c.minTiles });
      expect(got.tiled).toBe(true);
      expect(got.shape).toEqual(ref.shape);
      const tiles = got.report!.layers.map((l) => l.tiles[0] * l.tiles[1]);
      expect(Math.min(...tiles)).toBeGreaterThanOrEqual(Math.min(c.minTiles, 4));
      expect(Math.max(...tiles)).toBeLessThanOrEqual(16);
      const { maxAbs, maxLevel } = compare(got.data, ref.data, ref.shape);
      expect(maxAbs).toBeLessThanOrEqual(1e-4);
      expect(maxLevel).toBeLessThanOrEqual(1);
      whole.dispose();
      tiled.dispose();
    });
  }

  it('a small maxGpuBytes tiles every layer and bounds the GPU bytes; a large one takes the whole-image path', async () => {
    const net = build('instance', 2, 8, 5);
    const image = seededImage(96, 80, 9);
    const o = { multiple: 4, input_nc: 3, eval: true };
    const ref = await translateToFloat(net, image, o);
    const budget = 96 * 1024;
    const got = await translateAnySize(net, image, { ...o, maxGpuBytes: budget });
    expect(got.tiled).toBe(true);
    const r = got.report!;
    expect(r.layers.some((l) => l.tiles[0] * l.tiles[1] >= 4)).toBe(true);
    for (const l of r.layers) expect(l.tileBytes).toBeLessThanOrEqual(budget);
    expect(r.peakGpuBytes - r.residentBytes).toBeLessThanOrEqual(budget);
    expect(compare(got.data, ref.data, ref.shape).maxAbs).toBeLessThanOrEqual(1e-4);
    await expect(translateAnySize(net, image, { ...o, maxGpuBytes: 1000 })).rejects.toThrow(
      /one output pixel of a layer needs .* raise the budget/,
    );
    // A binding limit below the largest tensor forces the tiled path, as 1024×768 does at ngf 64.
    const small = await translateAnySize(net, image, { ...o, maxBindingBytes: 64 * 1024 });
    expect(small.tiled).toBe(true);
    expect(compare(small.data, ref.data, ref.shape).maxAbs).toBeLessThanOrEqual(1e-4);
    const fast = await translateAnySize(net, image, o);
    expect(fast.tiled).toBe(false);
    expect(fast.data).toEqual(ref.data);
    net.dispose();
  });
});

describe('tiled U-Net generator equals whole-image inference', () => {
  for (const c of [
    {
      name: 'unet num_downs 5, instance, eval, 90×60 (padded to 96×64)',
      downs: 5,
      norm: 'instance' as Norm,
      eval: true,
      dropout: false,
    },
    // num_downs 6 has one middle block, the only kind that carries dropout.
    {
      name: 'unet num_downs 6, batch + dropout, train, 90×60 (padded to 128×64)',
      downs: 6,
      norm: 'batch' as Norm,
      eval: false,
      dropout: true,
    },
  ]) {
    it(c.name, async () => {
      const make = () =>
        new UnetGenerator(
          { input_nc: 3, output_nc: 3, num_downs: c.downs, ngf: 4, norm: c.norm, use_dropout: c.dropout },
          { device, rng: new Rng(4) },
        );
      const whole = make();
      const tiled = make();
      if (c.norm === 'batch') {
        await randomizeBatchNorm(whole, 2);
        await randomizeBatchNorm(tiled, 2);
      }
      const image = seededImage(90, 60, 3);
      const o = { multiple: 2 ** c.downs, input_nc: 3, eval: c.eval };
      const ref = await translateToFloat(whole, image, o);
      const got = await translateAnySize(tiled, image, { ...o, forceTiled: true, minTiles: 4 });
      expect(got.tiled).toBe(true);
      const { maxAbs, maxLevel } = compare(got.data, ref.data, ref.shape);
      expect(maxAbs).toBeLessThanOrEqual(1e-4);
      expect(maxLevel).toBeLessThanOrEqual(1);
      whole.dispose();
      tiled.dispose();
    });
  }
});

describe('tiled progress and host budget', () => {
  it("progress rises with the conv work, tile by tile, and ends at the whole network's multiply-adds", async () => {
    const net = build('instance', 1, 4, 6);
    const image = seededImage(40, 36, 2);
    const seen: [number, number][] = [];
    await translateAnySize(net, image, {
      multiple: 4,
      input_nc: 3,
      eval: true,
      forceTiled: true,
      minTiles: 4,
      onProgress: (done, total) => seen.push([done, total]),
    });
    // 40×36 is already a multiple of 4: the executor sees the image as it is.
    const total = convWork(planNetwork(net), [3, 36, 40]);
    // Two 7×7 convs at 4 and 3 channels dominate; the count is the textbook one for the first.
    expect(total).toBeGreaterThan(36 * 40 * 49 * 3 * 4);
    expect(seen.length).toBeGreaterThan(4 * 8); // at least minTiles per conv layer
    for (const [, t] of seen) expect(t).toBe(total);
    for (let i = 1; i < seen.length; i++) expect(seen[i][0]).toBeGreaterThanOrEqual(seen[i - 1][0]);
    expect(seen.at(-1)![0]).toBe(total);
    net.dispose();
  });

  it('an image over maxHostBytes is refused before any GPU work, with the bytes it needs', async () => {
    const net = build('instance', 2, 8, 5);
    const image = seededImage(96, 80, 9);
    const need = tiledHostBytes(planNetwork(net), [3, 80, 96]);
    // The first 8-channel activation at full size, read while the next one is written, is a lower bound.
    expect(need).toBeGreaterThanOrEqual(4 * 8 * 80 * 96 * 2);
    const compiled = device.memory().pipelinesCompiled;
    const o = { multiple: 4, input_nc: 3, eval: true, forceTiled: true };
    await expect(translateAnySize(net, image, { ...o, maxHostBytes: need - 1 })).rejects.toThrow(
      /a 96×80 image needs up to [\d.]+ [KM]iB of host memory .* over the [\d.]+ [KM]iB budget/,
    );
    expect(device.memory().pipelinesCompiled).toBe(compiled);
    const ok = await translateAnySize(net, image, { ...o, maxHostBytes: need });
    expect(ok.tiled).toBe(true);
    net.dispose();
  });
});

describe('whole-image size estimate', () => {
  it("resnet_9blocks ngf 64 at 1024×768: the largest tensor is the issue's 201326592-byte binding", () => {
    const net = new ResnetGenerator(
      { input_nc: 3, output_nc: 3, ngf: 64, norm: 'instance', n_blocks: 9 },
      { device, rng: new Rng(0) },
    );
    const need = wholeImageBytes(planNetwork(net), [3, 768, 1024]);
    // The 64-channel activation at full size (reflect-padded copies before the 7×7 convs are larger).
    expect(need.largest).toBeGreaterThanOrEqual(201326592);
    expect(need.largest).toBeGreaterThan(device.limits.maxStorageBufferBindingSize);
    net.dispose();
  });
});
