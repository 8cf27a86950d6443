import { Tensor } from '@cg/tensor-core';
import { expectSameShape } from '../shape.js';
import { defaultParam, UNARY_OPS, type UnaryGradOp, type UnaryRecord } from './elementwise_records.js';
import { elementwiseInto } from './unary.js';

/**
 * Backward kernels of the elementwise ops, generated from the `grad` of
 * their records in elementwise_records.ts: dx = dy·f'(saved), one fused
 * map, where saved is the forward input x, its output y, or nothing.
 */

type GradDef = NonNullable<UnaryRecord['grad']>;

function gradOf(op: UnaryGradOp): GradDef {
  const def: UnaryRecord = UNARY_OPS[op];
  return def.grad!;
}

/** dx for `op` (pipeline label `${op}Backward`); `saved` is x, y or null as the op's record says. */
export function unaryBackward(op: UnaryGradOp, dy: Tensor, saved: Tensor | null, p = defaultParam(op)): Tensor {
  const g = gradOf(op);
  const label = `${op}Backward`;
  const inputs: Record<string, Tensor> = { dy };
  if (g.saved !== 'none') {
    if (!saved) throw new Error(`${label}: needs the saved ${g.saved}, got null`);
    expectSameShape(label, dy, saved, ['dy', g.saved]);
    inputs[g.saved] = saved;
  }
  const dx = Tensor.empty(dy.device, dy.shape);
  elementwiseInto(label, `dy * (${g.wgsl})`, inputs, dx, p);
  return dx;
}

/** Float64 reference of unaryBackward. */
export function unaryBackwardRef(
  op: UnaryGradOp,
  dy: ArrayLike<number>,
  saved: ArrayLike<number> | null,
  p = defaultParam(op),
): Float64Array {
  const g = gradOf(op);
  if (g.saved !== 'none' && saved?.length !== dy.length) {
    throw new Error(`${op}BackwardRef: dy has ${dy.length} elements, ${g.saved} ${saved?.length ?? 'none'}`);
  }
  return Float64Array.from(dy, (d, i) => d * g.ref(saved ? saved[i] : 0, p));
}

// Named forms of the original activations' backward passes.
export const reluBackward = (dy: Tensor, x: Tensor): Tensor => unaryBackward('relu', dy, x);
export const leakyReluBackward = (dy: Tensor, x: Tensor, slope = UNARY_OPS.leakyRelu.param.default): Tensor =>
  unaryBackward('leakyRelu', dy, x, slope);
/** dy·(1 − y²) from the saved output y = tanh(x). */
export const tanhBackward = (dy: Tensor, y: Tensor): Tensor => unaryBackward('tanh', dy, y);
/** dy·y·(1 − y) from the saved output y = sigmoid(x). */
export const sigmoidBackward = (dy: Tensor, y: Tensor): Tensor => unaryBackward('sigmoid', dy, y);

export const reluBackwardRef = (dy: ArrayLike<number>, x: ArrayLike<number>) => unaryBackwardRef('relu', dy, x);
export const leakyReluBackwardRef = (
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  slope = UNARY_OPS.leakyRelu.param.default,
) => unaryBackwardRef('leakyRelu', dy, x, slope);
export const tanhBackwardRef = (dy: ArrayLike<number>, y: ArrayLike<number>) => unaryBackwardRef('tanh', dy, y);
export const sigmoidBackwardRef = (dy: ArrayLike<number>, y: ArrayLike<number>) => unaryBackwardRef('sigmoid', dy, y);
