import { createRequire } from 'node:module';
import type { Device, Shape } from '@cg/tensor-core';
import { Device as DeviceClass, ShapeError, sizeOf, Tensor, tidy } from '@cg/tensor-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import {
  CONV_STRATEGIES,
  type ConvStrategy,
  convStrategy,
  convTuning,
  dispatchBudget,
  type RegisterForm,
  registerForm,
  setConvStrategy,
  useSubgroups,
} from '../src/ops/conv_strategy.js';
import {
  convTranspose2d,
  convTranspose2dBackwardInput,
  convTranspose2dBackwardRef,
  convTranspose2dBackwardWeight,
  convTranspose2dOutputShape,
  convTranspose2dRef,
} from '../src/ops/conv_transpose2d.js';
import {
  conv2d,
  conv2dBackwardBias,
  conv2dBackwardInput,
  conv2dBackwardRef,
  conv2dBackwardWeight,
  conv2dOutputShape,
  conv2dRef,
} from '../src/ops/conv2d.js';
import { pad2dBackwardRef, pad2dRef } from '../src/ops/pad2d.js';

/**
 * One row per case; every row generates, for both tiling strategies:
 * forward, input gradient, weight gradient and bias gradient on the GPU vs
 * the float64 reference, plus (once, on the CPU) the reference gradients vs
 * central differences along a random direction.
 *
 * Tolerances: an output is a sum of K f32 products of values in [-1, 1];
 * rounding grows like √K, so rtol = 3e-6·√K relative to the largest
 * reference magnitude (atol 1e-6). Measured: the worst element uses 3% of it.
 */
interface Case {
  name: string;
  transpose?: boolean;
  N: number;
  Cin: number;
  Cout: number;
  H: number;
  W: number;
  k: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
  outputPadding?: number | [number, number];
  bias?: boolean;
}

const CASES: Case[] = [
  { name: '3x3 s1 p1', N: 1, Cin: 3, Cout: 5, H: 7, W: 9, k: 3, padding: 1 },
  { name: '1x1 kernel, batch 2', N: 2, Cin: 5, Cout: 7, H: 5, W: 3, k: 1 },
  { name: '7x7 p3, prime sizes', N: 1, Cin: 3, Cout: 4, H: 11, W: 13, k: 7, padding: 3 },
  { name: '7x7 p0 (head after reflection pad), Cout 3', N: 1, Cin: 4, Cout: 3, H: 13, W: 12, k: 7 },
  { name: '4x4 s2 p1 odd input (PatchGAN), batch 2', N: 2, Cin: 3, Cout: 8, H: 9, W: 11, k: 4, stride: 2, padding: 1 },
  { name: '4x4 s1 p1 to one channel (PatchGAN tail)', N: 1, Cin: 5, Cout: 1, H: 6, W: 7, k: 4, padding: 1 },
  { name: '3x3 s2 p1 odd input, batch 3', N: 3, Cin: 7, Cout: 6, H: 13, W: 7, k: 3, stride: 2, padding: 1 },
  { name: '1x1 spatial, 3x3 p1', N: 2, Cin: 6, Cout: 5, H: 1, W: 1, k: 3, padding: 1 },
  { name: '3x3 p0 primes', N: 1, Cin: 5, Cout: 9, H: 17, W: 19, k: 3 },
  {
    name: 'non-square kernel/stride/padding',
    N: 2,
    Cin: 3,
    Cout: 4,
    H: 9,
    W: 8,
    k: [3, 5],
    stride: [2, 1],
    padding: [1, 2],
  },
  {
    name: 'partial channel blocks (17→19), no bias',
    N: 1,
    Cin: 17,
    Cout: 19,
    H: 8,
    W: 10,
    k: 3,
    padding: 1,
    bias: false,
  },
  { name: 'kernel smaller than stride (k2 s3)', N: 1, Cin: 2, Cout: 3, H: 7, W: 8, k: 2, stride: 3 },
  { name: '1x1 stride 2', N: 1, Cin: 4, Cout: 5, H: 7, W: 6, k: 1, stride: 2 },
  { name: 'wide row (W 70)', N: 1, Cin: 2, Cout: 3, H: 3, W: 70, k: 3, padding: 1 },
  // Production tiles: 64 input channels (2 per weight-gradient invocation, vec4 gradient rows), 16-channel blocks.
  { name: '64→6, W 16 (vec4 gradient rows)', N: 1, Cin: 64, Cout: 6, H: 5, W: 16, k: 3, padding: 1 },
  { name: 'narrow head 5→2 at W 37 (32-pixel rows)', N: 1, Cin: 5, Cout: 2, H: 4, W: 37, k: 3, padding: 1 },
  // Transposed convolutions: every padding/output_padding pair CycleGAN and U-Net use, and then some.
  {
    name: 'T k3 s2 p1 op1 (CycleGAN up)',
    transpose: true,
    N: 1,
    Cin: 6,
    Cout: 4,
    H: 5,
    W: 7,
    k: 3,
    stride: 2,
    padding: 1,
    outputPadding: 1,
  },
  {
    name: 'T k4 s2 p1 op0 (U-Net up), batch 2',
    transpose: true,
    N: 2,
    Cin: 5,
    Cout: 3,
    H: 4,
    W: 5,
    k: 4,
    stride: 2,
    padding: 1,
  },
  { name: 'T k3 s2 p1 op0', transpose: true, N: 1, Cin: 3, Cout: 5, H: 6, W: 5, k: 3, stride: 2, padding: 1 },
  { name: 'T k3 s1 p1', transpose: true, N: 1, Cin: 4, Cout: 4, H: 6, W: 6, k: 3, padding: 1 },
  { name: 'T k4 s2 p0 op1', transpose: true, N: 1, Cin: 3, Cout: 2, H: 3, W: 4, k: 4, stride: 2, outputPadding: 1 },
  {
    name: 'T k1 s2 op1 (phases with no tap)',
    transpose: true,
    N: 1,
    Cin: 3,
    Cout: 5,
    H: 3,
    W: 3,
    k: 1,
    stride: 2,
    outputPadding: 1,
  },
  {
    name: 'T k3 s2 p1 op1 from 1x1, batch 3',
    transpose: true,
    N: 3,
    Cin: 5,
    Cout: 7,
    H: 1,
    W: 1,
    k: 3,
    stride: 2,
    padding: 1,
    outputPadding: 1,
  },
  {
    name: 'T non-square',
    transpose: true,
    N: 1,
    Cin: 3,
    Cout: 4,
    H: 4,
    W: 3,
    k: [3, 4],
    stride: [2, 3],
    padding: [1, 2],
    outputPadding: [1, 0],
  },
  { name: 'T k7 s1 p3, Cout 9', transpose: true, N: 1, Cin: 2, Cout: 9, H: 5, W: 6, k: 7, padding: 3 },
];

