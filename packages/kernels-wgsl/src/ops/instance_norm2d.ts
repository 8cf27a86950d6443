import { fmtShape, ShapeError, type Tensor } from '@cg/tensor-core';
import { sameDevice } from '../runtime.js';
import {
  checkNormBackward,
  checkNormEps,
  checkNormInput,
  type NormEpilogue,
  type NormLayout,
  type NormTuning,
  normBackward,
  normBackwardRef,
  normForward,
  normRef,
} from './channel_norm.js';

/**
 * Instance norm over NCHW: statistics per (n, c) plane, one group per plane
 * of H·W contiguous elements. The kernels are channel_norm.ts's, shared with
 * batch norm.
 */

function instanceLayout(shape: readonly number[]): NormLayout {
  const [N, C, H, W] = shape;
  return { groups: N * C, outer: 1, outerStride: C * H * W, inner: H * W, channels: C };
}

/**
 * y = (x - mean) / sqrt(var + eps) · weight + bias, statistics per (n, c)
 * plane, biased variance (PyTorch's InstanceNorm2d). x: [N, C, H, W];
 * weight, bias: [C] or null. Returns mean and invStd, [N·C], for backward.
 */
export function instanceNorm2d(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps = 1e-5,
  tuning?: NormTuning,
): { y: Tensor; mean: Tensor; invStd: Tensor } {
  const op = 'instanceNorm2d';
  checkNormInput(op, x, { weight, bias });
  checkNormEps(op, eps);
  return normForward(op, instanceLayout(x.shape), x, weight, bias, eps, null, tuning);
}

/**
 * Gradients of instanceNorm2d. dweight and dbias are returned when weight is
 * given (affine), else null.
 */
export function instanceNorm2dBackward(
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  invStd: Tensor,
  weight: Tensor | null,
  tuning?: NormTuning,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  const op = 'instanceNorm2dBackward';
  checkNormBackward(op, dy, x, mean, invStd, weight, (s) => s[0] * s[1]);
  return normBackward(op, instanceLayout(x.shape), dy, x, mean, invStd, weight, tuning);
}

// ---- fused chains: norm → activation, norm → residual add ---------------------

/** The activations fusable after a norm; leakyRelu needs a slope ≥ 0 (its backward mask is read from y). */
export type NormActivation = 'relu' | 'leakyRelu';

function actEpilogue(op: string, act: NormActivation, slope: number): NormEpilogue {
  if (act === 'relu') return { kind: 'relu' };
  if (!(slope >= 0) || !Number.isFinite(slope)) {
    throw new RangeError(`${op}: leakyRelu's negative slope must be finite and ≥ 0 to fuse, got ${slope}`);
  }
  return { kind: 'leakyRelu', slope };
}

/**
 * y = act(instanceNorm2d(x, weight, bias)) in the norm's own dispatch(es):
 * the normalised plane is never written. `slope` is leakyRelu's (ignored for
 * relu). Returns mean and invStd, [N·C], for instanceNorm2dActBackward,
 * which also takes y.
 */
export function instanceNorm2dAct(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  act: NormActivation,
  slope = 0,
  eps = 1e-5,
  tuning?: NormTuning,
): { y: Tensor; mean: Tensor; invStd: Tensor } {
  const op = 'instanceNorm2dAct';
  checkNormInput(op, x, { weight, bias });
  checkNormEps(op, eps);
  const epi = actEpilogue(op, act, slope);
  return normForward(op, instanceLayout(x.shape), x, weight, bias, eps, null, tuning, epi, 'instanceNorm2d');
}

/**
 * Gradients of instanceNorm2dAct: the norm's backward with dy masked by the
 * activation's derivative, taken from the saved output y (y > 0 exactly
 * where the normalised value is, for relu and for leakyRelu with slope ≥ 0).
 */
export function instanceNorm2dActBackward(
  dy: Tensor,
  x: Tensor,
  y: Tensor,
  mean: Tensor,
  invStd: Tensor,
  weight: Tensor | null,
  act: NormActivation,
  slope = 0,
  tuning?: NormTuning,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  const op = 'instanceNorm2dActBackward';
  checkNormBackward(op, dy, x, mean, invStd, weight, (s) => s[0] * s[1]);
  checkSameShape(op, 'y', y, x);
  const epi = actEpilogue(op, act, slope);
  const mask = { y, slope: epi.kind === 'leakyRelu' ? epi.slope : 0 };
  return normBackward(op, instanceLayout(x.shape), dy, x, mean, invStd, weight, tuning, mask);
}

