import { type Device, Rng } from '@cg/tensor-core';
import { requestDevice } from '@cg/tensor-core/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../test/helpers/device.js';
import {
  compileGeneratorAhead,
  defineG,
  loadGenerator,
  type RgbImage,
  readCheckpoint,
  saveCheckpoint,
  translateAnySize,
} from '../src/index.js';

// A fresh device has an empty pipeline cache: everything the translations below need must come from compileAhead.
let fresh: Device;
let reference: Device;
let weights: Uint8Array;

beforeAll(async () => {
  reference = await testDevice();
  fresh = await requestDevice();
  const net = defineG(
    {
      input_nc: 3,
      output_nc: 3,
      ngf: 4,
      netG: 'resnet_2blocks',
      norm: 'instance',
      use_dropout: false,
      init_type: 'normal',
      init_gain: 0.1,
    },
    { device: reference, rng: new Rng(3) },
  );
  weights = await saveCheckpoint(net, 'safetensors');
  net.dispose();
});

afterAll(() => fresh?.release());

function image(width: number, height: number, seed: number): RgbImage {
  let s = seed >>> 0;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, channels: 3, data };
}

const live = (d: Device) => {
  const m = d.memory();
  return { liveTensors: m.liveTensors, liveBuffers: m.liveBuffers, liveBytes: m.liveBytes };
};

describe('compileGeneratorAhead', () => {
  it('compiles what later translations of any size need, whole or tiled, and leaks nothing', async () => {
    const { net } = loadGenerator(fresh, readCheckpoint(weights, 'gen.safetensors'));
    const { net: ref } = loadGenerator(reference, readCheckpoint(weights, 'gen.safetensors'));
    const o = { multiple: 4, input_nc: 3 };
    const before = live(fresh);
    const progress: [number, number][] = [];
    const r = await compileGeneratorAhead(net, {
      ...o,
      sizes: [[36, 36]],
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(r.compiled).toBeGreaterThan(10);
    // Two steps per pipeline: compiled, then primed (Device.compileAhead).
    expect(progress[0]).toEqual([0, 2 * r.compiled]);
    expect(progress.at(-1)).toEqual([2 * r.compiled, 2 * r.compiled]);
    expect(live(fresh)).toEqual(before);
    const compiled = fresh.memory().pipelinesCompiled;
    expect(compiled).toBe(r.compiled);

    // Photo-like sizes other than the dummies' (non-square, odd sides that get padded, a 25×21 bottleneck with
    // scalar norms, tiled in 4 and 9 tiles), and the small size asked for exactly (its 9×9 bottleneck selects
    // narrower conv tiles).
    const cases: [string, RgbImage, { forceTiled?: boolean; minTiles?: number }][] = [
      ['whole 256×160', image(256, 160, 1), {}],
      ['whole 99×83', image(99, 83, 2), {}],
      ['whole 36×36', image(36, 36, 3), {}],
      ['tiled 300×200 in 4+ tiles', image(300, 200, 4), { forceTiled: true, minTiles: 4 }],
      ['tiled 401×299 in 9+ tiles', image(401, 299, 5), { forceTiled: true, minTiles: 9 }],
    ];
    for (const [what, img, extra] of cases) {
      const got = await translateAnySize(net, img, { ...o, ...extra });
      const want = await translateAnySize(ref, img, { ...o, ...extra });
      expect(got.tiled, what).toBe(extra.forceTiled === true);
      expect(got.shape, what).toEqual(want.shape);
      let maxAbs = 0;
      for (let i = 0; i < want.data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(got.data[i] - want.data[i]));
      expect(maxAbs, `${what}: vs the reference device`).toBeLessThan(1e-5);
      expect(fresh.memory().pipelinesCompiled, `${what}: pipelines compiled on first use`).toBe(compiled);
    }
    expect(live(fresh)).toEqual(before);
    net.dispose();
    ref.dispose();
  });
});