let device: Device;
/** A second device with the `subgroups` feature (null where the adapter lacks it): the register kernels' subgroup variant. */
let sgDevice: Device | null = null;
beforeAll(async () => {
  device = await testDevice();
  sgDevice = await subgroupDevice(device);
});
afterAll(() => {
  setConvStrategy('auto');
  convTuning.subgroups = true;
  convTuning.registerForm = null;
  sgDevice?.release();
});

// Dawn instances must outlive their devices (docs/ARCHITECTURE.md §9): kept here until exit.
const instances: unknown[] = [];

async function subgroupDevice(like: Device): Promise<Device | null> {
  if (!like.adapter.features.includes('subgroups')) return null;
  const require = createRequire(new URL('../../tensor-core/package.json', import.meta.url));
  const { create } = (await import(require.resolve('webgpu'))) as {
    create: (flags: string[]) => { requestAdapter(): Promise<GPUAdapter | null> };
  };
  const instance = create([]);
  instances.push(instance);
  const adapter = await instance.requestAdapter();
  if (!adapter?.features.has('subgroups')) return null;
  const keys = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize'] as const;
  const gpu = await adapter.requestDevice({
    requiredFeatures: ['subgroups'],
    requiredLimits: Object.fromEntries(keys.map((k) => [k, adapter.limits[k]])),
    label: 'cg-subgroups',
  });
  const d = new DeviceClass(gpu, { adapter: like.adapter, keepAlive: instance });
  expect(useSubgroups(d)).toBe(true);
  return d;
}

/**
 * The implementations a case runs on: both strategies, the register kernels' subgroup variant, and the
 * register gather kernel's compact form (SwiftShader's, registerForm()).
 */
const VARIANTS: { strategy: ConvStrategy; subgroups: boolean; form: RegisterForm }[] = [
  ...CONV_STRATEGIES.map((strategy) => ({ strategy, subgroups: false, form: 'named' as const })),
  { strategy: 'register', subgroups: true, form: 'named' },
  { strategy: 'register', subgroups: false, form: 'compact' },
];
const variantName = (v: (typeof VARIANTS)[number]) =>
  v.subgroups ? `${v.strategy}+subgroups` : v.form === 'compact' ? `${v.strategy}, compact` : v.strategy;

