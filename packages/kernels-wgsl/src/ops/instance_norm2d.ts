import type { Tensor } from '@cg/tensor-core';
import {
  checkNormBackward,
  checkNormEps,
  checkNormInput,
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
