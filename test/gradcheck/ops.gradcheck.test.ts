import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { F, RULES, type Variable, variable } from '@cg/autograd';
import * as K from '@cg/kernels-wgsl';
import { type Device, sizeOf, Tensor } from '@cg/tensor-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../helpers/compare.js';
import { testDevice } from '../helpers/device.js';

/**
 * The gradient spec of every differentiable op, driven by ONE table (JAX's
 * lax_autodiff_test idea). For each row, with L = Σ op(inputs)·R (R random):
 *  1. forward: GPU output vs the float64 CPU reference;
 *  2. reference gradient (the kernels' float64 backward reference, where the
 *     row names one) vs central finite differences of the float64 forward,
 *     element by element;
 *  3. GPU autograd gradient of every differentiable input vs that reference
 *     gradient (or the finite-difference gradient where no backward
 *     reference exists), element by element;
 *  4. directional check: ⟨GPU gradient, v⟩ vs (L(x+εv) − L(x−εv)) / 2ε in
 *     float64, for a random direction v per input.
 * Plus coverage: every op in autograd's RULES has a row and every row's op
 * has a rule; RULES holds a generated rule for every elementwise record with
 * a `grad` (kernels' UNARY_OPS), so a new record needs exactly one row.
 *
 * Tolerances (f32 GPU vs float64): errors are measured relative to the
 * largest magnitude of the reference (expectClose). Elementwise and
 * reduction ops: 1e-4; ops with sums over many terms (conv, norms): 3e-4.
 * The float64 reference-vs-FD step uses 1e-6 (FD error with ε = 1e-6 is
 * ~1e-9 here). Directional: |⟨g,v⟩ − FD| ≤ rtol · Σ|g_i·v_i|.
 */

type Arr = Float64Array;

interface InputSpec {
  /** The name the op's rule uses for this input (x, w, a, …). */
  name: string;
  shape: number[];
  /** Whether the check differentiates this input (false: a constant). */
  diff: boolean;
  /** Domain of random values: [lo, hi). */
  range?: [number, number];
}

interface OpCase {
  /** Key in the autograd rule table. */
  op: string;
  /** Variant, e.g. the stride; unique per op. */
  label: string;
  inputs: InputSpec[];
  /** The GPU computation through autograd's functional API (several outputs for multi-output ops). */
  gpu: (...xs: Variable[]) => Variable | Variable[];
  /** Float64 reference forward: flat inputs → flat output (several outputs concatenated in order). */
  ref: (...xs: Arr[]) => Arr;
  /** Float64 reference backward (from the kernels package), per input in order; null where not provided. */
  refGrad?: (dy: Arr, ...xs: Arr[]) => (Arr | null)[];
  /** f32 tolerance relative to magnitude (default 1e-4). */
  rtol?: number;
}

// ---- float64 reference helpers ------------------------------------------------------

const scalar = (v: number) => Float64Array.of(v);

/** Broadcasting reference for binary ops whose gradient the FD provides. */
const bin = (op: K.BinaryOp, sa: number[], sb: number[]) => (a: Arr, b: Arr) => K.binaryRef(op, a, sa, b, sb).data;

const x4: number[] = [2, 3, 7, 5];

// ---- the table -------------------------------------------------------------------------

