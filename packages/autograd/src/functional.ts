import * as K from '@cg/kernels-wgsl';
import { fmtShape, ShapeError, sizeOf, type Tensor } from '@cg/tensor-core';
import { UNARY } from './functional_unary.js';
import { keepIf, op } from './record_op.js';
import { share } from './tape.js';
import { record, Variable } from './variable.js';

/**
 * Differentiable ops on Variables (PyTorch's torch.nn.functional plus the
 * tensor arithmetic). Each runs its kernel on the inputs' data and, when a
 * graph is being recorded, saves what its rule in rules.ts reads, no more:
 * an input's value is saved only when another input's gradient needs it.
 */

const { addScalar, scale } = UNARY;

// ---- arithmetic (NumPy broadcasting) -------------------------------------------

export function add(a: Variable, b: Variable | number): Variable {
  if (typeof b === 'number') return addScalar(a, b);
  return op('add', { a, b }, K.add(a.data, b.data), () => ({ aShape: a.shape, bShape: b.shape }));
}

export function sub(a: Variable, b: Variable | number): Variable {
  if (typeof b === 'number') return addScalar(a, -b);
  return op('sub', { a, b }, K.sub(a.data, b.data), () => ({ aShape: a.shape, bShape: b.shape }));
}

export function mul(a: Variable, b: Variable | number): Variable {
  if (typeof b === 'number') return scale(a, b);
  return op('mul', { a, b }, K.mul(a.data, b.data), (n) => ({
    a: keepIf(n.b, a.data),
    b: keepIf(n.a, b.data),
    aShape: a.shape,
    bShape: b.shape,
  }));
}

export function div(a: Variable, b: Variable | number): Variable {
  if (typeof b === 'number') return scale(a, 1 / b);
  const y = K.div(a.data, b.data);
  return op('div', { a, b }, y, (n) => ({ b: share(b.data), y: keepIf(n.b, y), aShape: a.shape, bShape: b.shape }));
}

/** Inverted dropout (PyTorch's): identity unless `training`; `seed` picks the mask. */
export function dropout(x: Variable, p: number, training: boolean, seed: number): Variable {
  if (!training || p === 0) return x;
  const { y, mask } = K.dropout(x.data, p, seed);
  const out = op('dropout', { x }, y, () => ({ mask: share(mask) }));
  mask.dispose();
  return out;
}

// ---- reductions and views -----------------------------------------------------

function normAxes(x: Variable, axes: readonly number[] | undefined): number[] {
  const all = x.shape.map((_, i) => i);
  if (!axes) return all;
  const out = new Set<number>();
  for (const a of axes) {
    const ax = a < 0 ? a + x.rank : a;
    if (!Number.isInteger(ax) || ax < 0 || ax >= x.rank) {
      throw new ShapeError(`sum: axis ${a} is out of range for ${fmtShape(x.shape)}`);
    }
    out.add(ax);
  }
  return [...out].sort((p, q) => p - q);
}

/** Sum over `axes` (all when omitted); the result has shape [] for a full sum without keepDims. */
export function sum(x: Variable, axes?: readonly number[], keepDims = false): Variable {
  const ax = normAxes(x, axes);
  return op('sum', { x }, K.sum(x.data, axes ? ax : undefined, keepDims), () => ({ xShape: x.shape, axes: ax }));
}

export function mean(x: Variable, axes?: readonly number[], keepDims = false): Variable {
  const ax = normAxes(x, axes);
  const n = Math.max(1, sizeOf(ax.map((i) => x.shape[i])));
  return op('mean', { x }, K.mean(x.data, axes ? ax : undefined, keepDims), () => ({ xShape: x.shape, axes: ax, n }));
}

/** Same data, new shape (one dimension may be -1); shares storage, costs no GPU work. */
export function reshape(x: Variable, shape: readonly number[]): Variable {
  return op('reshape', { x }, x.data.reshape(shape), () => ({ xShape: x.shape }));
}

// ---- losses (mean over all elements; scalar [] output) -----------------------

type LossTarget = Variable | Tensor | number;

function loss(name: 'mseLoss' | 'l1Loss' | 'bceWithLogitsLoss', x: Variable, target: LossTarget): Variable {
  const t = targetOf(target);
  const y = K.meanLoss(name, x.data, t);
  const targetVar = target instanceof Variable ? target : null;
  return op(name, { x, target: targetVar }, y, () => ({
    x: share(x.data),
    t: typeof t === 'number' ? t : share(t),
  }));
}

function targetOf(target: LossTarget): Tensor | number {
  if (typeof target === 'number') return target;
  return target instanceof Variable ? target.data : target;
}

