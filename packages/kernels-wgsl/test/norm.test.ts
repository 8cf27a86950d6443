import type { Device } from '@cg/tensor-core';
import { ShapeError, sizeOf, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkDirectional, expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { batchNorm2d, batchNorm2dBackward, batchNorm2dBackwardRef, batchNorm2dRef } from '../src/ops/batch_norm2d.js';
import type { NormTuning } from '../src/ops/channel_norm.js';
import {
  instanceNorm2d,
  instanceNorm2dBackward,
  instanceNorm2dBackwardRef,
  instanceNorm2dRef,
} from '../src/ops/instance_norm2d.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);
interface Inputs {
  x: Float32Array;
  w: Float32Array | null;
  b: Float32Array | null;
  dy: Float32Array;
}

function makeInputs(shape: number[], seed: number, hasW: boolean, hasB: boolean, offset = 0, noise = 1): Inputs {
  const n = sizeOf(shape);
  const C = shape[1];
  return {
    x: randomArray(n, seed, offset - noise, offset + noise),
    w: hasW ? randomArray(C, seed + 1, 0.5, 1.5) : null,
    b: hasB ? randomArray(C, seed + 2, -0.5, 0.5) : null,
    dy: randomArray(n, seed + 3, -1, 1),
  };
}

const upload = (a: ArrayLike<number> | null, shape: number[]) => (a ? Tensor.fromArray(device, a, shape) : null);

interface NormCase {
  name: string;
  shape: number[];
  weight: boolean;
  bias: boolean;
  tuning?: NormTuning;
  /**
   * x = offset + U(-noise, noise): the |mean| ≫ std case, where one-pass
   * E[x²] - E[x]² in f32 gives a negative variance (offset 1000, noise 0.1:
   * -414 instead of 0.0033) and the shifted Welford/Chan path stays within
   * the same tolerance as zero-mean data.
   */
  offset?: number;
  noise?: number;
}

const INSTANCE_CASES: NormCase[] = [
  { name: 'one element per plane (variance 0)', shape: [1, 1, 1, 1], weight: true, bias: true },
  { name: '1×1 planes, batch 2', shape: [2, 3, 1, 1], weight: true, bias: true },
  { name: 'odd non-square 7×5', shape: [1, 3, 7, 5], weight: true, bias: true },
  { name: 'batch 3, C 5, vec4 rows, no affine', shape: [3, 5, 4, 6], weight: false, bias: false },
  { name: 'prime 13×11, C 1', shape: [2, 1, 13, 11], weight: true, bias: true },
  { name: 'weight only', shape: [2, 3, 6, 6], weight: true, bias: false },
  { name: 'bias only', shape: [1, 3, 5, 3], weight: false, bias: true },
  {
    name: 'split path, scalar rows 17×19',
    shape: [2, 3, 17, 19],
    weight: true,
    bias: true,
    tuning: { chunks: 3 },
  },
  { name: '128×128 planes, fused tree', shape: [1, 2, 128, 128], weight: true, bias: true, tuning: { chunks: 1 } },
  { name: '128×128 planes, split', shape: [1, 2, 128, 128], weight: true, bias: true, tuning: { chunks: 4 } },
  { name: '128×128 planes, automatic', shape: [1, 2, 128, 128], weight: false, bias: false },
  {
    name: 'log-depth tree combine, wg 256',
    shape: [2, 3, 20, 20],
    weight: true,
    bias: true,
    tuning: { combine: 'tree', workgroupSize: 256 },
  },
  {
    name: 'the GPU default: tree combine, wg 256, split',
    shape: [1, 2, 64, 64],
    weight: true,
    bias: true,
    tuning: { combine: 'tree', workgroupSize: 256, chunks: 4 },
  },
  {
    name: 'big mean 1000 + U(-1,1) over 256×256, automatic',
    shape: [1, 1, 256, 256],
    weight: true,
    bias: true,
    offset: 1000,
  },
  {
    name: 'big mean 1000 + U(-0.1,0.1) over 256×256, fused',
    shape: [1, 1, 256, 256],
    weight: false,
    bias: false,
    offset: 1000,
    noise: 0.1,
    tuning: { chunks: 1 },
  },
  {
    name: 'big mean -3000, wg 64',
    shape: [2, 2, 9, 12],
    weight: true,
    bias: false,
    offset: -3000,
  },
];

describe('instanceNorm2d', () => {
  INSTANCE_CASES.forEach((c, ci) => {
    describe(`${c.name} ${JSON.stringify(c.shape)}`, () => {
      const seed = 1000 + 17 * ci;
      const inp = makeInputs(c.shape, seed, c.weight, c.bias, c.offset, c.noise);
      const C = c.shape[1];

      it('GPU forward vs float64 reference', async () => {
        const want = instanceNorm2dRef(inp.x, c.shape, inp.w, inp.b);
        const x = upload(inp.x, c.shape)!;
        const w = upload(inp.w, [C]);
        const b = upload(inp.b, [C]);
        const { y, mean, invStd } = instanceNorm2d(x, w, b, 1e-5, c.tuning);
        expect(y.shape).toEqual(c.shape);
        expect(mean.shape).toEqual([c.shape[0] * C]);
        expectClose(await y.toArray(), want.data, { rtol: 2e-6, atol: 2e-6, label: 'y' });
        expectClose(await mean.toArray(), want.mean, { rtol: 1e-6, atol: 1e-6, label: 'mean' });
        expectClose(await invStd.toArray(), want.invStd, { rtol: 2e-5, label: 'invStd' });
        for (const t of [x, w, b, y, mean, invStd]) t?.dispose();
      });

      it('reference backward vs central differences', () => {
        const fwd = ([x, w, b]: Float64Array[]) =>
          instanceNorm2dRef(x, c.shape, c.weight ? w : null, c.bias ? b : null).data;
        const params = [f64(inp.x), f64(inp.w ?? [0]), f64(inp.b ?? [0])];
        const ref = instanceNorm2dRef(params[0], c.shape, inp.w, inp.b);
        const g = instanceNorm2dBackwardRef(inp.dy, params[0], c.shape, ref.mean, ref.invStd, inp.w);
        // dbias of a bias without weight is Σ dy per channel (the backward only reports it with weight).
        const dbias = g.dbias ?? new Float64Array(C).map((_, ch) => sumChannel(inp.dy, c.shape, ch));
        const grads = [g.dx, c.weight ? g.dweight! : new Float64Array(1), c.bias ? dbias : new Float64Array(1)];
        checkDirectional(fwd, params, f64(inp.dy), grads, seed);
      });

      it('GPU backward vs reference backward', async () => {
        const ref = instanceNorm2dRef(inp.x, c.shape, inp.w, inp.b);
        const want = instanceNorm2dBackwardRef(inp.dy, inp.x, c.shape, ref.mean, ref.invStd, inp.w);
        const x = upload(inp.x, c.shape)!;
        const dy = upload(inp.dy, c.shape)!;
        const w = upload(inp.w, [C]);
        const f = instanceNorm2d(x, w, null, 1e-5, c.tuning);
        const g = instanceNorm2dBackward(dy, x, f.mean, f.invStd, w, c.tuning);
        const bt = 5e-5;
        expectClose(await g.dx.toArray(), want.dx, { rtol: bt, atol: bt, label: 'dx' });
        if (c.weight) {
          expectClose(await g.dweight!.toArray(), want.dweight!, { rtol: bt, atol: bt, label: 'dweight' });
          expectClose(await g.dbias!.toArray(), want.dbias!, { rtol: 1e-5, atol: 1e-5, label: 'dbias' });
        } else {
          expect(g.dweight).toBeNull();
          expect(g.dbias).toBeNull();
        }
        for (const t of [x, dy, w, f.y, f.mean, f.invStd, g.dx, g.dweight, g.dbias]) t?.dispose();
      });
    });
  });

  it('1×1 planes give y = bias and dx = 0, with no NaN', async () => {
    const [y, dx] = await tidy(() => {
      const x = Tensor.fromArray(device, [3, -7, 1e6], [1, 3, 1, 1]);
      const b = Tensor.fromArray(device, [0.5, -1, 2], [3]);
      const w = Tensor.fromArray(device, [2, 3, 4], [3]);
      const f = instanceNorm2d(x, w, b);
      const g = instanceNorm2dBackward(Tensor.fromArray(device, [1, 2, 3], [1, 3, 1, 1]), x, f.mean, f.invStd, w);
      return [f.y, g.dx];
    });
    expect([...(await y.toArray())]).toEqual([0.5, -1, 2]);
    expect([...(await dx.toArray())]).toEqual([0, 0, 0]);
    y.dispose();
    dx.dispose();
  });

  it('frees its temporaries (split path)', async () => {
    const x = Tensor.fromArray(device, randomArray(2 * 64 * 64, 5), [1, 2, 64, 64]);
    const before = device.memory().liveTensors;
    const f = instanceNorm2d(x, null, null, 1e-5, { chunks: 4 });
    const g = instanceNorm2dBackward(x, x, f.mean, f.invStd, null, { chunks: 4 });
    expect(device.memory().liveTensors).toBe(before + 4);
    for (const t of [f.y, f.mean, f.invStd, g.dx]) t.dispose();
    await device.sync();
    x.dispose();
  });

  it('rejects bad shapes with a ShapeError naming op and shapes', () => {
    tidy(() => {
      const x3 = Tensor.zeros(device, [2, 3, 4]);
      expect(() => instanceNorm2d(x3, null, null)).toThrow(ShapeError);
      expect(() => instanceNorm2d(x3, null, null)).toThrow(/instanceNorm2d: x must be \[N,C,H,W\].*x \[2,3,4\]/);
      const x = Tensor.zeros(device, [1, 3, 4, 4]);
      const w4 = Tensor.zeros(device, [4]);
      expect(() => instanceNorm2d(x, w4, null)).toThrow(/weight .*expected \[3\], got \[4\]; x \[1,3,4,4\]/);
      expect(() => instanceNorm2d(x, null, w4)).toThrow(/bias .*expected \[3\], got \[4\]/);
      const f = instanceNorm2d(x, null, null);
      const dyBad = Tensor.zeros(device, [1, 3, 4, 5]);
      expect(() => instanceNorm2dBackward(dyBad, x, f.mean, f.invStd, null)).toThrow(
        /instanceNorm2dBackward: dy must have the shape of x \(expected \[1,3,4,4\], got \[1,3,4,5\]/,
      );
      expect(() => instanceNorm2dBackward(x, x, w4, f.invStd, null)).toThrow(/mean .*expected 3 values, got \[4\]/);
      expect(() => instanceNorm2d(Tensor.zeros(device, [1, 0, 4, 4]), null, null)).toThrow(ShapeError);
    });
  });
});

function sumChannel(a: ArrayLike<number>, shape: number[], c: number): number {
  const [N, C, H, W] = shape;
  let s = 0;
  for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) s += a[(n * C + c) * H * W + i];
  return s;
}

const BATCH_CASES: NormCase[] = [
  { name: 'odd sizes, affine', shape: [2, 3, 5, 7], weight: true, bias: true },
  { name: '1×1 spatial, batch 3', shape: [3, 1, 1, 1], weight: true, bias: true },
  { name: 'batch 1, C 5', shape: [1, 5, 3, 3], weight: false, bias: false },
  { name: 'vec4 rows, batch 4', shape: [4, 2, 8, 8], weight: true, bias: false },
  { name: 'split path', shape: [2, 3, 24, 24], weight: true, bias: true, tuning: { chunks: 2 } },
  { name: 'big mean 500', shape: [3, 2, 32, 32], weight: true, bias: true, offset: 500 },
  { name: 'one channel, automatic split on a CPU adapter', shape: [2, 1, 32, 32], weight: true, bias: true },
];

describe('batchNorm2d', () => {
  BATCH_CASES.forEach((c, ci) => {
    describe(`${c.name} ${JSON.stringify(c.shape)}`, () => {
      const seed = 5000 + 23 * ci;
      const inp = makeInputs(c.shape, seed, c.weight, c.bias, c.offset, c.noise);
      const C = c.shape[1];
      const rm0 = randomArray(C, seed + 7, -1, 1);
      const rv0 = randomArray(C, seed + 8, 0.5, 2);

      it('GPU training forward and running-stat update vs float64 reference', async () => {
        const run = { mean: rm0, var: rv0, momentum: 0.1 };
        const want = batchNorm2dRef(inp.x, c.shape, inp.w, inp.b, { training: true, running: run });
        const x = upload(inp.x, c.shape)!;
        const w = upload(inp.w, [C]);
        const b = upload(inp.b, [C]);
        const state = {
          runningMean: Tensor.fromArray(device, rm0, [C]),
          runningVar: Tensor.fromArray(device, rv0, [C]),
          momentum: 0.1,
        };
        const { y, mean, invStd } = batchNorm2d(x, w, b, { training: true, state, tuning: c.tuning });
        expectClose(await y.toArray(), want.data, { rtol: 2e-6, atol: 2e-6, label: 'y' });
        expectClose(await mean.toArray(), want.mean, { rtol: 1e-6, atol: 1e-6, label: 'mean' });
        expectClose(await invStd.toArray(), want.invStd, { rtol: 2e-5, label: 'invStd' });
        expectClose(await state.runningMean.toArray(), want.runningMean!, { rtol: 1e-6, label: 'runningMean' });
        expectClose(await state.runningVar.toArray(), want.runningVar!, { rtol: 1e-5, label: 'runningVar' });
        for (const t of [x, w, b, y, mean, invStd, state.runningMean, state.runningVar]) t?.dispose();
      });

      it('GPU eval forward uses the running statistics', async () => {
        const run = { mean: rm0, var: rv0, momentum: 0.1 };
        const want = batchNorm2dRef(inp.x, c.shape, inp.w, inp.b, { training: false, running: run });
        const [y, mean, invStd, rm] = tidy(() => {
          const state = {
            runningMean: Tensor.fromArray(device, rm0, [C]),
            runningVar: Tensor.fromArray(device, rv0, [C]),
            momentum: 0.1,
          };
          const f = batchNorm2d(upload(inp.x, c.shape)!, upload(inp.w, [C]), upload(inp.b, [C]), {
            training: false,
            state,
          });
          return [f.y, f.mean, f.invStd, state.runningMean];
        });
        expectClose(await y.toArray(), want.data, { rtol: 1e-5, atol: 1e-5, label: 'y' });
        expectClose(await mean.toArray(), rm0, { rtol: 0, atol: 0, label: 'mean' });
        expectClose(await invStd.toArray(), want.invStd, { rtol: 1e-6, label: 'invStd' });
        expectClose(await rm.toArray(), rm0, { rtol: 0, atol: 0, label: 'running mean untouched' });
        for (const t of [y, mean, invStd, rm]) t.dispose();
      });

      it('reference backward vs central differences', () => {
        const fwd = ([x, w, b]: Float64Array[]) =>
          batchNorm2dRef(x, c.shape, c.weight ? w : null, c.bias ? b : null, { training: true }).data;
        const params = [f64(inp.x), f64(inp.w ?? [0]), f64(inp.b ?? [0])];
        const ref = batchNorm2dRef(params[0], c.shape, inp.w, inp.b, { training: true });
        const g = batchNorm2dBackwardRef(inp.dy, params[0], c.shape, ref.mean, ref.invStd, inp.w);
        const dbias = g.dbias ?? new Float64Array(C).map((_, ch) => sumChannel(inp.dy, c.shape, ch));
        const grads = [g.dx, c.weight ? g.dweight! : new Float64Array(1), c.bias ? dbias : new Float64Array(1)];
        checkDirectional(fwd, params, f64(inp.dy), grads, seed);
      });

      it('GPU backward vs reference backward', async () => {
        const ref = batchNorm2dRef(inp.x, c.shape, inp.w, inp.b, { training: true });
        const want = batchNorm2dBackwardRef(inp.dy, inp.x, c.shape, ref.mean, ref.invStd, inp.w);
        const x = upload(inp.x, c.shape)!;
        const dy = upload(inp.dy, c.shape)!;
        const w = upload(inp.w, [C]);
        const f = batchNorm2d(x, w, null, { training: true, tuning: c.tuning });
        const g = batchNorm2dBackward(dy, x, f.mean, f.invStd, w, c.tuning);
        const bt = 5e-5;
        expectClose(await g.dx.toArray(), want.dx, { rtol: bt, atol: bt, label: 'dx' });
        if (c.weight) {
          expectClose(await g.dweight!.toArray(), want.dweight!, { rtol: bt, atol: bt, label: 'dweight' });
          expectClose(await g.dbias!.toArray(), want.dbias!, { rtol: 1e-5, atol: 1e-5, label: 'dbias' });
        }
        for (const t of [x, dy, w, f.y, f.mean, f.invStd, g.dx, g.dweight, g.dbias]) t?.dispose();
      });
    });
  });

  it('eval without a state uses batch statistics (track_running_stats=False)', async () => {
    const shape = [2, 2, 3, 3];
    const xa = randomArray(sizeOf(shape), 77);
    const want = batchNorm2dRef(xa, shape, null, null, { training: true });
    const f = batchNorm2d(Tensor.fromArray(device, xa, shape), null, null, { training: false });
    expectClose(await f.y.toArray(), want.data, { rtol: 1e-5, atol: 1e-5, label: 'y' });
    for (const t of [f.y, f.mean, f.invStd]) t.dispose();
  });

  it('rejects bad shapes with a ShapeError', () => {
    tidy(() => {
      const one = Tensor.zeros(device, [1, 4, 1, 1]);
      expect(() => batchNorm2d(one, null, null, { training: true })).toThrow(ShapeError);
      expect(() => batchNorm2d(one, null, null, { training: true })).toThrow(
        /batchNorm2d: training needs more than one value per channel \(expected N·H·W > 1, got 1; x \[1,4,1,1\]\)/,
      );
      const x = Tensor.zeros(device, [2, 4, 3, 3]);
      const state = { runningMean: Tensor.zeros(device, [3]), runningVar: Tensor.zeros(device, [4]), momentum: 0.1 };
      expect(() => batchNorm2d(x, null, null, { training: true, state })).toThrow(
        /runningMean .*expected \[4\], got \[3\]; x \[2,4,3,3\]/,
      );
      const f = batchNorm2d(x, null, null, { training: true });
      expect(() => batchNorm2dBackward(x, x, Tensor.zeros(device, [8]), f.invStd, null)).toThrow(
        /batchNorm2dBackward: mean .*expected 4 values, got \[8\]/,
      );
    });
  });
});
