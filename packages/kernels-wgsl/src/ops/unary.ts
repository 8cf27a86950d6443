import { Tensor } from '@cg/tensor-core';
import { flatGroupIndex, flatWorkgroups, Params, runKernel } from '../runtime.js';

/**
 * Elementwise one-input ops. `wgsl` is an expression in `x` and the f32
 * parameter `p`; `ref` is the float64 reference written from the math.
 */
interface UnaryDef {
  wgsl: string;
  ref: (x: number, p: number) => number;
}

export const UNARY_OPS = {
  neg: { wgsl: '-x', ref: (x) => -x },
  abs: { wgsl: 'abs(x)', ref: (x) => Math.abs(x) },
  square: { wgsl: 'x * x', ref: (x) => x * x },
  sqrt: { wgsl: 'sqrt(x)', ref: (x) => Math.sqrt(x) },
  exp: { wgsl: 'exp(x)', ref: (x) => Math.exp(x) },
  log: { wgsl: 'log(x)', ref: (x) => Math.log(x) },
  relu: { wgsl: 'max(x, 0.0)', ref: (x) => Math.max(x, 0) },
  leakyRelu: { wgsl: 'select(p * x, x, x > 0.0)', ref: (x, p) => (x > 0 ? x : p * x) },
  // exp of -2|x| never overflows, unlike the textbook (e^2x - 1) / (e^2x + 1).
  tanh: { wgsl: 'sign(x) * (1.0 - exp(-2.0 * abs(x))) / (1.0 + exp(-2.0 * abs(x)))', ref: (x) => Math.tanh(x) },
  sigmoid: {
    wgsl: 'select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0)',
    ref: (x) => 1 / (1 + Math.exp(-x)),
  },
  scale: { wgsl: 'p * x', ref: (x, p) => p * x },
  addScalar: { wgsl: 'x + p', ref: (x, p) => x + p },
  fill: { wgsl: 'p + 0.0 * x', ref: (_x, p) => p },
} satisfies Record<string, UnaryDef>;

export type UnaryOp = keyof typeof UNARY_OPS;

const PER_THREAD = 4;
const WG = 64;

/** y = op(x) elementwise. */
export function unary(op: UnaryOp, x: Tensor, p = 0): Tensor {
  const y = Tensor.empty(x.device, x.shape);
  unaryInto(op, x, y, p);
  return y;
}

/** Writes op(x) into `y` (same size); lets in-place updates reuse buffers. */
export function unaryInto(op: UnaryOp, x: Tensor, y: Tensor, p = 0): void {
  const def: UnaryDef = UNARY_OPS[op];
  runKernel({
    op,
    key: '',
    wgsl: () => /* wgsl */ `
struct P { n: u32, p: f32 }
@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read_write> ys: array<f32>;
@group(0) @binding(2) var<uniform> u: P;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = ((${flatGroupIndex}) * ${WG}u + lid) * ${PER_THREAD}u;
  let p = u.p;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let i = base + k;
    if (i < u.n) {
      let x = xs[i];
      ys[i] = ${def.wgsl};
    }
  }
}`,
    inputs: [x],
    outputs: [y],
    params: new Params().u32(x.size).f32(p),
    workgroups: flatWorkgroups(x.size, WG * PER_THREAD),
  });
}

export const neg = (x: Tensor) => unary('neg', x);
export const abs = (x: Tensor) => unary('abs', x);
export const square = (x: Tensor) => unary('square', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const relu = (x: Tensor) => unary('relu', x);
export const leakyRelu = (x: Tensor, slope = 0.2) => unary('leakyRelu', x, slope);
export const tanh = (x: Tensor) => unary('tanh', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const scale = (x: Tensor, s: number) => unary('scale', x, s);
export const addScalar = (x: Tensor, s: number) => unary('addScalar', x, s);

/** Float64 reference. */
export function unaryRef(op: UnaryOp, x: ArrayLike<number>, p = 0): Float64Array {
  const f: UnaryDef['ref'] = UNARY_OPS[op].ref;
  return Float64Array.from(x, (v) => f(v, p));
}
