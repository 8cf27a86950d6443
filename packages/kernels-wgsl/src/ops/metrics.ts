import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { flatGroupIndex, flatWorkgroups, Params, runKernel, sameDevice } from '../runtime.js';
import { expectSameShape } from '../shape.js';
import { mean } from './reduce.js';

/*
 * Image-quality kernels for CycleGAN's diagnostics (mode collapse, loss of detail, misalignment). All work on
 * NCHW f32 batches and keep their results on the GPU; the callers read back only the final scalars.
 *
 *   luminance         ITU-R 601 luma (PIL's convert('L') weights) of RGB planes, with an affine rescale.
 *   laplacian         3×3 4-neighbour Laplacian per plane, replicate borders.
 *   sobelMagnitude    sqrt(gx² + gy²) of the unnormalised 3×3 Sobel pair, replicate borders.
 *   planeMoments      per-plane mean and population variance (two passes over the plane, no E[x²] − E[x]²).
 *   ssim / ssimMap    SSIM with an 11-tap Gaussian window (σ = 1.5, Wang et al. 2004), replicate borders.
 *   pairwiseDistance  [N, M] mean-L1 or RMS distances between flattened images (one workgroup per pair).
 *   meanAbsDiff       per-image mean |a − b|.
 *   absDiffMap        per-pixel channel-mean |a − b|: the cycle-error map.
 *   colorMap          per-pixel viridis/inferno colouring of a one-channel map.
 *
 * Sizes are uniforms, so one pipeline per op serves every shape (baked sizes made LLVM unroll loops and
 * compile slowly on lavapipe). Each op has an independent float64 reference (`…Ref`) written from the math.
 */

const WG = 64;
const PER_THREAD = 4;
const RED_WG = 128;

function expectImages(op: string, name: string, x: Tensor): [number, number, number, number] {
  if (x.rank !== 4 || x.shape.some((d) => d < 1)) {
    throw new ShapeError(
      `${op}: ${name} must be [N,C,H,W] with every dimension ≥ 1 (got ${name} ${fmtShape(x.shape)})`,
    );
  }
  return x.shape as unknown as [number, number, number, number];
}

/** Per-thread Kahan sum then a workgroup tree; `treeSum` returns the workgroup's total in every thread. */
const TREE = /* wgsl */ `
var<workgroup> partial: array<f32, ${RED_WG}>;
fn treeSum(lid: u32, v: f32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = ${RED_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}`;

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
    wgsl: () => /* wgsl */ `
struct P { n: u32, hw: u32, c: u32, scale: f32, shift: f32 }
@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read_write> ys: array<f32>;
@group(0) @binding(2) var<uniform> u: P;
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
    params: new Params().u32(n, H * W, C).f32(scale, shift),
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
    wgsl: () => /* wgsl */ `
struct P { n: u32, h: u32, w: u32 }
@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read_write> ys: array<f32>;
@group(0) @binding(2) var<uniform> u: P;
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
    params: new Params().u32(n, H, W),
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

// ---- per-plane moments ------------------------------------------------------------------------------------

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
    wgsl: () => /* wgsl */ `
struct P { planes: u32, hw: u32 }
@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read_write> means: array<f32>;
@group(0) @binding(2) var<storage, read_write> vars: array<f32>;
@group(0) @binding(3) var<uniform> u: P;
${TREE}
@compute @workgroup_size(${RED_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = ${flatGroupIndex};
  // Uniform control flow for the barriers: out-of-range groups still run the tree, then skip the write.
  let valid = g < u.planes;
  let base = select(0u, g, valid) * u.hw;
  var s = 0.0;
  var c = 0.0;
  for (var i = lid; i < u.hw; i += ${RED_WG}u) {
    let y = xs[base + i] - c;
    let t = s + y;
    c = (t - s) - y;
    s = t;
  }
  let mu = treeSum(lid, s) / f32(u.hw);
  s = 0.0;
  c = 0.0;
  for (var i = lid; i < u.hw; i += ${RED_WG}u) {
    let d = xs[base + i] - mu;
    let y = d * d - c;
    let t = s + y;
    c = (t - s) - y;
    s = t;
  }
  let sigma2 = treeSum(lid, s) / f32(u.hw);
  if (valid && lid == 0u) {
    means[g] = mu;
    vars[g] = sigma2;
  }
}`,
    inputs: [x],
    outputs: [m, v],
    params: new Params().u32(planes, H * W),
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

// ---- SSIM -------------------------------------------------------------------------------------------------