/** The table. A function, so the helpers below it are initialised when it runs. */
function allCases(): OpCase[] {
  return [
    // elementwise, with broadcasting
    {
      op: 'add',
      label: 'broadcast [2,3,4,5]+[1,3,1,1]',
      inputs: [
        { name: 'a', shape: [2, 3, 4, 5], diff: true },
        { name: 'b', shape: [1, 3, 1, 1], diff: true },
      ],
      gpu: (a, b) => F.add(a, b),
      ref: bin('add', [2, 3, 4, 5], [1, 3, 1, 1]),
    },
    {
      op: 'sub',
      label: 'broadcast [3,1,7]-[1,5,1]',
      inputs: [
        { name: 'a', shape: [3, 1, 7], diff: true },
        { name: 'b', shape: [1, 5, 1], diff: true },
      ],
      gpu: (a, b) => F.sub(a, b),
      ref: bin('sub', [3, 1, 7], [1, 5, 1]),
    },
    {
      op: 'mul',
      label: 'broadcast [2,3,4]*[]',
      inputs: [
        { name: 'a', shape: [2, 3, 4], diff: true },
        { name: 'b', shape: [], diff: true },
      ],
      gpu: (a, b) => F.mul(a, b),
      ref: bin('mul', [2, 3, 4], []),
    },
    {
      op: 'mul',
      label: 'same shape',
      inputs: [
        { name: 'a', shape: [4, 9], diff: true },
        { name: 'b', shape: [4, 9], diff: true },
      ],
      gpu: (a, b) => F.mul(a, b),
      ref: bin('mul', [4, 9], [4, 9]),
    },
    {
      op: 'mul',
      label: 'b constant',
      inputs: [
        { name: 'a', shape: [3, 5], diff: true },
        { name: 'b', shape: [3, 5], diff: false },
      ],
      gpu: (a, b) => F.mul(a, b),
      ref: bin('mul', [3, 5], [3, 5]),
    },
    {
      op: 'div',
      label: 'broadcast [2,3,5]/[3,1]',
      inputs: [
        { name: 'a', shape: [2, 3, 5], diff: true },
        { name: 'b', shape: [3, 1], diff: true, range: [0.5, 2] },
      ],
      gpu: (a, b) => F.div(a, b),
      ref: bin('div', [2, 3, 5], [3, 1]),
    },
    // elementwise one-input ops: F[op], the reference and its gradient all come from the op's record
    unaryCase('scale', [-2, 2], -1.75),
    unaryCase('addScalar', [-2, 2], 0.625),
    unaryCase('neg'),
    unaryCase('square'),
    unaryCase('abs'),
    unaryCase('sqrt', [0.25, 4]),
    unaryCase('exp', [-2, 2]),
    unaryCase('log', [0.25, 4]),
    unaryCase('relu'),
    unaryCase('leakyRelu', [-2, 2], 0.2),
    unaryCase('tanh', [-3, 3]),
    unaryCase('sigmoid', [-4, 4]),
    unaryCase('gelu', [-4, 4]),
    unaryCase('silu', [-6, 6]),
    {
      // The mask is a pure function of the seed, so the reference is x·mask with the kernels' mask reference.
      op: 'dropout',
      label: 'p 0.3 seed 1234',
      inputs: [{ name: 'x', shape: [2, 3, 5, 4], diff: true }],
      gpu: (x) => F.dropout(x, 0.3, true, 1234),
      ref: (x) => {
        const mask = K.dropoutMaskRef(x.length, 0.3, 1234);
        return Float64Array.from(x, (v, i) => v * mask[i]);
      },
    },

    // reductions and views
    {
      op: 'sum',
      label: 'all',
      inputs: [{ name: 'x', shape: [3, 4, 5], diff: true }],
      gpu: (x) => F.sum(x),
      ref: (x) => K.sumRef(x, [3, 4, 5]).data,
    },
    {
      op: 'sum',
      label: 'axes [1,3]',
      inputs: [{ name: 'x', shape: [2, 3, 4, 5], diff: true }],
      gpu: (x) => F.sum(x, [1, 3]),
      ref: (x) => K.sumRef(x, [2, 3, 4, 5], [1, 3]).data,
    },
    {
      op: 'sum',
      label: 'axes [0] keepDims',
      inputs: [{ name: 'x', shape: [4, 6], diff: true }],
      gpu: (x) => F.sum(x, [0], true),
      ref: (x) => K.sumRef(x, [4, 6], [0], true).data,
    },
    {
      op: 'mean',
      label: 'all',
      inputs: [{ name: 'x', shape: [3, 4, 5], diff: true }],
      gpu: (x) => F.mean(x),
      ref: (x) => K.sumRef(x, [3, 4, 5]).data.map((v) => v / 60),
    },
    {
      op: 'mean',
      label: 'axes [2,3] keepDims',
      inputs: [{ name: 'x', shape: [2, 3, 4, 5], diff: true }],
      gpu: (x) => F.mean(x, [2, 3], true),
      ref: (x) => K.sumRef(x, [2, 3, 4, 5], [2, 3], true).data.map((v) => v / 20),
    },
    {
      op: 'reshape',
      label: '[2,3,4] → [6,-1]',
      inputs: [{ name: 'x', shape: [2, 3, 4], diff: true }],
      gpu: (x) => F.reshape(x, [6, -1]),
      ref: (x) => Float64Array.from(x),
    },

    // losses (mean over all elements)
    ...lossCases('mseLoss'),
    ...lossCases('l1Loss'),
    ...lossCases('bceWithLogitsLoss'),

    // convolutions: PyTorch layouts, the official CycleGAN geometries on odd sizes
    convCase('k3 s1 p1', [3, 4, 3], { stride: 1, padding: 1 }, true),
    convCase('k4 s2 p1 no bias', [3, 5, 4], { stride: 2, padding: 1 }, false),
    convCase('k7 p0', [3, 2, 7], { stride: 1, padding: 0 }, true, [2, 3, 9, 8]),
    convCase('k3 s2 p[1,0]', [2, 3, 3], { stride: 2, padding: [1, 0] }, true),
    // A network's first layer: the image is a constant, only w and b need gradients.
    convCase('k7 p0, x constant', [3, 2, 7], { stride: 1, padding: 0 }, true, [2, 3, 9, 8], false),
    // Folded pads and fused epilogues (nn.Sequential's [pad, conv] and [conv, tanh]): same op, same rule.
    convCase('k3 p1 reflect', [3, 4, 3], { stride: 1, padding: 1, padMode: 'reflect' }, true),
    convCase(
      'k7 p3 reflect + tanh',
      [3, 2, 7],
      { stride: 1, padding: 3, padMode: 'reflect', epilogue: 'tanh' },
      true,
      [2, 3, 9, 8],
    ),
    convCase('k3 s2 p1 replicate no bias', [2, 3, 3], { stride: 2, padding: 1, padMode: 'replicate' }, false),
    convCase('k3 p1 + relu', [3, 4, 3], { stride: 1, padding: 1, epilogue: 'relu' }, true),
    convCase(
      'k3 p[1,2] reflect + tanh, x constant',
      [3, 2, 3],
      { stride: 1, padding: [1, 2], padMode: 'reflect', epilogue: 'tanh' },
      true,
      undefined,
      false,
    ),
    convTCase('k3 s2 p1 op1', [4, 3, 3], { stride: 2, padding: 1, outputPadding: 1 }, true),
    convTCase('k4 s2 p1 no bias', [4, 3, 4], { stride: 2, padding: 1 }, false),

    // normalisation
    normCase('instanceNorm2d', 'affine false', false),
    normCase('instanceNorm2d', 'affine true', true),
    normCase('batchNorm2d', 'train, affine true', true),
    normActCase('relu', 0, false),
    normActCase('leakyRelu', 0.2, true),
    normActCase('leakyRelu', 0.2, false),
    normAddCase(false),
    normAddCase(true),

    normCase('batchNorm2d', 'train, affine false', false),
    batchNormEvalCase(true),
    batchNormEvalCase(false),

    // padding and resampling
    padCase('reflectionPad2d', '[1,2,3,1]', [1, 2, 3, 1]),
    padCase('reflectionPad2d', '3', [3, 3, 3, 3]),
    padCase('replicationPad2d', '[2,0,1,3]', [2, 0, 1, 3]),
    padCase('zeroPad2d', '[1,2,0,3]', [1, 2, 0, 3]),
    upsampleCase('nearest', 2),
    upsampleCase('nearest', 3),
    upsampleCase('bilinear', 2),
    upsampleCase('bilinear', 3),

    // joining and splitting (U-Net skip connections)
    concatCase(
      '3 inputs, axis 1',
      [
        [2, 1, 3, 4],
        [2, 3, 3, 4],
        [2, 2, 3, 4],
      ],
      1,
      [true, true, true],
    ),
    concatCase(
      'axis -1, one constant',
      [
        [2, 3, 5],
        [2, 3, 2],
      ],
      -1,
      [true, false],
    ),
    splitCase('[1,3,2] axis 1, all used', [2, 6, 3, 4], [1, 3, 2], 1, [0, 1, 2]),
    splitCase('[2,1,2] axis 2, middle unused', [2, 3, 5, 4], [2, 1, 2], 2, [0, 2]),
  ];
}