/** mean((x − target)²) */
export const mseLoss = (x: Variable, target: LossTarget): Variable => loss('mseLoss', x, target);
/** mean(|x − target|) */
export const l1Loss = (x: Variable, target: LossTarget): Variable => loss('l1Loss', x, target);
/** Binary cross-entropy of sigmoid(x) against target, from logits (PyTorch's BCEWithLogitsLoss). */
export const bceWithLogitsLoss = (x: Variable, target: LossTarget): Variable => loss('bceWithLogitsLoss', x, target);

// ---- joining and splitting -------------------------------------------------------

/** Joins variables along `axis` (PyTorch's torch.cat). */
export function concat(xs: readonly Variable[], axis: number): Variable {
  const y = K.concat(
    xs.map((x) => x.data),
    axis,
  );
  const ax = axis < 0 ? axis + y.rank : axis;
  const inputs = Object.fromEntries(xs.map((x, i) => [String(i), x]));
  return op('concat', inputs, y, () => ({ sizes: xs.map((x) => x.shape[ax]), axis: ax }));
}

/** Splits `x` along `axis` into pieces of the given sizes (PyTorch's torch.split with a list). */
export function split(x: Variable, sizes: readonly number[], axis: number): Variable[] {
  const ys = K.split(x.data, sizes, axis);
  const ax = axis < 0 ? axis + x.rank : axis;
  return record('split', { x }, ys, () => ({ shapes: ys.map((y) => y.shape), axis: ax }), true);
}

// ---- convolutions -----------------------------------------------------------------

export interface ConvArgs {
  stride?: number | [number, number];
  padding?: number | [number, number];
}

export interface Conv2dArgs extends ConvArgs {
  /**
   * How the padding border is filled (default zeros): 'reflect' / 'replicate' are ReflectionPad2d /
   * ReplicationPad2d folded into the kernel's index math, so no padded copy is made or saved.
   */
  padMode?: K.Conv2dOptions['padMode'];
  /** An activation in the kernel's output write (default none); its backward reads the saved output. */
  epilogue?: K.Conv2dOptions['epilogue'];
}

export interface ConvTranspose2dArgs extends ConvArgs {
  outputPadding?: number | [number, number];
}

/** x: [N, Cin, H, W], w: [Cout, Cin, kH, kW], b: [Cout] or null → [N, Cout, Ho, Wo]. */
export function conv2d(x: Variable, w: Variable, b: Variable | null, args: Conv2dArgs = {}): Variable {
  const opts = { stride: args.stride ?? 1, padding: args.padding ?? 0, padMode: args.padMode ?? 'zeros' };
  const epilogue = args.epilogue ?? 'none';
  const y = K.conv2d(x.data, w.data, b ? b.data : null, { ...opts, epilogue });
  return op('conv2d', { x, w, b }, y, (n) => ({
    x: keepIf(n.w, x.data),
    w: keepIf(n.x, w.data),
    xShape: x.shape,
    wShape: w.shape,
    opts,
    epilogue,
    y: epilogue === 'none' ? null : share(y),
  }));
}

/** x: [N, Cin, H, W], w: [Cin, Cout, kH, kW], b: [Cout] or null (PyTorch's conv_transpose2d). */
export function convTranspose2d(
  x: Variable,
  w: Variable,
  b: Variable | null,
  args: ConvTranspose2dArgs = {},
): Variable {
  const opts = { stride: args.stride ?? 1, padding: args.padding ?? 0, outputPadding: args.outputPadding ?? 0 };
  const y = K.convTranspose2d(x.data, w.data, b ? b.data : null, opts);
  return op('convTranspose2d', { x, w, b }, y, (n) => ({
    x: keepIf(n.w, x.data),
    w: keepIf(n.x, w.data),
    xShape: x.shape,
    wShape: w.shape,
    opts,
  }));
}

// ---- normalisation -------------------------------------------------------------------

/** Per-(n, c) plane normalisation with the plane's own statistics; weight/bias [C] or null. */
export function instanceNorm2d(x: Variable, weight: Variable | null, bias: Variable | null, eps = 1e-5): Variable {
  const r = K.instanceNorm2d(x.data, weight ? weight.data : null, bias ? bias.data : null, eps);
  const y = op('instanceNorm2d', { x, weight, bias }, r.y, () => ({
    x: share(x.data),
    mean: share(r.mean),
    invStd: share(r.invStd),
    weight: weight ? share(weight.data) : null,
  }));
  r.mean.dispose();
  r.invStd.dispose();
  return y;
}

