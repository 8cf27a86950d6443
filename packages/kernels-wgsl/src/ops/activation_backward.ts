import type { Tensor } from '@cg/tensor-core';
import { expectSameShape } from '../shape.js';
import { binaryMap } from './binary.js';

/**
 * Backward of the activations in unary.ts: one fused map of (dy, saved) per
 * op. relu and leakyRelu read the forward input x; tanh and sigmoid read the
 * saved output y, because their derivatives are polynomials in y and the
 * autograd tape then keeps one tensor instead of two.
 *
 * `wgsl` is an expression in `a` (= dy), `b` (= x or y) and `p` (the slope);
 * `ref` is the float64 reference written from the derivative.
 */
interface ActivationBackwardDef {
  saved: 'x' | 'y';
  wgsl: string;
  ref: (dy: number, saved: number, p: number) => number;
}

export const ACTIVATION_BACKWARD_OPS = {
  // d/dx max(x, 0) is taken as 0 at x = 0, as PyTorch does.
  reluBackward: { saved: 'x', wgsl: 'select(0.0, a, b > 0.0)', ref: (dy, x) => (x > 0 ? dy : 0) },
  leakyReluBackward: { saved: 'x', wgsl: 'select(p * a, a, b > 0.0)', ref: (dy, x, s) => (x > 0 ? dy : s * dy) },
  tanhBackward: { saved: 'y', wgsl: 'a * (1.0 - b * b)', ref: (dy, y) => dy * (1 - y * y) },
  sigmoidBackward: { saved: 'y', wgsl: 'a * b * (1.0 - b)', ref: (dy, y) => dy * y * (1 - y) },
} satisfies Record<string, ActivationBackwardDef>;

export type ActivationBackwardOp = keyof typeof ACTIVATION_BACKWARD_OPS;

/** dx (or dy·f'(x) in general) for `op`; `saved` is x or y as the op's table row says. */
export function activationBackward(op: ActivationBackwardOp, dy: Tensor, saved: Tensor, p = 0): Tensor {
  const def: ActivationBackwardDef = ACTIVATION_BACKWARD_OPS[op];
  expectSameShape(op, dy, saved, ['dy', def.saved]);
  return binaryMap(op, def.wgsl, dy, saved, p);
}

export const reluBackward = (dy: Tensor, x: Tensor): Tensor => activationBackward('reluBackward', dy, x);
export const leakyReluBackward = (dy: Tensor, x: Tensor, slope = 0.2): Tensor =>
  activationBackward('leakyReluBackward', dy, x, slope);
/** dy·(1 − y²) from the saved output y = tanh(x). */
export const tanhBackward = (dy: Tensor, y: Tensor): Tensor => activationBackward('tanhBackward', dy, y);
/** dy·y·(1 − y) from the saved output y = sigmoid(x). */
export const sigmoidBackward = (dy: Tensor, y: Tensor): Tensor => activationBackward('sigmoidBackward', dy, y);

/** Float64 reference. */
export function activationBackwardRef(
  op: ActivationBackwardOp,
  dy: ArrayLike<number>,
  saved: ArrayLike<number>,
  p = 0,
): Float64Array {
  const f: ActivationBackwardDef['ref'] = ACTIVATION_BACKWARD_OPS[op].ref;
  if (dy.length !== saved.length) throw new Error(`${op}Ref: dy has ${dy.length} elements, saved ${saved.length}`);
  return Float64Array.from(dy, (g, i) => f(g, saved[i], p));
}

export const reluBackwardRef = (dy: ArrayLike<number>, x: ArrayLike<number>) =>
  activationBackwardRef('reluBackward', dy, x);
export const leakyReluBackwardRef = (dy: ArrayLike<number>, x: ArrayLike<number>, slope = 0.2) =>
  activationBackwardRef('leakyReluBackward', dy, x, slope);
export const tanhBackwardRef = (dy: ArrayLike<number>, y: ArrayLike<number>) =>
  activationBackwardRef('tanhBackward', dy, y);
export const sigmoidBackwardRef = (dy: ArrayLike<number>, y: ArrayLike<number>) =>
  activationBackwardRef('sigmoidBackward', dy, y);