/** One row for an elementwise op; `p` is its parameter (the record's default when absent). */
function unaryCase(op: K.UnaryGradOp, range: [number, number] = [-2, 2], p = K.defaultParam(op)): OpCase {
  const fn = F[op] as (x: Variable, p?: number) => Variable;
  const saved = K.UNARY_OPS[op].grad.saved;
  return {
    op,
    label: '[2,3,5,7]',
    inputs: [{ name: 'x', shape: [2, 3, 5, 7], diff: true, range }],
    gpu: (x) => fn(x, p),
    ref: (x) => K.unaryRef(op, x, p),
    refGrad: (dy, x) => [
      K.unaryBackwardRef(op, dy, saved === 'none' ? null : saved === 'x' ? x : K.unaryRef(op, x, p), p),
    ],
  };
}

const LOSS_REFS = {
  mseLoss: [K.mseLossRef, K.mseLossBackwardRef],
  l1Loss: [K.l1LossRef, K.l1LossBackwardRef],
  bceWithLogitsLoss: [K.bceWithLogitsLossRef, K.bceWithLogitsLossBackwardRef],
} as const;

function lossCases(op: 'mseLoss' | 'l1Loss' | 'bceWithLogitsLoss'): OpCase[] {
  const shape = [2, 1, 5, 4];
  const tRange: [number, number] = op === 'bceWithLogitsLoss' ? [0, 1] : [-2, 2];
  const [lossRef, lossBackwardRef] = LOSS_REFS[op];
  const ref = (x: Arr, t: Arr | number) => scalar(lossRef(x, t));
  const fn = F[op];
  const refGrad =
    (t: number | null) =>
    (dy: Arr, x: Arr, tt?: Arr): (Arr | null)[] => [lossBackwardRef(dy[0], x, t ?? tt!), null];
  return [
    {
      op,
      label: 'target tensor',
      inputs: [
        { name: 'x', shape, diff: true },
        { name: 'target', shape, diff: true, range: tRange },
      ],
      gpu: (x, t) => fn(x, t),
      ref: (x, t) => ref(x, t),
      refGrad: refGrad(null),
    },
    {
      op,
      label: 'constant target 1',
      inputs: [{ name: 'x', shape, diff: true }],
      gpu: (x) => fn(x, 1),
      ref: (x) => ref(x, 1),
      refGrad: refGrad(1),
    },
    {
      op,
      label: 'constant target 0',
      inputs: [{ name: 'x', shape, diff: true }],
      gpu: (x) => fn(x, 0),
      ref: (x) => ref(x, 0),
      refGrad: refGrad(0),
    },
  ];
}

