import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { flatGroupIndex, flatWorkgroups, runKernel } from '../runtime.js';
import { padTo, sizeOf, stridesOf } from '../shape.js';
import { kahanAdd, workgroupSum } from '../wgsl_reduce.js';

/**
 * Sum and mean over all elements or over chosen axes. Accuracy: every
 * thread Kahan-sums a short run, then a workgroup tree combines the runs,
 * then (for whole-tensor sums) further passes combine workgroup partials:
 * the error grows with log(n), not n, so 10^7 elements stay accurate.
 */

const WG = 256;
const PER_THREAD = 8;
const MAX_RANK = 8;

/** Sum of all elements times `scale`, as a one-element tensor of shape []. */
export function sumAll(x: Tensor, scale = 1): Tensor {
  let current = x;
  let n = x.size;
  for (;;) {
    const groups = Math.ceil(Math.max(n, 1) / (WG * PER_THREAD));
    const last = groups === 1;
    const out = Tensor.empty(x.device, last ? [] : [groups]);
    runKernel({
      op: 'sumAll',
      key: '',
      decl: { inputs: ['xs'], outputs: ['ys'], uniforms: { n: 'u32', scale: 'f32' } },
      wgsl: () => /* wgsl */ `
${workgroupSum(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = ${flatGroupIndex};
  let base = g * ${WG * PER_THREAD}u + lid;
  var s = 0.0;
  var c = 0.0;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let i = base + k * ${WG}u;
    if (i < u.n) { ${kahanAdd('s', 'c', 'xs[i]')} }
  }
  let total = treeSum(lid, s);
  if (lid == 0u && g < arrayLength(&ys)) { ys[g] = total * u.scale; }
}`,
      inputs: [current],
      outputs: [out],
      uniforms: { n, scale: last ? scale : 1 },
      workgroups: flatWorkgroups(groups, 1),
    });
    if (current !== x) current.dispose();
    current = out;
    n = groups;
    if (last) return out;
  }
}

export function meanAll(x: Tensor): Tensor {
  return sumAll(x, 1 / Math.max(x.size, 1));
}

function normalizeAxes(op: string, shape: Shape, axes: readonly number[]): number[] {
  const out = new Set<number>();
  for (const a of axes) {
    const ax = a < 0 ? a + shape.length : a;
    if (!Number.isInteger(ax) || ax < 0 || ax >= shape.length) {
      throw new ShapeError(`${op}: axis ${a} is out of range for ${fmtShape(shape)}`);
    }
    out.add(ax);
  }
  return [...out].sort((a, b) => a - b);
}

/** Output shape of a reduction over `axes`. */
export function reducedShape(shape: Shape, axes: readonly number[], keepDims: boolean): number[] {
  const set = new Set(axes);
  return keepDims ? shape.map((d, i) => (set.has(i) ? 1 : d)) : shape.filter((_, i) => !set.has(i));
}

/**
 * Sum over `axes` times `scale`. One workgroup per output element walks the
 * reduced elements (strided by thread, Kahan-summed) and combines them in a
 * tree; small reductions use one thread per output instead.
 */