/** Gaussian window of Wang et al. (2004): σ = 1.5, 11 taps (radius 5), normalised to sum 1. */
export const SSIM_SIGMA = 1.5;
export const SSIM_RADIUS = 5;

export function ssimWindow(): number[] {
  const w = Array.from({ length: 2 * SSIM_RADIUS + 1 }, (_, k) =>
    Math.exp(-((k - SSIM_RADIUS) ** 2) / (2 * SSIM_SIGMA ** 2)),
  );
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
}

export interface SsimOptions {
  /** L, the dynamic range of the values: C1 = (k1·L)², C2 = (k2·L)². */
  dataRange?: number;
  k1?: number;
  k2?: number;
}

/**
 * Per-pixel SSIM of x and y [N, C, H, W] over a Gaussian window (σ 1.5, 11×11, replicate borders):
 * ((2 μx μy + C1)(2 σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)). Two separable passes: horizontal
 * blurs of x, y, x², y², xy into a [N·C, 5, H, W] scratch tensor, then vertical blurs and the formula.
 */
export function ssimMap(x: Tensor, y: Tensor, { dataRange = 1, k1 = 0.01, k2 = 0.03 }: SsimOptions = {}): Tensor {
  sameDevice('ssim', x, y);
  const [N, C, H, W] = expectImages('ssim', 'x', x);
  expectSameShape('ssim', x, y, ['x', 'y']);
  if (!(dataRange > 0)) throw new ShapeError(`ssim: dataRange must be positive (got ${dataRange})`);
  const planes = N * C;
  const n = planes * H * W;
  const taps = ssimWindow()
    .map((v) => v.toPrecision(9))
    .join(', ');
  const header = (bindings: string) => /* wgsl */ `
struct P { n: u32, h: u32, w: u32, c1: f32, c2: f32 }
${bindings}
const R = ${SSIM_RADIUS};
const TAPS = array<f32, ${2 * SSIM_RADIUS + 1}>(${taps});`;
  const scratch = Tensor.empty(x.device, [planes, 5, H, W]);
  const params = new Params().u32(n, H, W).f32((k1 * dataRange) ** 2, (k2 * dataRange) ** 2);
  runKernel({
    op: 'ssimRows',
    key: '',
    wgsl: () => /* wgsl */ `
${header(`@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read> ys: array<f32>;
@group(0) @binding(2) var<storage, read_write> st: array<f32>;
@group(0) @binding(3) var<uniform> u: P;`)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (${flatGroupIndex}) * ${WG}u + lid;
  if (i >= u.n) { return; }
  let hw = u.h * u.w;
  let plane = i / hw;
  let p = i % hw;
  let row = plane * hw + (p / u.w) * u.w;
  let xx = i32(p % u.w);
  var m = vec4f(0.0);
  var mxy = 0.0;
  for (var k = -R; k <= R; k++) {
    let j = row + u32(clamp(xx + k, 0, i32(u.w) - 1));
    let a = xs[j];
    let b = ys[j];
    let t = TAPS[k + R];
    m += t * vec4f(a, b, a * a, b * b);
    mxy += t * a * b;
  }
  let o = plane * 5u * hw + p;
  st[o] = m.x;
  st[o + hw] = m.y;
  st[o + 2u * hw] = m.z;
  st[o + 3u * hw] = m.w;
  st[o + 4u * hw] = mxy;
}`,
    inputs: [x, y],
    outputs: [scratch],
    params,
    workgroups: flatWorkgroups(n, WG),
  });
  const out = Tensor.empty(x.device, x.shape);
  runKernel({
    op: 'ssimCols',
    key: '',
    wgsl: () => /* wgsl */ `
${header(`@group(0) @binding(0) var<storage, read> st: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: P;`)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (${flatGroupIndex}) * ${WG}u + lid;
  if (i >= u.n) { return; }
  let hw = u.h * u.w;
  let plane = i / hw;
  let p = i % hw;
  let yy = i32(p / u.w);
  let col = plane * 5u * hw + p % u.w;
  var m = vec4f(0.0);
  var mxy = 0.0;
  for (var k = -R; k <= R; k++) {
    let j = col + u32(clamp(yy + k, 0, i32(u.h) - 1)) * u.w;
    let t = TAPS[k + R];
    m += t * vec4f(st[j], st[j + hw], st[j + 2u * hw], st[j + 3u * hw]);
    mxy += t * st[j + 4u * hw];
  }
  let mx = m.x;
  let my = m.y;
  let vx = m.z - mx * mx;
  let vy = m.w - my * my;
  let cxy = mxy - mx * my;
  out[i] = ((2.0 * mx * my + u.c1) * (2.0 * cxy + u.c2)) / ((mx * mx + my * my + u.c1) * (vx + vy + u.c2));
}`,
    inputs: [scratch],
    outputs: [out],
    params,
    workgroups: flatWorkgroups(n, WG),
  });
  scratch.dispose();
  return out;
}