function convCase(
  label: string,
  [cin, cout, k]: number[],
  opts: {
    stride: number;
    padding: number | [number, number];
    padMode?: K.Conv2dOptions['padMode'];
    epilogue?: K.Conv2dOptions['epilogue'];
  },
  bias: boolean,
  xShape = [2, cin, x4[2], x4[3]],
  xDiff = true,
): OpCase {
  const epilogue = opts.epilogue ?? 'none';
  // The epilogue's derivative at the conv's (pre-activation) output z, from the math.
  const act = (z: number) => (epilogue === 'tanh' ? 1 - Math.tanh(z) ** 2 : epilogue === 'relu' ? (z > 0 ? 1 : 0) : 1);
  const wShape = [cout, cin, k, k];
  const inputs: InputSpec[] = [
    { name: 'x', shape: xShape, diff: xDiff },
    { name: 'w', shape: wShape, diff: true, range: [-0.5, 0.5] },
  ];
  if (bias) inputs.push({ name: 'b', shape: [cout], diff: true });
  return {
    op: 'conv2d',
    label,
    inputs,
    gpu: (x, w, b) => F.conv2d(x, w, b ?? null, opts),
    ref: (x, w, b) => K.conv2dRef(x, xShape, w, wShape, b ?? null, opts).data,
    refGrad: (dy, x, w, b) => {
      const z = K.conv2dRef(x, xShape, w, wShape, b ?? null, { ...opts, epilogue: 'none' }).data;
      const dz = Float64Array.from(dy, (d, i) => d * act(z[i]));
      const g = K.conv2dBackwardRef(dz, x, xShape, w, wShape, { ...opts, epilogue: 'none' });
      return bias ? [g.dx, g.dw, g.db] : [g.dx, g.dw];
    },
    rtol: 3e-4,
  };
}