const testDeviceNow = () => device;
const kk = (c: Case): [number, number] => (typeof c.k === 'number' ? [c.k, c.k] : c.k);
const wShapeOf = (c: Case): number[] => (c.transpose ? [c.Cin, c.Cout, ...kk(c)] : [c.Cout, c.Cin, ...kk(c)]);
const xShapeOf = (c: Case): number[] => [c.N, c.Cin, c.H, c.W];
const optsOf = (c: Case, strategy?: ConvStrategy) => ({
  stride: c.stride,
  padding: c.padding,
  outputPadding: c.outputPadding,
  strategy,
});
const yShapeOf = (c: Case): number[] =>
  c.transpose
    ? convTranspose2dOutputShape(xShapeOf(c), wShapeOf(c), optsOf(c))
    : conv2dOutputShape(xShapeOf(c), wShapeOf(c), optsOf(c));

/** Seeded data of one case: x, w, b, dy. */
function dataOf(c: Case, seed: number) {
  const yShape = yShapeOf(c);
  return {
    x: randomArray(sizeOf(xShapeOf(c)), seed),
    w: randomArray(sizeOf(wShapeOf(c)), seed + 1),
    b: c.bias === false ? null : randomArray(c.Cout, seed + 2),
    dy: randomArray(sizeOf(yShape), seed + 3),
    yShape,
  };
}

function forwardRef(c: Case, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null) {
  return c.transpose
    ? convTranspose2dRef(x, xShapeOf(c), w, wShapeOf(c), b, optsOf(c))
    : conv2dRef(x, xShapeOf(c), w, wShapeOf(c), b, optsOf(c));
}

function backwardRef(c: Case, dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>) {
  return c.transpose
    ? convTranspose2dBackwardRef(dy, x, xShapeOf(c), w, wShapeOf(c), optsOf(c))
    : conv2dBackwardRef(dy, x, xShapeOf(c), w, wShapeOf(c), optsOf(c));
}

/** Terms summed per output of each pass (for the tolerance). */
function sumLengths(c: Case) {
  const [kH, kW] = kk(c);
  const [, , Ho, Wo] = yShapeOf(c);
  const s = typeof c.stride === 'number' ? c.stride * c.stride : c.stride ? c.stride[0] * c.stride[1] : 1;
  const outPix = c.N * Ho * Wo;
  const inPix = c.N * c.H * c.W;
  return {
    fwd: c.transpose ? Math.ceil((c.Cin * kH * kW) / s) : c.Cin * kH * kW,
    dx: c.transpose ? c.Cout * kH * kW : Math.ceil((c.Cout * kH * kW) / s),
    dw: c.transpose ? inPix : outPix,
    db: outPix / c.N,
  };
}
const tol = (K: number) => ({ rtol: 3e-6 * Math.sqrt(Math.max(K, 1)), atol: 1e-6 });

