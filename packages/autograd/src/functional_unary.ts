// The elementwise one-input ops of `F`, generated from the kernels' records (UNARY_OPS in
// @cg/kernels-wgsl): neg, abs, square, sqrt, exp, log; activations relu, leakyRelu(x, negativeSlope = 0.01,
// PyTorch's default), tanh, sigmoid, gelu (exact erf form, PyTorch's default), silu; scale(x, s) and
// addScalar(x, s). A new record appears in `F` with no edit here.
import * as K from '@cg/kernels-wgsl';
import { ArgumentError, type Tensor } from '@cg/tensor-core';
import { op } from './record_op.js';
import type { SavedOf } from './rules.js';
import { share } from './tape.js';
import type { Variable } from './variable.js';

/** `F[op](x, p?)`: runs the forward kernel and saves what the op's record says its gradient reads. */
function unaryFn<Op extends K.UnaryGradOp>(name: Op): (x: Variable, p?: number) => Variable {
  const def: K.UnaryRecord = K.UNARY_OPS[name];
  const saved = def.grad!.saved;
  return (x, p = def.param?.default) => {
    if (def.param && p === undefined) throw new ArgumentError(`${name}: ${def.param.name} is required`);
    const y = K.unary(name, x.data, p ?? 0);
    return op(name, { x }, y, () => {
      const s: { x?: Tensor; y?: Tensor; p?: number } = {};
      if (saved === 'x') s.x = share(x.data);
      if (saved === 'y') s.y = share(y);
      if (def.param) s.p = p;
      return s as SavedOf<Op>;
    });
  };
}

export type UnaryFns = { [Op in K.UnaryGradOp]: (x: Variable, ...args: K.UnaryArgs<Op>) => Variable };
export const UNARY: UnaryFns = Object.fromEntries(K.UNARY_GRAD_OPS.map((name) => [name, unaryFn(name)])) as UnaryFns;