function convTCase(
  label: string,
  [cin, cout, k]: number[],
  opts: { stride: number; padding: number; outputPadding?: number },
  bias: boolean,
): OpCase {
  const xShape = [2, cin, 5, 4];
  const wShape = [cin, cout, k, k];
  const inputs: InputSpec[] = [
    { name: 'x', shape: xShape, diff: true },
    { name: 'w', shape: wShape, diff: true, range: [-0.5, 0.5] },
  ];
  if (bias) inputs.push({ name: 'b', shape: [cout], diff: true });
  return {
    op: 'convTranspose2d',
    label,
    inputs,
    gpu: (x, w, b) => F.convTranspose2d(x, w, b ?? null, opts),
    ref: (x, w, b) => K.convTranspose2dRef(x, xShape, w, wShape, b ?? null, opts).data,
    refGrad: (dy, x, w) => {
      const g = K.convTranspose2dBackwardRef(dy, x, xShape, w, wShape, opts);
      return bias ? [g.dx, g.dw, g.db] : [g.dx, g.dw];
    },
    rtol: 3e-4,
  };
}

function normCase(op: 'instanceNorm2d' | 'batchNorm2d', label: string, affine: boolean): OpCase {
  const shape = [2, 3, 5, 7];
  const inputs: InputSpec[] = [{ name: 'x', shape, diff: true, range: [-1, 3] }];
  if (affine) {
    inputs.push({ name: 'weight', shape: [3], diff: true, range: [0.5, 1.5] });
    inputs.push({ name: 'bias', shape: [3], diff: true });
  }
  const fwd = (x: Arr, w?: Arr, b?: Arr) =>
    op === 'instanceNorm2d'
      ? K.instanceNorm2dRef(x, shape, w ?? null, b ?? null)
      : K.batchNorm2dRef(x, shape, w ?? null, b ?? null, { training: true });
  return {
    op,
    label,
    inputs,
    gpu: (x, w, b) =>
      op === 'instanceNorm2d'
        ? F.instanceNorm2d(x, w ?? null, b ?? null)
        : F.batchNorm2d(x, null, null, w ?? null, b ?? null, { training: true }),
    ref: (x, w, b) => fwd(x, w, b).data,
    refGrad: (dy, x, w) => {
      const f = fwd(x, w);
      const g = (op === 'instanceNorm2d' ? K.instanceNorm2dBackwardRef : K.batchNorm2dBackwardRef)(
        dy,
        x,
        shape,
        f.mean,
        f.invStd,
        w ?? null,
      );
      return affine ? [g.dx, g.dweight, g.dbias] : [g.dx];
    },
    rtol: 3e-4,
  };
}

/** The fused [InstanceNorm2d, ReLU/LeakyReLU] of nn.Sequential; odd sizes, C 3, batch 2. */
function normActCase(act: K.NormActivation, slope: number, affine: boolean): OpCase {
  const shape = [2, 3, 5, 7];
  const inputs: InputSpec[] = [{ name: 'x', shape, diff: true, range: [-1, 3] }];
  if (affine) {
    inputs.push({ name: 'weight', shape: [3], diff: true, range: [0.5, 1.5] });
    inputs.push({ name: 'bias', shape: [3], diff: true });
  }
  return {
    op: 'instanceNorm2dAct',
    label: `${act} ${slope}, affine ${affine}`,
    inputs,
    gpu: (x, w, b) => F.instanceNorm2dAct(x, w ?? null, b ?? null, act, slope),
    ref: (x, w, b) => K.instanceNorm2dActRef(x, shape, w ?? null, b ?? null, act, slope).data,
    refGrad: (dy, x, w, b) => {
      const g = K.instanceNorm2dActBackwardRef(dy, x, shape, w ?? null, b ?? null, act, slope);
      return affine ? [g.dx, g.dweight, g.dbias] : [g.dx];
    },
    rtol: 3e-4,
  };
}