describe.each(CASES)('$name', (c) => {
  const seed = CASES.indexOf(c) * 17 + 5;
  const d = dataOf(c, seed);
  const K = sumLengths(c);

  for (const v of VARIANTS) {
    const { strategy } = v;
    it(`forward + input/weight/bias gradients vs float64 reference [${variantName(v)}]`, async (t) => {
      const device = v.subgroups ? sgDevice : testDeviceNow();
      // The shared test device has `subgroups` too when the adapter offers it: keep the plain variant plain.
      convTuning.subgroups = v.subgroups;
      convTuning.registerForm = v.form;
      if (!device) return t.skip();
      const want = forwardRef(c, d.x, d.w, d.b);
      const grads = backwardRef(c, d.dy, d.x, d.w);
      const opts = optsOf(c, strategy);
      const got = tidy(() => {
        const x = Tensor.fromArray(device, d.x, xShapeOf(c));
        const w = Tensor.fromArray(device, d.w, wShapeOf(c));
        const b = d.b ? Tensor.fromArray(device, d.b, [c.Cout]) : null;
        const dy = Tensor.fromArray(device, d.dy, d.yShape);
        if (c.transpose) {
          return {
            y: convTranspose2d(x, w, b, opts),
            dx: convTranspose2dBackwardInput(dy, w, xShapeOf(c), opts),
            dw: convTranspose2dBackwardWeight(dy, x, wShapeOf(c), opts),
            db: conv2dBackwardBias(dy),
          };
        }
        return {
          y: conv2d(x, w, b, opts),
          dx: conv2dBackwardInput(dy, w, xShapeOf(c), opts),
          dw: conv2dBackwardWeight(dy, x, wShapeOf(c), opts),
          db: conv2dBackwardBias(dy),
        };
      });
      expect(got.y.shape).toEqual(want.shape);
      expect(got.dx.shape).toEqual(xShapeOf(c));
      expect(got.dw.shape).toEqual(wShapeOf(c));
      expectClose(await got.y.toArray(), want.data, { ...tol(K.fwd), label: `${c.name} forward` });
      expectClose(await got.dx.toArray(), grads.dx, { ...tol(K.dx), label: `${c.name} dx` });
      expectClose(await got.dw.toArray(), grads.dw, { ...tol(K.dw), label: `${c.name} dw` });
      expectClose(await got.db.toArray(), grads.db, { ...tol(K.db), label: `${c.name} db` });
      for (const t of Object.values(got)) t.dispose();
    });
  }

  it('reference gradients match central differences along a random direction', () => {
    // L(x, w, b) = <y(x, w, b), r>; dL/dε of L(x + εv) is <dx, v> (likewise for w, b).
    const r = randomArray(sizeOf(d.yShape), seed + 7);
    const L = (x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null) => {
      const y = forwardRef(c, x, w, b).data;
      let s = 0;
      for (let i = 0; i < y.length; i++) s += y[i] * r[i];
      return s;
    };
    const g = backwardRef(c, r, d.x, d.w);
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * b[i];
      return s;
    };
    const along = (v: ArrayLike<number>, shift: (eps: number) => number) => {
      const eps = 1e-3;
      const fd = (shift(eps) - shift(-eps)) / (2 * eps);
      return { fd, scale: Math.sqrt(dot(v, v)) };
    };
    const bump = (a: ArrayLike<number>, v: ArrayLike<number>, eps: number) =>
      Float64Array.from(a, (t, i) => t + eps * v[i]);
    const vx = randomArray(d.x.length, seed + 8);
    const vw = randomArray(d.w.length, seed + 9);
    const vb = randomArray(c.Cout, seed + 10);
    const checks: [string, number, ReturnType<typeof along>][] = [
      ['dx', dot(g.dx, vx), along(vx, (e) => L(bump(d.x, vx, e), d.w, d.b))],
      ['dw', dot(g.dw, vw), along(vw, (e) => L(d.x, bump(d.w, vw, e), d.b))],
      ['db', dot(g.db, vb), along(vb, (e) => L(d.x, d.w, bump(d.b ?? new Float64Array(c.Cout), vb, e)))],
    ];
    for (const [name, analytic, { fd }] of checks) {
      // L is linear in each argument, so central differences are exact up to float64 rounding.
      expect(Math.abs(analytic - fd), `${name}: analytic ${analytic} vs fd ${fd}`).toBeLessThanOrEqual(
        1e-7 * (1 + Math.abs(fd)),
      );
    }
  });
});

describe('strategy selection', () => {
  it('follows the adapter, then the override, then the per-call option', () => {
    const env = process.env.CG_CONV_STRATEGY;
    delete process.env.CG_CONV_STRATEGY;
    setConvStrategy('auto');
    const auto = convStrategy(device);
    if (env !== undefined) process.env.CG_CONV_STRATEGY = env;
    expect(auto).toBe(device.adapter.isSoftware ? 'register' : 'workgroup-tiled');
    setConvStrategy('workgroup-tiled');
    expect(convStrategy(device)).toBe('workgroup-tiled');
    expect(convStrategy(device, 'register')).toBe('register');
    setConvStrategy('auto');
    expect(() => setConvStrategy('fast' as ConvStrategy)).toThrow(/unknown conv strategy "fast"/);
  });

  it('reads CG_CONV_STRATEGY when nothing else decides', () => {
    const saved = process.env.CG_CONV_STRATEGY;
    try {
      process.env.CG_CONV_STRATEGY = 'workgroup-tiled';
      expect(convStrategy(device)).toBe('workgroup-tiled');
      process.env.CG_CONV_STRATEGY = 'register';
      expect(convStrategy(device)).toBe('register');
      process.env.CG_CONV_STRATEGY = 'bogus';
      expect(() => convStrategy(device)).toThrow(/CG_CONV_STRATEGY: unknown conv strategy "bogus"/);
    } finally {
      if (saved === undefined) delete process.env.CG_CONV_STRATEGY;
      else process.env.CG_CONV_STRATEGY = saved;
    }
  });

  it('picks the compact register form on SwiftShader, named elsewhere, unless told (CG_CONV_REGISTER)', () => {
    const saved = process.env.CG_CONV_REGISTER;
    const on = (architecture: string) =>
      ({ adapter: { ...device.adapter, vendor: 'google', architecture, description: '' } }) as unknown as Device;
    try {
      delete process.env.CG_CONV_REGISTER;
      convTuning.registerForm = null;
      expect(registerForm(on('swiftshader'))).toBe('compact');
      expect(registerForm(on('llvmpipe'))).toBe('named');
      process.env.CG_CONV_REGISTER = 'named';
      expect(registerForm(on('swiftshader'))).toBe('named');
      convTuning.registerForm = 'compact';
      expect(registerForm(on('llvmpipe'))).toBe('compact');
      convTuning.registerForm = null;
      process.env.CG_CONV_REGISTER = 'wide';
      expect(() => registerForm(device)).toThrow(/CG_CONV_REGISTER: unknown register form "wide"/);
    } finally {
      convTuning.registerForm = null;
      if (saved === undefined) delete process.env.CG_CONV_REGISTER;
      else process.env.CG_CONV_REGISTER = saved;
    }
  });
});