/** Mean SSIM of every plane: x, y [N, C, H, W] → [N, C]. */
export function ssim(x: Tensor, y: Tensor, options: SsimOptions = {}): Tensor {
  const map = ssimMap(x, y, options);
  const s = mean(map, [2, 3]);
  map.dispose();
  return s;
}

/** Float64 reference: the 2-D Gaussian window applied directly (not separably), clamped coordinates. */
export function ssimRef(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  shape: Shape,
  { dataRange = 1, k1 = 0.01, k2 = 0.03 }: SsimOptions = {},
): { map: Float64Array; mean: Float64Array } {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const r = SSIM_RADIUS;
  const g1 = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-((k - r) ** 2) / (2 * SSIM_SIGMA ** 2)));
  const win: number[][] = g1.map((a) => g1.map((b) => a * b));
  const total = win.flat().reduce((a, b) => a + b, 0);
  const c1 = (k1 * dataRange) ** 2;
  const c2 = (k2 * dataRange) ** 2;
  const map = new Float64Array(N * C * hw);
  const meanOut = new Float64Array(N * C);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi - 1);
  for (let p = 0; p < N * C; p++) {
    let acc = 0;
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        let mx = 0;
        let my = 0;
        let sxx = 0;
        let syy = 0;
        let sxy = 0;
        for (let di = -r; di <= r; di++) {
          for (let dj = -r; dj <= r; dj++) {
            const w = win[di + r][dj + r] / total;
            const at = p * hw + clamp(i + di, H) * W + clamp(j + dj, W);
            mx += w * x[at];
            my += w * y[at];
            sxx += w * x[at] * x[at];
            syy += w * y[at] * y[at];
            sxy += w * x[at] * y[at];
          }
        }
        const vx = sxx - mx * mx;
        const vy = syy - my * my;
        const cxy = sxy - mx * my;
        const s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
        map[p * hw + i * W + j] = s;
        acc += s;
      }
    }
    meanOut[p] = acc / hw;
  }
  return { map, mean: meanOut };
}

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
    wgsl: () => /* wgsl */ `
struct P { pairs: u32, n: u32, m: u32, d: u32 }
@group(0) @binding(0) var<storage, read> xs: array<f32>;
${self ? '' : '@group(0) @binding(1) var<storage, read> ys: array<f32>;'}
@group(0) @binding(${self ? 1 : 2}) var<storage, read_write> out: array<f32>;
@group(0) @binding(${self ? 2 : 3}) var<uniform> u: P;
${TREE}
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
    let y = ${diff} - c;
    let t = s + y;
    c = (t - s) - y;
    s = t;
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
    params: new Params().u32(pairs, N, M, D),
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
    wgsl: () => /* wgsl */ `