/** The ResnetBlock's fused end, skip + instanceNorm2d(x). */
function normAddCase(affine: boolean): OpCase {
  const shape = [2, 3, 5, 7];
  const inputs: InputSpec[] = [
    { name: 'x', shape, diff: true, range: [-1, 3] },
    { name: 'skip', shape, diff: true },
  ];
  if (affine) {
    inputs.push({ name: 'weight', shape: [3], diff: true, range: [0.5, 1.5] });
    inputs.push({ name: 'bias', shape: [3], diff: true });
  }
  return {
    op: 'instanceNorm2dAdd',
    label: `affine ${affine}`,
    inputs,
    gpu: (x, skip, w, b) => F.instanceNorm2dAdd(x, skip, w ?? null, b ?? null),
    ref: (x, skip, w, b) => K.instanceNorm2dAddRef(x, skip, shape, w ?? null, b ?? null).data,
    refGrad: (dy, x, _skip, w) => {
      const f = K.instanceNorm2dRef(x, shape, w ?? null, null);
      const g = K.instanceNorm2dBackwardRef(dy, x, shape, f.mean, f.invStd, w ?? null);
      return affine ? [g.dx, Float64Array.from(dy), g.dweight, g.dbias] : [g.dx, Float64Array.from(dy)];
    },
    rtol: 3e-4,
  };
}

function padCase(
  op: 'reflectionPad2d' | 'replicationPad2d' | 'zeroPad2d',
  label: string,
  pad: [number, number, number, number],
): OpCase {
  const shape = [2, 3, 9, 7];
  return {
    op,
    label,
    inputs: [{ name: 'x', shape, diff: true }],
    gpu: (x) => F[op](x, pad),
    ref: (x) => PAD_REFS[op][0](x, shape, pad).data,
    refGrad: (dy) => [PAD_REFS[op][1](dy, shape, pad).data],
  };
}

const PAD_REFS = {
  reflectionPad2d: [K.reflectionPad2dRef, K.reflectionPad2dBackwardRef],
  replicationPad2d: [K.replicationPad2dRef, K.replicationPad2dBackwardRef],
  zeroPad2d: [K.zeroPad2dRef, K.zeroPad2dBackwardRef],
} as const;

function upsampleCase(mode: K.UpsampleMode, scale: number): OpCase {
  const shape = [2, 3, 5, 4];
  return {
    op: 'upsample2d',
    label: `${mode} ×${scale}`,
    inputs: [{ name: 'x', shape, diff: true }],
    gpu: (x) => F.upsample2d(x, scale, mode),
    ref: (x) => K.upsample2dRef(x, shape, scale, mode).data,
    refGrad: (dy) => [K.upsample2dBackwardRef(dy, shape, scale, mode).data],
  };
}

function batchNormEvalCase(affine: boolean): OpCase {
  // Running statistics are constants of the op (buffers, not inputs).
  const shape = [2, 3, 5, 7];
  const mean = Float64Array.from(randomArray(3, 71, -0.5, 0.5));
  const variance = Float64Array.from(randomArray(3, 72, 0.5, 2));
  const inputs: InputSpec[] = [{ name: 'x', shape, diff: true }];
  if (affine) {
    inputs.push({ name: 'weight', shape: [3], diff: true, range: [0.5, 1.5] });
    inputs.push({ name: 'bias', shape: [3], diff: true });
  }
  return {
    op: 'batchNorm2dEval',
    label: affine ? 'affine true' : 'affine false',
    inputs,
    gpu: (x, w, b) => {
      const rm = Tensor.fromArray(device, mean, [3]);
      const rv = Tensor.fromArray(device, variance, [3]);
      const y = F.batchNorm2d(x, rm, rv, w ?? null, b ?? null, { training: false });
      rm.dispose();
      rv.dispose();
      return y;
    },
    ref: (x, w, b) =>
      K.batchNorm2dRef(x, shape, w ?? null, b ?? null, {
        training: false,
        running: { mean, var: variance, momentum: 0.1 },
      }).data,
  };
}

