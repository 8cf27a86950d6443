import { flatGroupIndex, flatWorkgroups, runKernel } from '@cg/kernels-wgsl';
import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { expectImages, WG } from './common.js';

const PER_THREAD = 4;

// ---- luminance -------------------------------------------------------------------------------------------

/** ITU-R BT.601 luma weights, as PIL's convert('L') documents them. */
export const LUMA_WEIGHTS = [0.299, 0.587, 0.114] as const;

export interface LuminanceOptions {
  /** y = scale · luma + shift; e.g. scale 0.5, shift 0.5 maps model outputs in [-1, 1] to [0, 1]. */
  scale?: number;
  shift?: number;
}

/** x: [N, 3|1, H, W] → [N, 1, H, W]: scale · (0.299 R + 0.587 G + 0.114 B) + shift (one channel: scale · x + shift). */
export function luminance(x: Tensor, { scale = 1, shift = 0 }: LuminanceOptions = {}): Tensor {
  const [N, C, H, W] = expectImages('luminance', 'x', x);
  if (C !== 1 && C !== 3) throw new ShapeError(`luminance: x must have 1 or 3 channels (got x ${fmtShape(x.shape)})`);
  const n = N * H * W;
  const y = Tensor.empty(x.device, [N, 1, H, W]);
  runKernel({
    op: 'luminance',
    key: '',
    decl: { inputs: ['xs'], outputs: ['ys'], uniforms: { n: 'u32', hw: 'u32', c: 'u32', scale: 'f32', shift: 'f32' } },
    wgsl: () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = ((${flatGroupIndex}) * ${WG}u + lid) * ${PER_THREAD}u;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let i = base + k;
    if (i >= u.n) { return; }
    let img = i / u.hw;
    let p = i % u.hw;
    let o = img * u.c * u.hw + p;
    var l = xs[o];
    if (u.c == 3u) {
      l = ${LUMA_WEIGHTS[0]} * xs[o] + ${LUMA_WEIGHTS[1]} * xs[o + u.hw] + ${LUMA_WEIGHTS[2]} * xs[o + 2u * u.hw];
    }
    ys[i] = u.scale * l + u.shift;
  }
}`,
    inputs: [x],
    outputs: [y],
    uniforms: { n, hw: H * W, c: C, scale, shift },
    workgroups: flatWorkgroups(n, WG * PER_THREAD),
  });
  return y;
}

export function luminanceRef(x: ArrayLike<number>, shape: Shape, { scale = 1, shift = 0 }: LuminanceOptions = {}) {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const out = new Float64Array(N * hw);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < hw; p++) {
      const at = (c: number) => x[(n * C + c) * hw + p];
      const l = C === 3 ? 0.299 * at(0) + 0.587 * at(1) + 0.114 * at(2) : at(0);
      out[n * hw + p] = scale * l + shift;
    }
  }
  return out;
}

// ---- 3×3 filters ------------------------------------------------------------------------------------------

export type Filter3x3 = 'laplacian' | 'sobelMagnitude';

/** The filter's value at the centre of a 3×3 neighbourhood `v[dy + 1][dx + 1]`, as WGSL over `v00 … v22`. */
const FILTER_WGSL: Record<Filter3x3, string> = {
  laplacian: 'v01 + v10 + v12 + v21 - 4.0 * v11',
  sobelMagnitude: `sqrt(gx * gx + gy * gy)`,
};

function filter3x3(kind: Filter3x3, x: Tensor): Tensor {
  const [N, C, H, W] = expectImages(kind, 'x', x);
  const n = N * C * H * W;
  const y = Tensor.empty(x.device, x.shape);
  runKernel({
    op: kind,
    key: '',
    decl: { inputs: ['xs'], outputs: ['ys'], uniforms: { n: 'u32', h: 'u32', w: 'u32' } },
    wgsl: () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (${flatGroupIndex}) * ${WG}u + lid;
  if (i >= u.n) { return; }
  let hw = u.h * u.w;
  let plane = (i / hw) * hw;
  let yy = i32((i % hw) / u.w);
  let xx = i32(i % u.w);
  // Replicate borders: clamp the neighbour coordinates into the plane.
  let r0 = u32(max(yy - 1, 0)) * u.w;
  let r1 = u32(yy) * u.w;
  let r2 = u32(min(yy + 1, i32(u.h) - 1)) * u.w;
  let c0 = u32(max(xx - 1, 0));
  let c1 = u32(xx);
  let c2 = u32(min(xx + 1, i32(u.w) - 1));
  let v00 = xs[plane + r0 + c0]; let v01 = xs[plane + r0 + c1]; let v02 = xs[plane + r0 + c2];
  let v10 = xs[plane + r1 + c0]; let v11 = xs[plane + r1 + c1]; let v12 = xs[plane + r1 + c2];
  let v20 = xs[plane + r2 + c0]; let v21 = xs[plane + r2 + c1]; let v22 = xs[plane + r2 + c2];
  let gx = (v02 + 2.0 * v12 + v22) - (v00 + 2.0 * v10 + v20);
  let gy = (v20 + 2.0 * v21 + v22) - (v00 + 2.0 * v01 + v02);
  ys[i] = ${FILTER_WGSL[kind]};
}`,
    inputs: [x],
    outputs: [y],
    uniforms: { n, h: H, w: W },
    workgroups: flatWorkgroups(n, WG),
  });
  return y;
}

/** Per plane of x [N, C, H, W]: up + down + left + right − 4·centre, replicating the border pixels. */
export const laplacian = (x: Tensor): Tensor => filter3x3('laplacian', x);
/**
 * Per plane: sqrt(gx² + gy²) with gx = [−1 0 1; −2 0 2; −1 0 1] ⋆ x (gy its transpose), unnormalised as
 * OpenCV's, replicate borders. A unit step edge answers 4.
 */
export const sobelMagnitude = (x: Tensor): Tensor => filter3x3('sobelMagnitude', x);

/** Float64 reference of either 3×3 filter, written as a correlation with the textbook kernels. */
export function filter3x3Ref(kind: Filter3x3, x: ArrayLike<number>, shape: Shape): Float64Array {
  const [N, C, H, W] = shape;
  const out = new Float64Array(N * C * H * W);
  const LAP = [
    [0, 1, 0],
    [1, -4, 1],
    [0, 1, 0],
  ];
  const SX = [
    [-1, 0, 1],
    [-2, 0, 2],
    [-1, 0, 1],
  ];
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi - 1);
  for (let p = 0; p < N * C; p++) {
    const at = (y: number, xx: number) => x[p * H * W + clamp(y, H) * W + clamp(xx, W)];
    for (let y = 0; y < H; y++) {
      for (let xx = 0; xx < W; xx++) {
        let a = 0;
        let gx = 0;
        let gy = 0;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const v = at(y + dy, xx + dx);
            a += LAP[dy + 1][dx + 1] * v;
            gx += SX[dy + 1][dx + 1] * v;
            gy += SX[dx + 1][dy + 1] * v;
          }
        }
        out[p * H * W + y * W + xx] = kind === 'laplacian' ? a : Math.hypot(gx, gy);
      }
    }
  }
  return out;
}