/**
 * y = skip + instanceNorm2d(x, weight, bias) (the ResnetBlock's end) in the
 * norm's dispatch(es). Its backward is instanceNorm2dBackward for x (and
 * weight, bias) and dy itself for skip.
 */
export function instanceNorm2dAdd(
  x: Tensor,
  skip: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps = 1e-5,
  tuning?: NormTuning,
): { y: Tensor; mean: Tensor; invStd: Tensor } {
  const op = 'instanceNorm2dAdd';
  checkNormInput(op, x, { weight, bias });
  checkNormEps(op, eps);
  checkSameShape(op, 'skip', skip, x);
  const epi: NormEpilogue = { kind: 'add', skip };
  return normForward(op, instanceLayout(x.shape), x, weight, bias, eps, null, tuning, epi, 'instanceNorm2d');
}

function checkSameShape(op: string, name: string, t: Tensor, x: Tensor): void {
  sameDevice(op, x, t);
  if (t.rank !== x.rank || t.shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(
      `${op}: ${name} must have the shape of x (expected ${fmtShape(x.shape)}, got ${fmtShape(t.shape)}; x ${fmtShape(x.shape)})`,
    );
  }
}

// ---- float64 references --------------------------------------------------------

/** Float64 reference of instanceNorm2d. */
export function instanceNorm2dRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps = 1e-5,
): { data: Float64Array; shape: number[]; mean: Float64Array; invStd: Float64Array } {
  const r = normRef(instanceLayout(shape), x, weight, bias, eps);
  return { data: r.data, shape: [...shape], mean: r.mean, invStd: r.invStd };
}

/** Float64 reference of instanceNorm2dBackward. */
export function instanceNorm2dBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  mean: ArrayLike<number>,
  invStd: ArrayLike<number>,
  weight: ArrayLike<number> | null,
): { dx: Float64Array; dweight: Float64Array | null; dbias: Float64Array | null; shape: number[] } {
  return { ...normBackwardRef(instanceLayout(shape), dy, x, mean, invStd, weight), shape: [...shape] };
}

const actRef = (act: NormActivation, slope: number) => (z: number) => (z > 0 ? z : act === 'relu' ? 0 : slope * z);
const actGradRef = (act: NormActivation, slope: number) => (z: number) => (z > 0 ? 1 : act === 'relu' ? 0 : slope);

/** Float64 reference of instanceNorm2dAct: the activation of the reference norm. */
export function instanceNorm2dActRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  act: NormActivation,
  slope = 0,
  eps = 1e-5,
): { data: Float64Array; shape: number[]; mean: Float64Array; invStd: Float64Array; z: Float64Array } {
  const r = instanceNorm2dRef(x, shape, weight, bias, eps);
  return { ...r, data: r.data.map(actRef(act, slope)), z: r.data };
}

/** Float64 reference of instanceNorm2dActBackward, by the chain rule: dz = dy·act'(z), then the norm's backward. */
export function instanceNorm2dActBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  act: NormActivation,
  slope = 0,
  eps = 1e-5,
): { dx: Float64Array; dweight: Float64Array | null; dbias: Float64Array | null; shape: number[] } {
  const f = instanceNorm2dRef(x, shape, weight, bias, eps);
  const g = actGradRef(act, slope);
  const dz = Float64Array.from(dy, (d, i) => d * g(f.data[i]));
  return instanceNorm2dBackwardRef(dz, x, shape, f.mean, f.invStd, weight);
}

/** Float64 reference of instanceNorm2dAdd. */
export function instanceNorm2dAddRef(
  x: ArrayLike<number>,
  skip: ArrayLike<number>,
  shape: readonly number[],
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps = 1e-5,
): { data: Float64Array; shape: number[]; mean: Float64Array; invStd: Float64Array } {
  const r = instanceNorm2dRef(x, shape, weight, bias, eps);
  return { ...r, data: r.data.map((z, i) => skip[i] + z) };
}