function concatCase(label: string, shapes: number[][], axis: number, diff: boolean[]): OpCase {
  return {
    op: 'concat',
    label,
    inputs: shapes.map((shape, i) => ({ name: String(i), shape, diff: diff[i] })),
    gpu: (...xs) => F.concat(xs, axis),
    ref: (...xs) =>
      K.concatRef(
        xs.map((data, i) => ({ data, shape: shapes[i] })),
        axis,
      ).data,
  };
}

function splitCase(label: string, shape: number[], sizes: number[], axis: number, use: number[]): OpCase {
  return {
    op: 'split',
    label,
    inputs: [{ name: 'x', shape, diff: true }],
    gpu: (x) => {
      const parts = F.split(x, sizes, axis);
      return use.map((i) => parts[i]);
    },
    ref: (x) => {
      const parts = K.splitRef(x, shape, sizes, axis);
      return flat(use.map((i) => parts[i].data));
    },
  };
}

function flat(parts: Arr[]): Arr {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const CASES = allCases();

// ---- the checks ------------------------------------------------------------------------

let device: Device;
const errors: Record<string, Record<string, number>> = {};

beforeAll(async () => {
  device = await testDevice();
});

afterAll(() => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const file = resolve(root, 'test-artifacts/gradcheck-errors.json');
  mkdirSync(dirname(file), { recursive: true });
  let previous: Record<string, unknown> = {};
  try {
    previous = JSON.parse(readFileSync(file, 'utf8'));
  } catch {}
  writeFileSync(file, `${JSON.stringify({ ...previous, ops: errors }, null, 1)}\n`);
});

/** max|got − want| / max|want|: the error relative to the reference's magnitude. */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    worst = Math.max(worst, Math.abs(got[i] - want[i]));
  }
  return scale === 0 ? worst : worst / scale;
}