export function sum(x: Tensor, axes?: readonly number[], keepDims = false, scale = 1): Tensor {
  if (!axes) {
    const s = sumAll(x, scale);
    if (!keepDims) return s;
    const r = s.reshape(x.shape.map(() => 1));
    s.dispose();
    return r;
  }
  const ax = normalizeAxes('sum', x.shape, axes);
  const outShape = reducedShape(x.shape, ax, keepDims);
  const out = Tensor.empty(x.device, outShape);
  const strides = stridesOf(x.shape);
  const kept = x.shape.map((_, i) => i).filter((i) => !ax.includes(i));
  const nOut = sizeOf(outShape);
  const nRed = sizeOf(ax.map((i) => x.shape[i]));
  const small = nRed <= 32;
  const wg = small ? 64 : WG;
  runKernel({
    op: 'sum',
    key: small ? 'thread' : 'group',
    decl: {
      inputs: ['xs'],
      outputs: ['ys'],
      uniforms: {
        nOut: 'u32',
        nRed: 'u32',
        keptRank: 'u32',
        redRank: 'u32',
        scale: 'f32',
        keptShape: 'u32[8]',
        keptStride: 'u32[8]',
        redShape: 'u32[8]',
        redStride: 'u32[8]',
      },
    },
    wgsl: () => /* wgsl */ `
${small ? '' : workgroupSum(wg)}
fn baseOffset(o: u32) -> u32 {
  var rest = o;
  var off = 0u;
  for (var d = i32(u.keptRank) - 1; d >= 0; d--) {
    let dim = u.keptShape[d / 4][d % 4];
    off += (rest % dim) * u.keptStride[d / 4][d % 4];
    rest = rest / dim;
  }
  return off;
}
fn redOffset(r: u32) -> u32 {
  var rest = r;
  var off = 0u;
  for (var d = i32(u.redRank) - 1; d >= 0; d--) {
    let dim = u.redShape[d / 4][d % 4];
    off += (rest % dim) * u.redStride[d / 4][d % 4];
    rest = rest / dim;
  }
  return off;
}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
${
  small
    ? `  let o = (${flatGroupIndex}) * ${wg}u + lid;
  if (o >= u.nOut) { return; }
  let base = baseOffset(o);
  var s = 0.0;
  for (var r = 0u; r < u.nRed; r++) { s += xs[base + redOffset(r)]; }
  ys[o] = s * u.scale;`
    : `  let o = ${flatGroupIndex};
  if (o >= u.nOut) { return; }
  let base = baseOffset(o);
  var s = 0.0;
  var c = 0.0;
  for (var r = lid; r < u.nRed; r += ${wg}u) { ${kahanAdd('s', 'c', 'xs[base + redOffset(r)]')} }
  let total = treeSum(lid, s);
  if (lid == 0u) { ys[o] = total * u.scale; }`
}
}`,
    inputs: [x],
    outputs: [out],
    uniforms: {
      nOut,
      nRed,
      keptRank: kept.length,
      redRank: ax.length,
      scale,
      keptShape: padTo(
        kept.map((i) => x.shape[i]),
        MAX_RANK,
        1,
      ),
      keptStride: padTo(
        kept.map((i) => strides[i]),
        MAX_RANK,
      ),
      redShape: padTo(
        ax.map((i) => x.shape[i]),
        MAX_RANK,
        1,
      ),
      redStride: padTo(
        ax.map((i) => strides[i]),
        MAX_RANK,
      ),
    },
    workgroups: small ? flatWorkgroups(nOut, wg) : flatWorkgroups(nOut, 1),
  });
  return out;
}

export function mean(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  const ax = axes ? normalizeAxes('mean', x.shape, axes) : x.shape.map((_, i) => i);
  const n = sizeOf(ax.map((i) => x.shape[i]));
  return sum(x, axes, keepDims, 1 / Math.max(n, 1));
}

/** Float64 reference: sum over `axes` (all when omitted). */
export function sumRef(
  x: ArrayLike<number>,
  shape: Shape,
  axes?: readonly number[],
  keepDims = false,
): { data: Float64Array; shape: number[] } {
  const ax = axes ? normalizeAxes('sum', shape, axes) : shape.map((_, i) => i);
  const outShape = reducedShape(shape, ax, keepDims);
  const keptShape = reducedShape(shape, ax, true);
  const keptStrides = stridesOf(keptShape);
  const st = stridesOf(shape);
  const data = new Float64Array(sizeOf(outShape));
  for (let i = 0; i < x.length; i++) {
    let o = 0;
    for (let d = 0; d < shape.length; d++) {
      const c = Math.floor(i / st[d]) % shape[d];
      if (!ax.includes(d)) o += c * keptStrides[d];
    }
    data[o] += x[i];
  }
  return { data, shape: outShape };
}