/**
 * act(instanceNorm2d(x, weight, bias)) in one kernel: what nn.Sequential runs for [InstanceNorm2d, ReLU]
 * and [InstanceNorm2d, LeakyReLU(slope ≥ 0)]. Saves x and y (y is also what the next layer saves, so
 * the normalised plane is never kept).
 */
export function instanceNorm2dAct(
  x: Variable,
  weight: Variable | null,
  bias: Variable | null,
  act: K.NormActivation,
  negativeSlope = 0,
  eps = 1e-5,
): Variable {
  const slope = act === 'relu' ? 0 : negativeSlope;
  const r = K.instanceNorm2dAct(x.data, weight ? weight.data : null, bias ? bias.data : null, act, slope, eps);
  const y = op('instanceNorm2dAct', { x, weight, bias }, r.y, () => ({
    x: share(x.data),
    y: share(r.y),
    mean: share(r.mean),
    invStd: share(r.invStd),
    weight: weight ? share(weight.data) : null,
    act,
    slope,
  }));
  r.mean.dispose();
  r.invStd.dispose();
  return y;
}

/** skip + instanceNorm2d(x, weight, bias) in one kernel: the ResnetBlock's end. */
export function instanceNorm2dAdd(
  x: Variable,
  skip: Variable,
  weight: Variable | null,
  bias: Variable | null,
  eps = 1e-5,
): Variable {
  const r = K.instanceNorm2dAdd(x.data, skip.data, weight ? weight.data : null, bias ? bias.data : null, eps);
  const y = op('instanceNorm2dAdd', { x, skip, weight, bias }, r.y, (n) => {
    const norm = n.x || n.weight || n.bias;
    return {
      x: norm ? share(x.data) : null,
      mean: norm ? share(r.mean) : null,
      invStd: norm ? share(r.invStd) : null,
      weight: norm && weight ? share(weight.data) : null,
    };
  });
  r.mean.dispose();
  r.invStd.dispose();
  return y;
}

export interface BatchNormArgs {
  /** Normalise with the batch's statistics (and update the running ones in place). */
  training: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * PyTorch's F.batch_norm for NCHW. With running statistics and training
 * false they are used as constants; otherwise the batch's statistics are
 * used, and the running ones (when given) are updated in place.
 */
export function batchNorm2d(
  x: Variable,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Variable | null,
  bias: Variable | null,
  args: BatchNormArgs,
): Variable {
  const state = runningMean && runningVar ? { runningMean, runningVar, momentum: args.momentum ?? 0.1 } : undefined;
  const r = K.batchNorm2d(x.data, weight ? weight.data : null, bias ? bias.data : null, {
    training: args.training,
    eps: args.eps ?? 1e-5,
    state,
  });
  const batchStats = args.training || !state;
  const y = op(batchStats ? 'batchNorm2d' : 'batchNorm2dEval', { x, weight, bias }, r.y, () => ({
    x: share(x.data),
    mean: share(r.mean),
    invStd: share(r.invStd),
    weight: weight ? share(weight.data) : null,
  }));
  r.mean.dispose();
  r.invStd.dispose();
  return y;
}

// ---- padding and resampling ------------------------------------------------------

/** [left, right, top, bottom], or one number for all four (PyTorch's ReflectionPad2d order). */
export type Padding2d = number | readonly [number, number, number, number];

export function pads4(p: Padding2d): [number, number, number, number] {
  return typeof p === 'number' ? [p, p, p, p] : [p[0], p[1], p[2], p[3]];
}

export function reflectionPad2d(x: Variable, padding: Padding2d): Variable {
  const pads = pads4(padding);
  return op('reflectionPad2d', { x }, K.reflectionPad2d(x.data, pads), () => ({ xShape: x.shape, pads }));
}

export function zeroPad2d(x: Variable, padding: Padding2d): Variable {
  const pads = pads4(padding);
  return op('zeroPad2d', { x }, K.zeroPad2d(x.data, pads), () => ({ xShape: x.shape, pads }));
}

export function replicationPad2d(x: Variable, padding: Padding2d): Variable {
  const pads = pads4(padding);
  return op('replicationPad2d', { x }, K.replicationPad2d(x.data, pads), () => ({ xShape: x.shape, pads }));
}

/** Integer-factor upsampling of H and W (PyTorch's nn.Upsample(scale_factor, mode)). */
export function upsample2d(x: Variable, scale: number, mode: K.UpsampleMode = 'nearest'): Variable {
  return op('upsample2d', { x }, K.upsample2d(x.data, scale, mode), () => ({ xShape: x.shape, scale, mode }));
}