function record(c: OpCase, what: string, err: number): void {
  const key = `${c.op} ${c.label}`;
  errors[key] ??= {};
  errors[key][what] = Math.max(errors[key][what] ?? 0, err);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** L(xs) = Σ ref(xs)·R in float64. */
function lossOf(c: OpCase, xs: Arr[], R: Arr): number {
  return dot(c.ref(...xs), R);
}

const FD_EPS = 1e-6;

/** Central differences of L along direction v of input k. */
function fdDirectional(c: OpCase, xs: Arr[], R: Arr, k: number, v: Arr): number {
  const plus = xs.map((x) => x);
  const minus = xs.map((x) => x);
  plus[k] = Float64Array.from(xs[k], (x, i) => x + FD_EPS * v[i]);
  minus[k] = Float64Array.from(xs[k], (x, i) => x - FD_EPS * v[i]);
  return (lossOf(c, plus, R) - lossOf(c, minus, R)) / (2 * FD_EPS);
}

/** Central differences of L w.r.t. every element of input k (inputs here are a few hundred elements). */
function fdGradient(c: OpCase, xs: Arr[], R: Arr, k: number): Arr {
  const g = new Float64Array(xs[k].length);
  const moved = xs.map((x) => x);
  const xk = Float64Array.from(xs[k]);
  moved[k] = xk;
  for (let i = 0; i < xk.length; i++) {
    const x0 = xk[i];
    xk[i] = x0 + FD_EPS;
    const lp = lossOf(c, moved, R);
    xk[i] = x0 - FD_EPS;
    const lm = lossOf(c, moved, R);
    xk[i] = x0;
    g[i] = (lp - lm) / (2 * FD_EPS);
  }
  return g;
}

describe('gradient checks: one row per op variant', () => {
  CASES.forEach((c, row) => {
    it(`${c.op} ${c.label}`, async () => {
      const rtol = c.rtol ?? 1e-4;
      const f32 = c.inputs.map((s, k) => randomArray(sizeOf(s.shape), 1000 * row + k + 1, ...(s.range ?? [-1, 1])));
      const xs = f32.map((a) => Float64Array.from(a));
      const vars = c.inputs.map((s, k) =>
        variable(Tensor.fromArray(device, f32[k], s.shape), { requiresGrad: s.diff }),
      );
      try {
        // 1. forward
        const out = c.gpu(...vars);
        const ys = Array.isArray(out) ? out : [out];
        const want = c.ref(...xs);
        const got = flat(await Promise.all(ys.map(async (y) => Float64Array.from(await y.toArray()))));
        record(c, 'forward', relErr(got, want));
        expectClose(got, want, { rtol, atol: 1e-6, label: `${c.op} ${c.label} forward` });

        // Backward of L = Σ y·R (summed over the outputs).
        const Rf = randomArray(got.length, 7919 * row + 17);
        const R = Float64Array.from(Rf);
        let offset = 0;
        let L: Variable | null = null;
        const Rvs: Variable[] = [];
        for (const y of ys) {
          const Rv = variable(Tensor.fromArray(device, Rf.subarray(offset, offset + y.size), y.shape));
          offset += y.size;
          Rvs.push(Rv);
          const term = F.sum(F.mul(y, Rv));
          L = L ? F.add(L, term) : term;
        }
        L!.backward();
        for (const Rv of Rvs) Rv.dispose();
        L!.dispose();

        const refGrads = c.refGrad?.(R, ...xs) ?? [];
        for (let k = 0; k < c.inputs.length; k++) {
          const spec = c.inputs[k];
          const v = vars[k];
          if (!spec.diff) {
            expect(v.grad, `${spec.name} is a constant`).toBeNull();
            continue;
          }
          expect(v.grad, `${c.op}: no gradient for ${spec.name}`).not.toBeNull();
          const g = await v.grad!.toArray();
          expect([...v.grad!.shape], `${spec.name} grad shape`).toEqual(spec.shape);

          // 2. the reference gradient (kernels' float64 backward, else FD) and its own check vs FD
          const fd = fdGradient(c, xs, R, k);
          const refG = refGrads[k];
          if (refG) {
            record(c, `refVsFd.${spec.name}`, relErr(refG, fd));
            expectClose(refG, fd, { rtol: 1e-6, atol: 1e-9, label: `${c.op} reference d${spec.name} vs FD` });
          }
          const wantG = refG ?? fd;

          // 3. GPU gradient vs reference, elementwise
          record(c, `grad.${spec.name}`, relErr(g, wantG));
          expectClose(g, wantG, { rtol, atol: 1e-6, label: `${c.op} ${c.label} d${spec.name}` });

          // 4. directional derivative vs central differences in float64
          const dir = Float64Array.from(randomArray(g.length, 104729 * row + k));
          const gv = dot(g, dir);
          const fdv = fdDirectional(c, xs, R, k, dir);
          let scale = 0;
          for (let i = 0; i < g.length; i++) scale += Math.abs(wantG[i] * dir[i]);
          const dirErr = Math.abs(gv - fdv) / Math.max(scale, 1e-12);
          record(c, `directional.${spec.name}`, dirErr);
          expect(
            dirErr,
            `${c.op} ${c.label}: <d${spec.name}, v> = ${gv}, finite differences ${fdv}`,
          ).toBeLessThanOrEqual(rtol);
        }
      } finally {
        for (const v of vars) v.dispose();
      }
    });
  });
});

describe('coverage', () => {
  const rules = Object.keys(RULES);
  const rows = new Set(CASES.map((c) => c.op));

  it('every op with a gradient rule has a row in the table', () => {
    expect(rules.filter((op) => !rows.has(op))).toEqual([]);
  });

  it('every row names an op with a gradient rule', () => {
    expect([...rows].filter((op) => !rules.includes(op))).toEqual([]);
  });

  it('every elementwise record with a gradient has its F function', () => {
    const fns = F as unknown as Record<string, unknown>;
    expect(K.UNARY_GRAD_OPS.filter((op) => typeof fns[op] !== 'function')).toEqual([]);
  });

  it('row labels are unique', () => {
    const labels = CASES.map((c) => `${c.op} ${c.label}`);
    expect(new Set(labels).size).toBe(labels.length);
  });
});