struct P { n: u32, d: u32 }
@group(0) @binding(0) var<storage, read> xa: array<f32>;
@group(0) @binding(1) var<storage, read> xb: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: P;
${TREE}
@compute @workgroup_size(${RED_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = ${flatGroupIndex};
  let valid = g < u.n;
  let base = select(0u, g, valid) * u.d;
  var s = 0.0;
  var c = 0.0;
  for (var k = lid; k < u.d; k += ${RED_WG}u) {
    let y = abs(xa[base + k] - xb[base + k]) - c;
    let t = s + y;
    c = (t - s) - y;
    s = t;
  }
  let total = treeSum(lid, s);
  if (valid && lid == 0u) { out[g] = total / f32(u.d); }
}`,
    inputs: [a, b],
    outputs: [out],
    params: new Params().u32(N, D),
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
    wgsl: () => /* wgsl */ `
struct P { n: u32, hw: u32, c: u32 }
@group(0) @binding(0) var<storage, read> xa: array<f32>;
@group(0) @binding(1) var<storage, read> xb: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: P;
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
    params: new Params().u32(n, H * W, C),
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

// ---- colour maps ------------------------------------------------------------------------------------------

export type ColorMapName = 'inferno' | 'viridis';

/**
 * matplotlib's perceptually uniform maps as degree-6 polynomials per channel (Matt Zucker's least-squares fits,
 * within ~0.02 of the 256-entry tables), coefficients c0 … c6 of [r, g, b]. inferno runs black → yellow, so a
 * zero error is black; viridis runs purple → yellow.
 */
export const COLOR_MAPS: Record<ColorMapName, readonly (readonly [number, number, number])[]> = {
  inferno: [
    [0.0002189403691192265, 0.001651004631001012, -0.01948089843709184],
    [0.1065134194856116, 0.5639564367884091, 3.932712388889277],
    [11.60249308247187, -3.972853965665698, -15.9423941062914],
    [-41.70399613139459, 17.43639888205313, 44.35414519872813],
    [77.162935699427, -33.40235894210092, -81.80730925738993],
    [-71.31942824499214, 32.62606426397723, 73.20951985803202],
    [25.13112622477341, -12.24266895238567, -23.07032500287172],
  ],
  viridis: [
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
  ],
};

export interface ColorMapOptions {
  /** Values at or below `lo` get the map's first colour, at or above `hi` its last. */
  lo?: number;
  hi?: number;
  map?: ColorMapName;
}

/** x [N, 1, H, W] → RGB [N, 3, H, W] in [0, 1]: map(clamp((x − lo) / (hi − lo), 0, 1)), clamped to [0, 1]. */
export function colorMap(x: Tensor, { lo = 0, hi = 1, map = 'inferno' }: ColorMapOptions = {}): Tensor {
  const op = 'colorMap';
  const [N, C, H, W] = expectImages(op, 'x', x);
  if (C !== 1) throw new ShapeError(`${op}: x must have one channel (got x ${fmtShape(x.shape)})`);
  if (!(hi > lo)) throw new ShapeError(`${op}: need hi > lo (got lo ${lo}, hi ${hi})`);
  const coeffs = COLOR_MAPS[map];
  if (!coeffs) throw new ShapeError(`${op}: unknown map '${map}' (expected ${Object.keys(COLOR_MAPS).join(' or ')})`);
  const n = N * H * W;
  const out = Tensor.empty(x.device, [N, 3, H, W]);
  const vec = (c: readonly number[]) => `vec3f(${c.map((v) => v.toPrecision(12)).join(', ')})`;
  // Horner's scheme from the highest coefficient down.
  const poly = coeffs.slice(0, -1).reduceRight((acc, c) => `(${vec(c)} + t * ${acc})`, vec(coeffs[coeffs.length - 1]));
  runKernel({
    op,
    key: map,
    wgsl: () => /* wgsl */ `
struct P { n: u32, hw: u32, lo: f32, inv: f32 }
@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: P;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (${flatGroupIndex}) * ${WG}u + lid;
  if (i >= u.n) { return; }
  // NaN fails the clamp's comparisons on some adapters; select() maps it to 0 first.
  let raw = (xs[i] - u.lo) * u.inv;
  let t = clamp(select(0.0, raw, raw == raw), 0.0, 1.0);
  let rgb = clamp(${poly}, vec3f(0.0), vec3f(1.0));
  let o = (i / u.hw) * 3u * u.hw + i % u.hw;
  out[o] = rgb.x;
  out[o + u.hw] = rgb.y;
  out[o + 2u * u.hw] = rgb.z;
}`,
    inputs: [x],
    outputs: [out],
    params: new Params().u32(n, H * W).f32(lo, 1 / (hi - lo)),
    workgroups: flatWorkgroups(n, WG),
  });
  return out;
}

/** The colour of t in [0, 1] (clamped), as [r, g, b] in [0, 1]. */
export function colorAt(map: ColorMapName, t: number): [number, number, number] {
  const c = COLOR_MAPS[map];
  const tt = Number.isNaN(t) ? 0 : Math.min(1, Math.max(0, t));
  return [0, 1, 2].map((k) => {
    let v = 0;
    for (let i = c.length - 1; i >= 0; i--) v = v * tt + c[i][k];
    return Math.min(1, Math.max(0, v));
  }) as [number, number, number];
}

export function colorMapRef(
  x: ArrayLike<number>,
  shape: Shape,
  { lo = 0, hi = 1, map = 'inferno' }: ColorMapOptions = {},
) {
  const [N, , H, W] = shape;
  const hw = H * W;
  const out = new Float64Array(N * 3 * hw);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < hw; p++) {
      const rgb = colorAt(map, (x[n * hw + p] - lo) / (hi - lo));
      for (let k = 0; k < 3; k++) out[(n * 3 + k) * hw + p] = rgb[k];
    }
  }
  return out;
}