describe('shape errors', () => {
  const expectShapeError = (fn: () => unknown, re: RegExp) => {
    let err: unknown;
    try {
      tidy(() => {
        fn();
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as Error).message).toMatch(re);
  };
  const t = (shape: Shape) => Tensor.zeros(device, shape);

  it('conv2d: channel mismatch names both shapes', () => {
    expectShapeError(
      () => conv2d(t([1, 3, 8, 8]), t([4, 2, 3, 3]), null),
      /^conv2d: input channels differ \(expected .*3, got 2; x \[1,3,8,8\], w \[4,2,3,3\]\)$/,
    );
  });
  it('conv2d: wrong rank, bias, kernel larger than the padded input', () => {
    expectShapeError(
      () => conv2d(t([3, 8, 8]), t([4, 3, 3, 3]), null),
      /conv2d: x must be \[N, Cin, H, W\].*got \[3,8,8\]/,
    );
    expectShapeError(() => conv2d(t([1, 3, 8, 8]), t([4, 3, 3]), null), /conv2d: w must be \[Cout, Cin, kH, kW\]/);
    expectShapeError(
      () => conv2d(t([1, 3, 8, 8]), t([4, 3, 3, 3]), t([5])),
      /conv2d: bias must be \[C\] \(expected \[4\], got \[5\]/,
    );
    expectShapeError(
      () => conv2d(t([1, 3, 2, 8]), t([4, 3, 3, 3]), null),
      /conv2d: the kernel does not fit the padded input/,
    );
  });
  it('conv2d: bad stride and padding', () => {
    expectShapeError(
      () => conv2d(t([1, 3, 8, 8]), t([4, 3, 3, 3]), null, { stride: 0 }),
      /stride must be a positive integer/,
    );
    expectShapeError(
      () => conv2d(t([1, 3, 8, 8]), t([4, 3, 3, 3]), null, { stride: 1.5 }),
      /stride must be a positive integer/,
    );
    expectShapeError(
      () => conv2d(t([1, 3, 8, 8]), t([4, 3, 3, 3]), null, { padding: -1 }),
      /padding must be a non-negative integer/,
    );
    expectShapeError(
      () => conv2d(t([1, 3, 8, 8]), t([4, 3, 3, 3]), null, { padding: [1, 2, 3] as unknown as [number, number] }),
      /padding must be a number or \[pH, pW\]/,
    );
  });
  it('conv2d backward: dy of the wrong shape', () => {
    expectShapeError(
      () => conv2dBackwardInput(t([1, 4, 7, 8]), t([4, 3, 3, 3]), [1, 3, 8, 8], { padding: 1 }),
      /^conv2dBackwardInput: dy has the wrong shape \(expected \[1,4,8,8\], got \[1,4,7,8\]; x \[1,3,8,8\], w \[4,3,3,3\], dy \[1,4,7,8\]\)$/,
    );
    expectShapeError(
      () => conv2dBackwardWeight(t([1, 4, 8, 8]), t([1, 3, 8, 8]), [4, 3, 3, 3]),
      /conv2dBackwardWeight: dy has the wrong shape \(expected \[1,4,6,6\]/,
    );
    expectShapeError(() => conv2dBackwardBias(t([4, 8])), /conv2dBackwardBias: dy must be \[N, C, H, W\]/);
  });
  it('convTranspose2d: output padding, channels, empty output', () => {
    const x = t([1, 4, 5, 5]);
    const w = t([4, 3, 3, 3]);
    expectShapeError(
      () => convTranspose2d(x, w, null, { stride: 2, padding: 1, outputPadding: 2 }),
      /^convTranspose2d: outputPadding must be smaller than the stride \(expected < \[2,2\], got \[2,2\]; x \[1,4,5,5\], w \[4,3,3,3\]\)$/,
    );
    expectShapeError(
      () => convTranspose2d(x, w, null, { outputPadding: 1 }),
      /outputPadding must be smaller than the stride/,
    );
    expectShapeError(() => convTranspose2d(x, t([3, 4, 3, 3]), null), /convTranspose2d: input channels differ/);
    expectShapeError(
      () => convTranspose2d(t([1, 4, 1, 1]), t([4, 3, 1, 1]), null, { padding: 1 }),
      /output would be empty/,
    );
    expectShapeError(
      () => convTranspose2d(x, w, t([4])),
      /convTranspose2d: bias must be \[Cout\] \(expected \[3\], got \[4\]/,
    );
    expectShapeError(
      () => convTranspose2dBackwardInput(t([1, 3, 10, 10]), w, [1, 4, 5, 5], { stride: 2, padding: 1 }),
      /convTranspose2dBackwardInput: dy has the wrong shape \(expected \[1,3,9,9\], got \[1,3,10,10\]/,
    );
    expectShapeError(
      () =>
        convTranspose2dBackwardWeight(t([1, 3, 9, 9]), x, [4, 3, 3, 3], { stride: 2, padding: 1, outputPadding: 1 }),
      /convTranspose2dBackwardWeight: dy has the wrong shape \(expected \[1,3,10,10\]/,
    );
  });
});

describe('larger shapes (multi-workgroup paths, split reductions)', () => {
  // Enough pixels and channels to exercise several workgroups on both axes and split-K weight gradients.
  const c: Case = { name: 'big', N: 2, Cin: 12, Cout: 20, H: 24, W: 24, k: 3, padding: 1 };
  const d = dataOf(c, 99);
  const cases = VARIANTS.flatMap((v) => [
    { v, maxFlops: dispatchBudget.maxFlops },
    // A tiny budget cuts every pass into many dispatches (the path a 2-s watchdog needs on full-size layers).
    { v, maxFlops: 2e5 },
  ]);
  for (const { v, maxFlops } of cases) {
    const { strategy } = v;
    it(`3x3 12→20 at 24×24, batch 2 [${variantName(v)}${maxFlops < 1e6 ? ', split into many dispatches' : ''}]`, async (t) => {
      const device = v.subgroups ? sgDevice : testDeviceNow();
      // The shared test device has `subgroups` too when the adapter offers it: keep the plain variant plain.
      convTuning.subgroups = v.subgroups;
      convTuning.registerForm = v.form;
      if (!device) return t.skip();
      const saved = dispatchBudget.maxFlops;
      dispatchBudget.maxFlops = maxFlops;
      const want = forwardRef(c, d.x, d.w, d.b);
      const grads = backwardRef(c, d.dy, d.x, d.w);
      const opts = optsOf(c, strategy);
      const got = tidy(() => {
        const x = Tensor.fromArray(device, d.x, xShapeOf(c));
        const w = Tensor.fromArray(device, d.w, wShapeOf(c));
        const b = Tensor.fromArray(device, d.b as Float32Array, [c.Cout]);
        const dy = Tensor.fromArray(device, d.dy, d.yShape);
        return {
          y: conv2d(x, w, b, opts),
          dx: conv2dBackwardInput(dy, w, xShapeOf(c), opts),
          dw: conv2dBackwardWeight(dy, x, wShapeOf(c), opts),
        };
      });
      dispatchBudget.maxFlops = saved;
      const K = sumLengths(c);
      expectClose(await got.y.toArray(), want.data, { ...tol(K.fwd), label: 'forward' });
      expectClose(await got.dx.toArray(), grads.dx, { ...tol(K.dx), label: 'dx' });
      expectClose(await got.dw.toArray(), grads.dw, { ...tol(K.dw), label: 'dw' });
      for (const t of Object.values(got)) t.dispose();
    });
  }

  it('leaves no tensors behind', () => {
    const before = device.memory().liveTensors;
    const x = Tensor.fromArray(device, d.x, xShapeOf(c));
    const dy = Tensor.fromArray(device, d.dy, d.yShape);
    const dw = conv2dBackwardWeight(dy, x, wShapeOf(c), { padding: 1 });
    for (const t of [x, dy, dw]) t.dispose();
    expect(device.memory().liveTensors).toBe(before);
  });
});

/**
 * Pad modes folded into the input index math and fused epilogues: every row runs, for both
 * strategies, the forward (with its epilogue) and both gradients (w.r.t. the unpadded x)
 * against the float64 reference, which is itself checked against an explicit pad2dRef
 * followed by an unpadded conv (and, for dx, the pad's own backward reference).
 */
interface FoldCase {
  name: string;
  N: number;
  Cin: number;
  Cout: number;
  H: number;
  W: number;
  k: number | [number, number];
  stride?: number | [number, number];
  padding: number | [number, number];
  padMode: 'zeros' | 'reflect' | 'replicate';
  epilogue: 'none' | 'relu' | 'tanh';
  bias?: boolean;
}

const FOLD_CASES: FoldCase[] = [
  {
    name: 'reflect 7x7 p3 3→5 + tanh (head)',
    N: 1,
    Cin: 3,
    Cout: 5,
    H: 9,
    W: 11,
    k: 7,
    padding: 3,
    padMode: 'reflect',
    epilogue: 'tanh',
  },
  {
    name: 'reflect 3x3 p1 5→6 + relu, batch 2',
    N: 2,
    Cin: 5,
    Cout: 6,
    H: 7,
    W: 9,
    k: 3,
    padding: 1,
    padMode: 'reflect',
    epilogue: 'relu',
  },
  {
    name: 'reflect padding = side − 1 (4×3, p [3,2])',
    N: 1,
    Cin: 3,
    Cout: 7,
    H: 4,
    W: 3,
    k: 3,
    padding: [3, 2],
    padMode: 'reflect',
    epilogue: 'none',
  },
  {
    name: 'reflect 3x3 s2 p1 odd input + tanh, batch 2',
    N: 2,
    Cin: 6,
    Cout: 7,
    H: 9,
    W: 8,
    k: 3,
    stride: 2,
    padding: 1,
    padMode: 'reflect',
    epilogue: 'tanh',
  },
  {
    name: 'reflect 7x7 p3 to 3 channels + tanh, no bias',
    N: 1,
    Cin: 9,
    Cout: 3,
    H: 5,
    W: 13,
    k: 7,
    padding: 3,
    padMode: 'reflect',
    epilogue: 'tanh',
    bias: false,
  },
  {
    name: 'reflect 17→19 at 12×20 (several workgroups), batch 2',
    N: 2,
    Cin: 17,
    Cout: 19,
    H: 12,
    W: 20,
    k: 3,
    padding: 1,
    padMode: 'reflect',
    epilogue: 'relu',
  },
  {
    name: 'replicate k[3,5] p[2,4] (pad ≥ side) + relu, batch 2',
    N: 2,
    Cin: 5,
    Cout: 9,
    H: 6,
    W: 3,
    k: [3, 5],
    padding: [2, 4],
    padMode: 'replicate',
    epilogue: 'relu',
  },
  {
    // Four taps or fewer run every kernel row in one step (conv2d.ts, ROWS_AT_ONCE_MAX_TAPS), folded pads too.
    name: 'reflect 2x2 p1, four taps in one step',
    N: 1,
    Cin: 5,
    Cout: 18,
    H: 6,
    W: 11,
    k: 2,
    padding: 1,
    padMode: 'reflect',
    epilogue: 'relu',
  },
  {
    name: 'replicate 1x3 p[0,1], batch 2',
    N: 2,
    Cin: 3,
    Cout: 4,
    H: 5,
    W: 7,
    k: [1, 3],
    padding: [0, 1],
    padMode: 'replicate',
    epilogue: 'none',
  },
  {
    name: 'replicate 3x3 s2 p1',
    N: 1,
    Cin: 4,
    Cout: 6,
    H: 7,
    W: 10,
    k: 3,
    stride: 2,
    padding: 1,
    padMode: 'replicate',
    epilogue: 'none',
  },
  {
    name: 'zeros 3x3 p1 + tanh',
    N: 1,
    Cin: 5,
    Cout: 3,
    H: 5,
    W: 6,
    k: 3,
    padding: 1,
    padMode: 'zeros',
    epilogue: 'tanh',
  },
  {
    name: 'zeros 4x4 s2 p1 + relu, batch 2',
    N: 2,
    Cin: 3,
    Cout: 10,
    H: 9,
    W: 11,
    k: 4,
    stride: 2,
    padding: 1,
    padMode: 'zeros',
    epilogue: 'relu',
  },
];

describe.each(FOLD_CASES)('folded $name', (c) => {
  const seed = FOLD_CASES.indexOf(c) * 13 + 301;
  const [kH, kW] = typeof c.k === 'number' ? [c.k, c.k] : c.k;
  const [pH, pW] = typeof c.padding === 'number' ? [c.padding, c.padding] : c.padding;
  const xShape = [c.N, c.Cin, c.H, c.W];
  const wShape = [c.Cout, c.Cin, kH, kW];
  const opts = { stride: c.stride, padding: c.padding, padMode: c.padMode, epilogue: c.epilogue };
  const yShape = conv2dOutputShape(xShape, wShape, opts);
  const x = randomArray(sizeOf(xShape), seed);
  const w = randomArray(sizeOf(wShape), seed + 1);
  const b = c.bias === false ? null : randomArray(c.Cout, seed + 2);
  const dy = randomArray(sizeOf(yShape), seed + 3);
  const taps = c.Cin * kH * kW;
  const [, , Ho, Wo] = yShape;

  it('reference = explicit pad2dRef then an unpadded conv (and the pad backward for dx)', () => {
    const pads: [number, number, number, number] = [pW, pW, pH, pH];
    const mode = c.padMode === 'zeros' ? 'zero' : c.padMode;
    const xp = pad2dRef(x, xShape, pads, mode);
    const lin = conv2dRef(xp.data, xp.shape, w, wShape, b, { stride: c.stride });
    const act = { none: (v: number) => v, relu: (v: number) => Math.max(v, 0), tanh: Math.tanh }[c.epilogue];
    const want = Float64Array.from(lin.data, act);
    const got = conv2dRef(x, xShape, w, wShape, b, opts);
    expect(got.shape).toEqual(lin.shape);
    expectClose(got.data, want, { rtol: 1e-12, atol: 1e-12, label: 'forward ref' });
    const viaPad = conv2dBackwardRef(dy, xp.data, xp.shape, w, wShape, { stride: c.stride });
    const folded = conv2dBackwardRef(dy, x, xShape, w, wShape, opts);
    expectClose(folded.dx, pad2dBackwardRef(viaPad.dx, xShape, pads, mode).data, {
      rtol: 1e-12,
      atol: 1e-12,
      label: 'dx ref',
    });
    expectClose(folded.dw, viaPad.dw, { rtol: 1e-12, atol: 1e-12, label: 'dw ref' });
  });

  for (const v of VARIANTS) {
    const { strategy } = v;
    it(`forward with epilogue, dx of the unpadded input, dw vs float64 [${variantName(v)}]`, async (t) => {
      const device = v.subgroups ? sgDevice : testDeviceNow();
      // The shared test device has `subgroups` too when the adapter offers it: keep the plain variant plain.
      convTuning.subgroups = v.subgroups;
      convTuning.registerForm = v.form;
      if (!device) return t.skip();
      const want = conv2dRef(x, xShape, w, wShape, b, opts);
      const grads = conv2dBackwardRef(dy, x, xShape, w, wShape, opts);
      const got = tidy(() => {
        const xt = Tensor.fromArray(device, x, xShape);
        const wt = Tensor.fromArray(device, w, wShape);
        const bt = b ? Tensor.fromArray(device, b, [c.Cout]) : null;
        const dyt = Tensor.fromArray(device, dy, yShape);
        return {
          y: conv2d(xt, wt, bt, { ...opts, strategy }),
          dx: conv2dBackwardInput(dyt, wt, xShape, { ...opts, strategy }),
          dw: conv2dBackwardWeight(dyt, xt, wShape, { ...opts, strategy }),
        };
      });
      expect(got.y.shape).toEqual(yShape);
      expect(got.dx.shape).toEqual(xShape);
      expectClose(await got.y.toArray(), want.data, { ...tol(taps), label: `${c.name} forward` });
      // A reflected pixel collects up to 3×3 copies' worth of terms.
      expectClose(await got.dx.toArray(), grads.dx, { ...tol(9 * c.Cout * kH * kW), label: `${c.name} dx` });
      expectClose(await got.dw.toArray(), grads.dw, { ...tol(c.N * Ho * Wo), label: `${c.name} dw` });
      for (const t of Object.values(got)) t.dispose();
    });
  }
});

describe('folded pad modes: shape errors', () => {
  const t = (shape: Shape) => Tensor.zeros(device, shape);
  const expectShapeError = (fn: () => unknown, re: RegExp) => {
    let err: unknown;
    try {
      tidy(() => {
        fn();
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as Error).message).toMatch(re);
  };

  it('reflect needs padding < H and < W, and names the shapes', () => {
    expectShapeError(
      () => conv2d(t([1, 3, 3, 8]), t([4, 3, 3, 3]), null, { padding: 3, padMode: 'reflect' }),
      /^conv2d: reflect padding must be smaller than the input \(expected pH < H and pW < W, got padding \[3,3\] for H 3, W 8; x \[1,3,3,8\], w \[4,3,3,3\]\)$/,
    );
    expectShapeError(
      () =>
        conv2dBackwardWeight(t([1, 4, 8, 4]), t([1, 3, 8, 2]), [4, 3, 3, 3], { padding: [1, 2], padMode: 'reflect' }),
      /conv2dBackwardWeight: reflect padding must be smaller than the input .*\[1,2\] for H 8, W 2/,
    );
    // Replicate has no such limit.
    expect(conv2dOutputShape([1, 3, 2, 2], [4, 3, 3, 3], { padding: 3, padMode: 'replicate' })).toEqual([1, 4, 6, 6]);
  });

  it('rejects an unknown padMode or epilogue', () => {
    expectShapeError(
      () => conv2d(t([1, 3, 8, 8]), t([4, 3, 3, 3]), null, { padding: 1, padMode: 'circular' as 'reflect' }),
      /conv2d: unknown padMode \(expected zeros \| reflect \| replicate, got "circular"/,
    );
    expectShapeError(
      () => conv2d(t([1, 3, 8, 8]), t([4, 3, 3, 3]), null, { epilogue: 'gelu' as 'relu' }),
      /conv2d: unknown epilogue \(expected none \| relu \| tanh, got "gelu"/,
    );
  });
});
