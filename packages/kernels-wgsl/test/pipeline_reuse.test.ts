import type { Device, Shape } from '@cg/tensor-core';
import { Device as DeviceClass, sizeOf, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import {
  add,
  type ConvStrategy,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dRef,
  convTranspose2d,
  convTranspose2dRef,
  instanceNorm2d,
  reflectionPad2d,
  relu,
  runKernel,
  tanh,
  upsample2d,
} from '../src/index.js';

/**
 * Image sizes are uniforms (docs/ARCHITECTURE.md §3): once a resnet-style
 * sequence has run at one size, running it at other sizes — non-square, an
 * odd width — must compile no pipeline. Channel counts stay small to keep
 * the first size's compiles cheap.
 */

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

const compiled = () => device.memory().pipelinesCompiled;

function t(shape: Shape, seed: number): Tensor {
  return Tensor.fromArray(device, randomArray(sizeOf(shape), seed), shape);
}

/** pad → 7×7 conv → norm → relu → 3×3 s2 conv → norm → relu → residual 3×3 → 3×3 s2 transposed conv → upsample → 7×7 head → tanh. */
function resnetStyle(x: Tensor, w: Record<string, Tensor>, strategy: ConvStrategy): Tensor {
  return tidy(() => {
    const norm = (v: Tensor) => relu(instanceNorm2d(v, null, null).y);
    let h = norm(conv2d(reflectionPad2d(x, [3, 3, 3, 3]), w.c1, w.b1, { strategy }));
    h = norm(conv2d(h, w.down, w.bDown, { stride: 2, padding: 1, strategy }));
    const r = instanceNorm2d(conv2d(reflectionPad2d(h, [1, 1, 1, 1]), w.res, w.bRes, { strategy }), null, null).y;
    h = add(h, r);
    const up = norm(convTranspose2d(h, w.up, w.bUp, { stride: 2, padding: 1, outputPadding: 1, strategy }));
    const big = upsample2d(h, 2, 'nearest');
    return tanh(
      add(
        conv2d(reflectionPad2d(up, [3, 3, 3, 3]), w.head, w.bHead, { strategy }),
        conv2d(big, w.side, null, { strategy }),
      ),
    );
  });
}

describe('pipeline reuse across image sizes', () => {
  it('a resnet-style sequence compiles its pipelines once, not per image size', async () => {
    const w = {
      c1: t([8, 3, 7, 7], 1),
      b1: t([8], 2),
      down: t([16, 8, 3, 3], 3),
      bDown: t([16], 4),
      res: t([16, 16, 3, 3], 5),
      bRes: t([16], 6),
      up: t([16, 8, 3, 3], 7),
      bUp: t([8], 8),
      head: t([3, 8, 7, 7], 9),
      bHead: t([3], 10),
      side: t([3, 16, 1, 1], 11),
    };
    // 64×64, then non-square, then an odd width (the stride-2 level is 20×27, the transposed conv gives 40×54).
    const sizes: [number, number][] = [
      [64, 64],
      [48, 80],
      [40, 53],
    ];
    const counts: number[] = [];
    for (const [H, W] of sizes) {
      const before = compiled();
      const x = t([1, 3, H, W], H * 1000 + W);
      for (const strategy of ['register', 'workgroup-tiled'] as const) {
        const y = resnetStyle(x, w, strategy);
        // The output shape of the odd size: the side branch upsamples 20×27 to 40×54; the head is 40×54 too.
        expect(y.shape).toEqual([1, 3, 2 * Math.floor((H - 1) / 2 + 1), 2 * Math.floor((W - 1) / 2 + 1)]);
        y.dispose();
      }
      x.dispose();
      await device.sync();
      counts.push(compiled() - before);
    }
    for (const v of Object.values(w)) v.dispose();
    console.log(`pipelines compiled at ${sizes.map(([h, w]) => `${h}×${w}`).join(', ')}: ${counts.join(', ')}`);
    expect(counts[0]).toBeGreaterThan(20);
    expect(counts.slice(1)).toEqual([0, 0]);
  }, 120_000);

  it('folded pad modes and epilogues compile once too (forward and both gradients)', async () => {
    const w7 = t([6, 3, 7, 7], 31);
    const w3 = t([6, 6, 3, 3], 32);
    const b = t([6], 33);
    const counts: number[] = [];
    for (const [H, W] of [
      // Widths ≥ 16 and not multiples of 8: the same tile buckets and gradient-row variant (§3).
      [20, 20],
      [13, 22],
      [17, 19],
    ] as const) {
      const before = compiled();
      const x = t([1, 3, H, W], H * 100 + W);
      for (const strategy of ['register', 'workgroup-tiled'] as const) {
        tidy(() => {
          const o7 = { padding: 3, padMode: 'reflect', epilogue: 'tanh', strategy } as const;
          const h = conv2d(x, w7, b, o7);
          const o3 = { padding: 1, padMode: 'reflect', epilogue: 'relu', strategy } as const;
          const r = conv2d(h, w3, null, o3);
          conv2dBackwardInput(r, w3, h.shape, o3);
          conv2dBackwardWeight(r, h, w3.shape, o3);
          conv2dBackwardInput(h, w7, x.shape, o7);
        });
      }
      x.dispose();
      await device.sync();
      counts.push(compiled() - before);
    }
    for (const v of [w7, w3, b]) v.dispose();
    expect(counts[0]).toBeGreaterThan(5);
    expect(counts.slice(1)).toEqual([0, 0]);
  }, 120_000);

  it('a pipeline compiled at one size computes the right values at another', async () => {
    // The first test's stride-2 conv (8→16, 3×3) compiled at 64×64 (batch 1); at 33×21, batch 2, it must still match float64.
    const xShape = [2, 8, 33, 21];
    const x = t(xShape, 21);
    const w = t([16, 8, 3, 3], 22);
    const b = t([16], 23);
    const wt = t([16, 8, 3, 3], 24);
    const [xs, ws, bs, wts] = await Promise.all([x.toArray(), w.toArray(), b.toArray(), wt.toArray()]);
    for (const strategy of ['register', 'workgroup-tiled'] as const) {
      const y = conv2d(x, w, b, { stride: 2, padding: 1, strategy });
      expectClose(await y.toArray(), conv2dRef(xs, xShape, ws, [16, 8, 3, 3], bs, { stride: 2, padding: 1 }).data, {
        label: `conv2d ${strategy}`,
      });
      const z = convTranspose2d(y, wt, null, { stride: 2, padding: 1, outputPadding: 1, strategy });
      const ys = await y.toArray();
      expectClose(
        await z.toArray(),
        convTranspose2dRef(ys, y.shape, wts, [16, 8, 3, 3], null, { stride: 2, padding: 1, outputPadding: 1 }).data,
        { label: `convTranspose2d ${strategy}` },
      );
      y.dispose();
      z.dispose();
    }
    for (const v of [x, w, b, wt]) v.dispose();
  }, 120_000);
});

describe('pipeline cache bound', () => {
  it('keeps at most maxPipelines, evicting the least recently used', () => {
    // A second Device over the same GPUDevice with a tiny bound; never released (that would destroy the shared GPUDevice).
    const small = new DeviceClass(device.gpu, { adapter: device.adapter, maxPipelines: 3 });
    const wgsl = (i: number) => () => `@compute @workgroup_size(1) fn main() { let k = ${i}u; }`;
    const get = (i: number) => small.pipeline(`probe|${i}`, 'probe', wgsl(i));
    const p0 = get(0);
    get(1);
    get(2);
    expect(small.memory()).toMatchObject({ pipelines: 3, pipelinesCompiled: 3 });
    expect(get(0)).toBe(p0); // a hit: 0 becomes the most recently used
    get(3); // evicts 1, the least recently used
    expect(small.memory()).toMatchObject({ pipelines: 3, pipelinesCompiled: 4 });
    expect(get(0)).toBe(p0);
    get(2);
    expect(small.memory().pipelinesCompiled).toBe(4);
    get(1); // was evicted: compiled again
    expect(small.memory()).toMatchObject({ pipelines: 3, pipelinesCompiled: 5 });
  });

  it('rejects a bad bound', () => {
    expect(() => new DeviceClass(device.gpu, { adapter: device.adapter, maxPipelines: 0 })).toThrow(/maxPipelines/);
  });
});

describe('kernel declarations', () => {
  it('names a missing or unknown uniform, and a wrong number of tensors', () => {
    const x = t([4], 1);
    const y = Tensor.empty(device, [4]);
    const decl = { inputs: ['xs'], outputs: ['ys'], uniforms: { n: 'u32', scale: 'f32' } } as const;
    const wgsl = () =>
      '@compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) { ys[i] = xs[i]; }';
    const base = { op: 'probeDecl', key: '', decl, wgsl, inputs: [x], outputs: [y], workgroups: [1] as [number] };
    // @ts-expect-error scale is missing
    expect(() => runKernel({ ...base, uniforms: { n: 4 } })).toThrow(/probeDecl: uniform "scale" is missing/);
    // @ts-expect-error extra is not declared
    expect(() => runKernel({ ...base, uniforms: { n: 4, scale: 1, extra: 2 } })).toThrow(/unknown uniform "extra"/);
    expect(() => runKernel({ ...base, inputs: [], uniforms: { n: 4, scale: 1 } })).toThrow(
      /0 inputs .* 1 and 1 declared/,
    );
    x.dispose();
    y.dispose();
  });
});
