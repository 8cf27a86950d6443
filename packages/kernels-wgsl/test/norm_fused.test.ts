import type { Device } from '@cg/tensor-core';
import { ShapeError, sizeOf, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkDirectional, expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { leakyReluBackward, reluBackward } from '../src/ops/activation_backward.js';
import { add } from '../src/ops/binary.js';
import type { NormTuning } from '../src/ops/channel_norm.js';
import {
  instanceNorm2d,
  instanceNorm2dAct,
  instanceNorm2dActBackward,
  instanceNorm2dActBackwardRef,
  instanceNorm2dActRef,
  instanceNorm2dAdd,
  instanceNorm2dAddRef,
  instanceNorm2dBackward,
  instanceNorm2dBackwardRef,
  instanceNorm2dRef,
  type NormActivation,
} from '../src/ops/instance_norm2d.js';
import { leakyRelu, relu } from '../src/ops/unary.js';

/**
 * The fused norm chains (instance_norm2d.ts): act(IN(x)) and skip + IN(x).
 * Per case: GPU vs the float64 reference of the chain, the reference
 * backward vs central differences, the GPU backward vs the reference, and
 * the fused kernels vs the unfused kernel chain they replace, which must
 * agree to the bit (the same expressions in the same order).
 */

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);
const up = (a: ArrayLike<number> | null, shape: number[]) => (a ? Tensor.fromArray(device, a, shape) : null);

interface FusedCase {
  name: string;
  shape: number[];
  affine: boolean;
  tuning?: NormTuning;
}

const CASES: FusedCase[] = [
  { name: '1×1 planes, batch 2 (z = bias)', shape: [2, 3, 1, 1], affine: true },
  { name: 'odd 7×5, C 5, batch 2', shape: [2, 5, 7, 5], affine: false },
  { name: 'vec4 rows 4×6, C 3, affine', shape: [2, 3, 4, 6], affine: true },
  { name: 'prime 13×11, C 1', shape: [1, 1, 13, 11], affine: false },
  { name: 'split path, scalar rows 17×19', shape: [2, 3, 17, 19], affine: true, tuning: { chunks: 3 } },
  { name: 'split path, vec4 64×64, automatic', shape: [1, 2, 64, 64], affine: false },
  {
    name: 'tree combine, wg 256',
    shape: [2, 3, 20, 20],
    affine: true,
    tuning: { combine: 'tree', workgroupSize: 256 },
  },
];

const ACTS: [NormActivation, number][] = [
  ['relu', 0],
  ['leakyRelu', 0.2],
];

function inputs(shape: number[], seed: number, affine: boolean) {
  const n = sizeOf(shape);
  const C = shape[1];
  return {
    x: randomArray(n, seed, -1, 2),
    skip: randomArray(n, seed + 4, -1, 1),
    w: affine ? randomArray(C, seed + 1, 0.5, 1.5) : null,
    b: affine ? randomArray(C, seed + 2, -0.5, 0.5) : null,
    dy: randomArray(n, seed + 3, -1, 1),
  };
}

/** The shared directional check (test/helpers/compare.ts) for one parameter. */
const checkDirectional1 = (
  f: (p: Float64Array) => Float64Array,
  p: Float64Array,
  r: Float64Array,
  g: Float64Array,
  seed: number,
) => checkDirectional((ps) => f(ps[0]), [p], r, [g], seed);

/** Runs `fn` in a scope and reads back (then frees) the tensors it returns. */
async function run(fn: () => (Tensor | null)[]): Promise<(Float32Array | null)[]> {
  const ts = tidy(fn);
  try {
    return await Promise.all(ts.map((t) => (t ? t.toArray() : null)));
  } finally {
    for (const t of ts) t?.dispose();
  }
}

