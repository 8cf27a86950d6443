import {
  expectSameShape,
  flatGroupIndex,
  flatWorkgroups,
  kahanAdd,
  runKernel,
  sameDevice,
  workgroupSum,
} from '@cg/kernels-wgsl';
import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { expectImages, RED_WG, WG } from './common.js';

// ---- pairwise distances ------------------------------------------------------------------------------------

/** 'l1': mean |a − b| over the D elements of an image; 'l2': sqrt(mean (a − b)²), the RMS distance. */
export type DistanceMetric = 'l1' | 'l2';

function flatRows(op: string, name: string, t: Tensor): [number, number] {
  if (t.rank < 1 || t.shape[0] < 1 || t.size === 0) {
    throw new ShapeError(
      `${op}: ${name} must be [N, …] with N ≥ 1 and at least one element per row (got ${name} ${fmtShape(t.shape)})`,
    );
  }
  return [t.shape[0], t.size / t.shape[0]];
}

/**
 * Distances between every row of x [N, …] and every row of y [M, …] (rows flattened to D elements), as
 * [N, M]. With y omitted: x against itself, computing each unordered pair once (the matrix is symmetric,
 * its diagonal exactly 0). One workgroup per pair reduces the D differences (Kahan per thread, then a tree);
 * unlike the GEMM form ‖a‖² + ‖b‖² − 2a·b, nearly equal images (a collapsing generator) do not cancel.
 */
export function pairwiseDistance(x: Tensor, y?: Tensor, metric: DistanceMetric = 'l1'): Tensor {
  const op = 'pairwiseDistance';
  const [N, D] = flatRows(op, 'x', x);
  const self = y === undefined || y === x;
  let M = N;
  if (!self) {
    sameDevice(op, x, y);
    const [m, dy] = flatRows(op, 'y', y);
    if (dy !== D) {
      throw new ShapeError(
        `${op}: rows of x and y must have the same number of elements (got x ${fmtShape(x.shape)}, y ${fmtShape(y.shape)})`,
      );
    }
    M = m;
  }
  if (metric !== 'l1' && metric !== 'l2') throw new ShapeError(`${op}: metric must be 'l1' or 'l2' (got ${metric})`);
  const pairs = self ? (N * (N + 1)) / 2 : N * M;
  const out = Tensor.empty(x.device, [N, M]);
  const diff = metric === 'l1' ? 'abs(d)' : 'd * d';
  const finish = metric === 'l1' ? 'total / f32(u.d)' : 'sqrt(total / f32(u.d))';
  runKernel({
    op,
    key: `${self ? 'self' : 'cross'}|${metric}`,
    decl: {
      inputs: self ? ['xs'] : ['xs', 'ys'],
      outputs: ['out'],
      uniforms: { pairs: 'u32', n: 'u32', m: 'u32', d: 'u32' },
    },
    wgsl: () => /* wgsl */ `
${workgroupSum(RED_WG)}
@compute @workgroup_size(${RED_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = ${flatGroupIndex};
  let valid = g < u.pairs;
  let q = select(0u, g, valid);
${
  self
    ? `  // Lower triangle with diagonal, row by row: pair q is (i, j), j <= i, q = i(i+1)/2 + j.
  var i = u32((sqrt(8.0 * f32(q) + 1.0) - 1.0) * 0.5);
  loop { if (i > 0u && i * (i + 1u) / 2u > q) { i -= 1u; } else { break; } }
  loop { if ((i + 1u) * (i + 2u) / 2u <= q) { i += 1u; } else { break; } }
  let j = q - i * (i + 1u) / 2u;`
    : `  let i = q / u.m;
  let j = q % u.m;`
}
  let a = i * u.d;
  let b = j * u.d;
  var s = 0.0;
  var c = 0.0;
  for (var k = lid; k < u.d; k += ${RED_WG}u) {
    let d = xs[a + k] - ${self ? 'xs' : 'ys'}[b + k];
    ${kahanAdd('s', 'c', diff)}
  }
  let total = treeSum(lid, s);
  if (valid && lid == 0u) {
    let v = ${finish};
    out[i * u.m + j] = v;
${self ? '    out[j * u.m + i] = v;' : ''}
  }
}`,
    inputs: self ? [x] : [x, y],
    outputs: [out],
    uniforms: { pairs, n: N, m: M, d: D },
    workgroups: flatWorkgroups(pairs, 1),
  });
  return out;
}

