import { type Shape, Tensor } from '@cg/tensor-core';
import { flatGroupIndex, flatWorkgroups, runKernel, sameDevice } from '../runtime.js';
import { broadcastShapes, broadcastStrides, padTo, sizeOf, stridesOf } from '../shape.js';

/**
 * Elementwise two-input ops with NumPy broadcasting (rank ≤ 8). `wgsl` is an
 * expression in `a`, `b` and the f32 parameter `p`. Backward kernels of
 * activations live here too: they are binary maps of (dy, x or y).
 */
interface BinaryDef {
  wgsl: string;
  ref: (a: number, b: number, p: number) => number;
}

export const BINARY_OPS = {
  add: { wgsl: 'a + b', ref: (a, b) => a + b },
  sub: { wgsl: 'a - b', ref: (a, b) => a - b },
  mul: { wgsl: 'a * b', ref: (a, b) => a * b },
  div: { wgsl: 'a / b', ref: (a, b) => a / b },
  maximum: { wgsl: 'max(a, b)', ref: (a, b) => Math.max(a, b) },
  minimum: { wgsl: 'min(a, b)', ref: (a, b) => Math.min(a, b) },
  /** a + p·b: fused axpy, e.g. accumulating a scaled gradient. */
  addScaled: { wgsl: 'a + p * b', ref: (a, b, p) => a + p * b },
} satisfies Record<string, BinaryDef>;

export type BinaryOp = keyof typeof BINARY_OPS;

const MAX_RANK = 8;
const WG = 64;
const PER_THREAD = 4;

export function binary(op: BinaryOp, a: Tensor, b: Tensor, p = 0): Tensor {
  return binaryMap(op, BINARY_OPS[op].wgsl, a, b, p);
}

/**
 * Runs any elementwise expression of (a, b, p) with broadcasting. Used by
 * the BINARY_OPS table and by backward rules of other op families.
 */
export function binaryMap(op: string, expr: string, a: Tensor, b: Tensor, p = 0): Tensor {
  sameDevice(op, a, b);
  const outShape = broadcastShapes(op, a.shape, b.shape);
  const out = Tensor.empty(a.device, outShape);
  const n = out.size;
  const same = sameShape(a.shape, outShape) && sameShape(b.shape, outShape);
  if (same) {
    runKernel({
      op,
      key: `same|${expr}`,
      decl: { inputs: ['as_', 'bs'], outputs: ['ys'], uniforms: { n: 'u32', p: 'f32' } },
      wgsl: () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = ((${flatGroupIndex}) * ${WG}u + lid) * ${PER_THREAD}u;
  let p = u.p;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let i = base + k;
    if (i < u.n) {
      let a = as_[i];
      let b = bs[i];
      ys[i] = ${expr};
    }
  }
}`,
      inputs: [a, b],
      outputs: [out],
      uniforms: { n, p },
      workgroups: flatWorkgroups(n, WG * PER_THREAD),
    });
    return out;
  }
  const rank = outShape.length;
  runKernel({
    op,
    key: `bcast|${expr}`,
    decl: {
      inputs: ['as_', 'bs'],
      outputs: ['ys'],
      uniforms: { n: 'u32', rank: 'u32', p: 'f32', shape: 'u32[8]', sa: 'u32[8]', sb: 'u32[8]' },
    },
    wgsl: () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (${flatGroupIndex}) * ${WG}u + lid;
  if (i >= u.n) { return; }
  var rest = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let dim = u.shape[d / 4][d % 4];
    let c = rest % dim;
    rest = rest / dim;
    ia += c * u.sa[d / 4][d % 4];
    ib += c * u.sb[d / 4][d % 4];
  }
  let a = as_[ia];
  let b = bs[ib];
  let p = u.p;
  ys[i] = ${expr};
}`,
    inputs: [a, b],
    outputs: [out],
    uniforms: {
      n,
      rank,
      p,
      shape: padTo(outShape, MAX_RANK, 1),
      sa: padTo(broadcastStrides(a.shape, outShape), MAX_RANK),
      sb: padTo(broadcastStrides(b.shape, outShape), MAX_RANK),
    },
    workgroups: flatWorkgroups(n, WG),
  });
  return out;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export const add = (a: Tensor, b: Tensor) => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor) => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor) => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor) => binary('div', a, b);
export const maximum = (a: Tensor, b: Tensor) => binary('maximum', a, b);
export const minimum = (a: Tensor, b: Tensor) => binary('minimum', a, b);
export const addScaled = (a: Tensor, b: Tensor, s: number) => binary('addScaled', a, b, s);

/** Float64 reference with broadcasting. */
export function binaryRef(
  op: BinaryOp,
  a: ArrayLike<number>,
  aShape: Shape,
  b: ArrayLike<number>,
  bShape: Shape,
  p = 0,
): { data: Float64Array; shape: number[] } {
  const f: BinaryDef['ref'] = BINARY_OPS[op].ref;
  const shape = broadcastShapes(op, aShape, bShape);
  const sa = broadcastStrides(aShape, shape);
  const sb = broadcastStrides(bShape, shape);
  const st = stridesOf(shape);
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) {
    let ia = 0;
    let ib = 0;
    for (let d = 0; d < shape.length; d++) {
      const c = Math.floor(i / st[d]) % shape[d];
      ia += c * sa[d];
      ib += c * sb[d];
    }
    data[i] = f(a[ia], b[ib], p);
  }
  return { data, shape };
}
