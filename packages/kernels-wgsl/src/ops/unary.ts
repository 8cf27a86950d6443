import { Tensor } from '@cg/tensor-core';
import { flatGroupIndex, flatWorkgroups, runKernel, sameDevice } from '../runtime.js';
import { defaultParam, UNARY_OPS, UNARY_WGSL_LIB, type UnaryOp, type UnaryRecord } from './elementwise_records.js';

/** Forward kernels and references of the elementwise ops declared in elementwise_records.ts. */

const PER_THREAD = 4;
const WG = 64;

/** y = op(x) elementwise; `p` is the op's parameter (its record's default when it has one). */
export function unary(op: UnaryOp, x: Tensor, p = defaultParam(op)): Tensor {
  const y = Tensor.empty(x.device, x.shape);
  unaryInto(op, x, y, p);
  return y;
}

/** Writes op(x) into `y` (same size); lets in-place updates reuse buffers. */
export function unaryInto(op: UnaryOp, x: Tensor, y: Tensor, p = defaultParam(op)): void {
  elementwiseInto(op, UNARY_OPS[op].wgsl, { x }, y, p);
}

/**
 * Writes `expr` of same-size inputs into `y`, one element per invocation
 * step. `inputs` binds each tensor to a WGSL name (x, y, dy…) in order;
 * the expression may use `p` and the functions of UNARY_WGSL_LIB.
 */
export function elementwiseInto(
  op: string,
  expr: string,
  inputs: Readonly<Record<string, Tensor>>,
  y: Tensor,
  p: number,
): void {
  const names = Object.keys(inputs);
  const ts = Object.values(inputs);
  sameDevice(op, ...ts, y);
  for (const t of ts) {
    if (t.size !== y.size) throw new Error(`${op}: inputs have ${t.size} elements, the output ${y.size}`);
  }
  runKernel({
    op,
    key: `${names.join(',')}|${expr}`,
    decl: { inputs: names.map((v) => `in_${v}`), outputs: ['dst'], uniforms: { n: 'u32', p: 'f32' } },
    wgsl: () => /* wgsl */ `
${UNARY_WGSL_LIB}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = ((${flatGroupIndex}) * ${WG}u + lid) * ${PER_THREAD}u;
  let p = u.p;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let i = base + k;
    if (i < u.n) {
${names.map((v) => `      let ${v} = in_${v}[i];`).join('\n')}
      dst[i] = ${expr};
    }
  }
}`,
    inputs: ts,
    outputs: [y],
    uniforms: { n: y.size, p },
    workgroups: flatWorkgroups(y.size, WG * PER_THREAD),
  });
}

// Named forms of the original ops; newer ones are reached through unary(op, x).
export const neg = (x: Tensor) => unary('neg', x);
export const abs = (x: Tensor) => unary('abs', x);
export const square = (x: Tensor) => unary('square', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const relu = (x: Tensor) => unary('relu', x);
export const leakyRelu = (x: Tensor, slope = UNARY_OPS.leakyRelu.param.default) => unary('leakyRelu', x, slope);
export const tanh = (x: Tensor) => unary('tanh', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const scale = (x: Tensor, s: number) => unary('scale', x, s);
export const addScalar = (x: Tensor, s: number) => unary('addScalar', x, s);

/** Float64 reference. */
export function unaryRef(op: UnaryOp, x: ArrayLike<number>, p = defaultParam(op)): Float64Array {
  const f: UnaryRecord['ref'] = UNARY_OPS[op].ref;
  return Float64Array.from(x, (v) => f(v, p));
}