export function pairwiseDistanceRef(
  x: ArrayLike<number>,
  n: number,
  y: ArrayLike<number> = x,
  m = n,
  metric: DistanceMetric = 'l1',
): Float64Array {
  const d = x.length / n;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) {
        const v = x[i * d + k] - y[j * d + k];
        s += metric === 'l1' ? Math.abs(v) : v * v;
      }
      out[i * m + j] = metric === 'l1' ? s / d : Math.sqrt(s / d);
    }
  }
  return out;
}

// ---- per-image and per-pixel differences ------------------------------------------------------------------

/** Mean |a − b| over each image's elements: a, b [N, …] → [N]. One workgroup per image. */
export function meanAbsDiff(a: Tensor, b: Tensor): Tensor {
  const op = 'meanAbsDiff';
  sameDevice(op, a, b);
  expectSameShape(op, a, b);
  const [N, D] = flatRows(op, 'a', a);
  const out = Tensor.empty(a.device, [N]);
  runKernel({
    op,
    key: '',
    decl: { inputs: ['xa', 'xb'], outputs: ['out'], uniforms: { n: 'u32', d: 'u32' } },
    wgsl: () => /* wgsl */ `
${workgroupSum(RED_WG)}
@compute @workgroup_size(${RED_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = ${flatGroupIndex};
  let valid = g < u.n;
  let base = select(0u, g, valid) * u.d;
  var s = 0.0;
  var c = 0.0;
  for (var k = lid; k < u.d; k += ${RED_WG}u) { ${kahanAdd('s', 'c', 'abs(xa[base + k] - xb[base + k])')} }
  let total = treeSum(lid, s);
  if (valid && lid == 0u) { out[g] = total / f32(u.d); }
}`,
    inputs: [a, b],
    outputs: [out],
    uniforms: { n: N, d: D },
    workgroups: flatWorkgroups(N, 1),
  });
  return out;
}

export function meanAbsDiffRef(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  const d = a.length / n;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += Math.abs(a[i * d + k] - b[i * d + k]);
    out[i] = s / d;
  }
  return out;
}

/** Per pixel, the mean over channels of |a − b|: a, b [N, C, H, W] → [N, 1, H, W]. */
export function absDiffMap(a: Tensor, b: Tensor): Tensor {
  const op = 'absDiffMap';
  sameDevice(op, a, b);
  const [N, C, H, W] = expectImages(op, 'a', a);
  expectSameShape(op, a, b);
  const n = N * H * W;
  const out = Tensor.empty(a.device, [N, 1, H, W]);
  runKernel({
    op,
    key: '',
    decl: { inputs: ['xa', 'xb'], outputs: ['out'], uniforms: { n: 'u32', hw: 'u32', c: 'u32' } },
    wgsl: () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (${flatGroupIndex}) * ${WG}u + lid;
  if (i >= u.n) { return; }
  let base = (i / u.hw) * u.c * u.hw + i % u.hw;
  var s = 0.0;
  for (var k = 0u; k < u.c; k++) { s += abs(xa[base + k * u.hw] - xb[base + k * u.hw]); }
  out[i] = s / f32(u.c);
}`,
    inputs: [a, b],
    outputs: [out],
    uniforms: { n, hw: H * W, c: C },
    workgroups: flatWorkgroups(n, WG),
  });
  return out;
}

export function absDiffMapRef(a: ArrayLike<number>, b: ArrayLike<number>, shape: Shape): Float64Array {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const out = new Float64Array(N * hw);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < hw; p++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += Math.abs(a[(n * C + c) * hw + p] - b[(n * C + c) * hw + p]);
      out[n * hw + p] = s / C;
    }
  }
  return out;
}
