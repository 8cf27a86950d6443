import { flatGroupIndex, flatWorkgroups, kahanAdd, runKernel, workgroupSum } from '@cg/kernels-wgsl';
import { type Shape, Tensor } from '@cg/tensor-core';
import { expectImages, RED_WG } from './common.js';

/**
 * Mean and population variance of every H×W plane of x [N, C, H, W], each as [N, C]. One workgroup per plane
 * reads it twice (mean, then Σ(x − mean)²), so flat planes give exactly 0 instead of E[x²] − E[x]² noise.
 */
export function planeMoments(x: Tensor): { mean: Tensor; variance: Tensor } {
  const [N, C, H, W] = expectImages('planeMoments', 'x', x);
  const planes = N * C;
  const m = Tensor.empty(x.device, [N, C]);
  const v = Tensor.empty(x.device, [N, C]);
  runKernel({
    op: 'planeMoments',
    key: '',
    decl: { inputs: ['xs'], outputs: ['means', 'vars'], uniforms: { planes: 'u32', hw: 'u32' } },
    wgsl: () => /* wgsl */ `
${workgroupSum(RED_WG)}
@compute @workgroup_size(${RED_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = ${flatGroupIndex};
  // Uniform control flow for the barriers: out-of-range groups still run the tree, then skip the write.
  let valid = g < u.planes;
  let base = select(0u, g, valid) * u.hw;
  var s = 0.0;
  var c = 0.0;
  for (var i = lid; i < u.hw; i += ${RED_WG}u) { ${kahanAdd('s', 'c', 'xs[base + i]')} }
  let mu = treeSum(lid, s) / f32(u.hw);
  s = 0.0;
  c = 0.0;
  for (var i = lid; i < u.hw; i += ${RED_WG}u) {
    let d = xs[base + i] - mu;
    ${kahanAdd('s', 'c', 'd * d')}
  }
  let sigma2 = treeSum(lid, s) / f32(u.hw);
  if (valid && lid == 0u) {
    means[g] = mu;
    vars[g] = sigma2;
  }
}`,
    inputs: [x],
    outputs: [m, v],
    uniforms: { planes, hw: H * W },
    workgroups: flatWorkgroups(planes, 1),
  });
  return { mean: m, variance: v };
}

export function planeMomentsRef(x: ArrayLike<number>, shape: Shape): { mean: Float64Array; variance: Float64Array } {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const mean = new Float64Array(N * C);
  const variance = new Float64Array(N * C);
  for (let p = 0; p < N * C; p++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += x[p * hw + i];
    const mu = s / hw;
    let q = 0;
    for (let i = 0; i < hw; i++) q += (x[p * hw + i] - mu) ** 2;
    mean[p] = mu;
    variance[p] = q / hw;
  }
  return { mean, variance };
}