describe('instanceNorm2dAct', () => {
  CASES.forEach((c, ci) => {
    for (const [act, slope] of ACTS) {
      describe(`${act} ${c.name} ${JSON.stringify(c.shape)}`, () => {
        const seed = 5000 + 31 * ci + (act === 'relu' ? 0 : 7);
        const inp = inputs(c.shape, seed, c.affine);
        const C = c.shape[1];

        it('GPU forward and backward vs float64 references', async () => {
          const want = instanceNorm2dActRef(inp.x, c.shape, inp.w, inp.b, act, slope);
          const wantG = instanceNorm2dActBackwardRef(inp.dy, inp.x, c.shape, inp.w, inp.b, act, slope);
          const got = await run(() => {
            const x = up(inp.x, c.shape)!;
            const w = up(inp.w, [C]);
            const f = instanceNorm2dAct(x, w, up(inp.b, [C]), act, slope, 1e-5, c.tuning);
            const g = instanceNorm2dActBackward(
              up(inp.dy, c.shape)!,
              x,
              f.y,
              f.mean,
              f.invStd,
              w,
              act,
              slope,
              c.tuning,
            );
            return [f.y, g.dx, g.dweight, g.dbias];
          });
          const [y, dx, dw, db] = got;
          expectClose(y!, want.data, { rtol: 2e-6, atol: 2e-6, label: 'y' });
          const bt = 5e-5;
          expectClose(dx!, wantG.dx, { rtol: bt, atol: bt, label: 'dx' });
          if (c.affine) {
            expectClose(dw!, wantG.dweight!, { rtol: bt, atol: bt, label: 'dweight' });
            expectClose(db!, wantG.dbias!, { rtol: 1e-5, atol: 1e-5, label: 'dbias' });
          } else {
            expect(dw).toBeNull();
            expect(db).toBeNull();
          }
        });

        it('reference backward vs central differences', () => {
          if (c.shape[2] * c.shape[3] === 1) return; // z = bias: no dependence on x (dx = 0, checked on the GPU)
          const fwd = (x: Float64Array) => instanceNorm2dActRef(x, c.shape, inp.w, inp.b, act, slope).data;
          const g = instanceNorm2dActBackwardRef(inp.dy, inp.x, c.shape, inp.w, inp.b, act, slope);
          checkDirectional1(fwd, f64(inp.x), f64(inp.dy), g.dx, seed);
        });

        it('equals the unfused kernel chain to the bit', async () => {
          const got = await run(() => {
            const x = up(inp.x, c.shape)!;
            const dy = up(inp.dy, c.shape)!;
            const w = up(inp.w, [C]);
            const b = up(inp.b, [C]);
            const f = instanceNorm2dAct(x, w, b, act, slope, 1e-5, c.tuning);
            const g = instanceNorm2dActBackward(dy, x, f.y, f.mean, f.invStd, w, act, slope, c.tuning);
            const n = instanceNorm2d(x, w, b, 1e-5, c.tuning);
            const y = act === 'relu' ? relu(n.y) : leakyRelu(n.y, slope);
            const dz = act === 'relu' ? reluBackward(dy, n.y) : leakyReluBackward(dy, n.y, slope);
            const h = instanceNorm2dBackward(dz, x, n.mean, n.invStd, w, c.tuning);
            return [f.y, g.dx, g.dweight, y, h.dx, h.dweight];
          });
          const [fused, chain] = [got.slice(0, 3), got.slice(3)];
          expect([...fused[0]!]).toEqual([...chain[0]!]);
          expect([...fused[1]!]).toEqual([...chain[1]!]);
          if (c.affine) expect([...fused[2]!]).toEqual([...chain[2]!]);
        });
      });
    }
  });

  it('rejects a negative slope, mis-shaped y and bad x with errors naming the op', () => {
    tidy(() => {
      const x = Tensor.zeros(device, [1, 3, 4, 4]);
      expect(() => instanceNorm2dAct(x, null, null, 'leakyRelu', -0.1)).toThrow(
        /instanceNorm2dAct: leakyRelu's negative slope must be finite and ≥ 0/,
      );
      expect(() => instanceNorm2dAct(Tensor.zeros(device, [3, 4, 4]), null, null, 'relu')).toThrow(ShapeError);
      const f = instanceNorm2dAct(x, null, null, 'relu');
      const yBad = Tensor.zeros(device, [1, 3, 4, 5]);
      expect(() => instanceNorm2dActBackward(x, x, yBad, f.mean, f.invStd, null, 'relu')).toThrow(
        /instanceNorm2dActBackward: y must have the shape of x \(expected \[1,3,4,4\], got \[1,3,4,5\]/,
      );
    });
  });
});

describe('instanceNorm2dAdd', () => {
  CASES.forEach((c, ci) => {
    describe(`${c.name} ${JSON.stringify(c.shape)}`, () => {
      const seed = 7000 + 37 * ci;
      const inp = inputs(c.shape, seed, c.affine);
      const C = c.shape[1];

      it('GPU forward vs float64 reference, and equal to the unfused instanceNorm2d + add to the bit', async () => {
        const want = instanceNorm2dAddRef(inp.x, inp.skip, c.shape, inp.w, inp.b);
        const [y, chain, mean] = await run(() => {
          const x = up(inp.x, c.shape)!;
          const skip = up(inp.skip, c.shape)!;
          const w = up(inp.w, [C]);
          const b = up(inp.b, [C]);
          const f = instanceNorm2dAdd(x, skip, w, b, 1e-5, c.tuning);
          const n = instanceNorm2d(x, w, b, 1e-5, c.tuning);
          return [f.y, add(skip, n.y), f.mean];
        });
        expectClose(y!, want.data, { rtol: 2e-6, atol: 2e-6, label: 'y' });
        expectClose(mean!, want.mean, { rtol: 1e-6, atol: 1e-6, label: 'mean' });
        expect([...y!]).toEqual([...chain!]);
      });

      it('the backward it is used with (instanceNorm2dBackward for x, dy for skip) matches the chain rule', () => {
        if (c.shape[2] * c.shape[3] === 1) return;
        const ref = instanceNorm2dRef(inp.x, c.shape, inp.w, inp.b);
        const g = instanceNorm2dBackwardRef(inp.dy, inp.x, c.shape, ref.mean, ref.invStd, inp.w);
        const fx = (x: Float64Array) => instanceNorm2dAddRef(x, inp.skip, c.shape, inp.w, inp.b).data;
        checkDirectional1(fx, f64(inp.x), f64(inp.dy), g.dx, seed);
        const fs = (s: Float64Array) => instanceNorm2dAddRef(inp.x, s, c.shape, inp.w, inp.b).data;
        checkDirectional1(fs, f64(inp.skip), f64(inp.dy), f64(inp.dy), seed + 1);
      });
    });
  });

  it('rejects a skip of another shape', () => {
    tidy(() => {
      const x = Tensor.zeros(device, [2, 3, 4, 4]);
      expect(() => instanceNorm2dAdd(x, Tensor.zeros(device, [1, 3, 4, 4]), null, null)).toThrow(
        /instanceNorm2dAdd: skip must have the shape of x \(expected \[2,3,4,4\], got \[1,3,4,4\]/,
      );
    });
  });
});
