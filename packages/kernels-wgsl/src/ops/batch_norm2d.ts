import { fmtShape, ShapeError, type Tensor } from '@cg/tensor-core';
import { sameDevice } from '../runtime.js';
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
 * Batch norm over NCHW: statistics per channel over (N, H, W). The kernels
 * are channel_norm.ts's, shared with instance norm, with one group per
 * channel made of N rows of H·W elements.
 */

/** Running statistics, updated in place on the GPU by training-mode forwards. */
export interface BatchNormState {
  runningMean: Tensor;
  runningVar: Tensor;
  /** PyTorch's momentum: running = (1 - momentum)·running + momentum·batch. */
  momentum: number;
}

export interface BatchNormOptions {
  /** Normalise with batch statistics (and update `state`); false: use `state`'s running statistics. */
  training: boolean;
  eps?: number;
  state?: BatchNormState;
  tuning?: NormTuning;
}

function batchLayout(shape: readonly number[]): NormLayout {
  const [, C, H, W] = shape;
  return { groups: C, outer: shape[0], outerStride: C * H * W, inner: H * W, channels: C };
}

/**
 * y = (x - mean) / sqrt(var + eps) · weight + bias with per-channel
 * statistics. Training mode (or eval without a state, like PyTorch with
 * track_running_stats=False) uses the batch's mean and biased variance and
 * updates `state` in place (running_var gets the unbiased variance, as
 * PyTorch). Eval mode with a state normalises with the running statistics.
 * x: [N, C, H, W]; weight, bias: [C] or null. mean and invStd: [C], the
 * statistics actually used, for backward.
 */
export function batchNorm2d(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  opts: BatchNormOptions,
): { y: Tensor; mean: Tensor; invStd: Tensor } {
  const op = 'batchNorm2d';
  const eps = opts.eps ?? 1e-5;
  const state = opts.state;
  const [N, , H, W] = checkNormInput(op, x, {
    weight,
    bias,
    runningMean: state?.runningMean ?? null,
    runningVar: state?.runningVar ?? null,
  });
  checkNormEps(op, eps);
  const useBatch = opts.training || !state;
  if (useBatch && N * H * W < 2) {
    throw new ShapeError(
      `${op}: training needs more than one value per channel (expected N·H·W > 1, got ${N * H * W}; x ${fmtShape(x.shape)})`,
    );
  }
  if (state) {
    sameDevice(op, x, state.runningMean, state.runningVar);
    if (!(state.momentum >= 0 && state.momentum <= 1)) {
      throw new RangeError(`${op}: momentum must be in [0, 1], got ${state.momentum}`);
    }
  }
  const running = state
    ? { mean: state.runningMean, var: state.runningVar, momentum: state.momentum, update: opts.training }
    : null;
  return normForward(op, batchLayout(x.shape), x, weight, bias, eps, running, opts.tuning);
}

/**
 * Gradients of a training-mode batchNorm2d (batch statistics), closed form.
 * dweight and dbias are returned when weight is given, else null. (In eval
 * mode the statistics are constants and dx = dy·weight·invStd.)
 */
export function batchNorm2dBackward(
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  invStd: Tensor,
  weight: Tensor | null,
  tuning?: NormTuning,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  const op = 'batchNorm2dBackward';
  checkNormBackward(op, dy, x, mean, invStd, weight, (s) => s[1]);
  return normBackward(op, batchLayout(x.shape), dy, x, mean, invStd, weight, tuning);
}

// ---- float64 references --------------------------------------------------------

/**
 * Float64 reference of batchNorm2d. With `running` (and training false) it
 * normalises with the running statistics; in training it also returns the
 * updated running statistics.
 */
export function batchNorm2dRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  opts: {
    training: boolean;
    eps?: number;
    running?: { mean: ArrayLike<number>; var: ArrayLike<number>; momentum: number };
  },
): {
  data: Float64Array;
  shape: number[];
  mean: Float64Array;
  invStd: Float64Array;
  runningMean: Float64Array | null;
  runningVar: Float64Array | null;
} {
  const eps = opts.eps ?? 1e-5;
  const layout = batchLayout(shape);
  const C = shape[1];
  const run = opts.running;
  if (run && !opts.training) {
    const data = new Float64Array(x.length);
    const mean = Float64Array.from(run.mean);
    const invStd = Float64Array.from(run.var, (v) => 1 / Math.sqrt(v + eps));
    const inner = layout.inner;
    for (let i = 0; i < x.length; i++) {
      const c = Math.floor(i / inner) % C;
      data[i] = (x[i] - mean[c]) * invStd[c] * (weight ? weight[c] : 1) + (bias ? bias[c] : 0);
    }
    return { data, shape: [...shape], mean, invStd, runningMean: mean, runningVar: Float64Array.from(run.var) };
  }
  const r = normRef(layout, x, weight, bias, eps);
  let runningMean: Float64Array | null = null;
  let runningVar: Float64Array | null = null;
  if (run) {
    const M = layout.outer * layout.inner;
    const m = run.momentum;
    runningMean = Float64Array.from(run.mean, (v, c) => (1 - m) * v + m * r.mean[c]);
    runningVar = Float64Array.from(run.var, (v, c) => (1 - m) * v + (m * r.variance[c] * M) / (M - 1));
  }
  return { data: r.data, shape: [...shape], mean: r.mean, invStd: r.invStd, runningMean, runningVar };
}

/** Float64 reference of batchNorm2dBackward (batch statistics). */
export function batchNorm2dBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  mean: ArrayLike<number>,
  invStd: ArrayLike<number>,
  weight: ArrayLike<number> | null,
): { dx: Float64Array; dweight: Float64Array | null; dbias: Float64Array | null; shape: number[] } {
  return { ...normBackwardRef(batchLayout(shape), dy, x, mean, invStd, weight), shape: [...shape] };
}
