import { expectSameShape, flatGroupIndex, flatWorkgroups, mean, runKernel, sameDevice } from '@cg/kernels-wgsl';
import { type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { expectImages, WG } from './common.js';

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
  const header = /* wgsl */ `
const R = ${SSIM_RADIUS};
const TAPS = array<f32, ${2 * SSIM_RADIUS + 1}>(${taps});`;
  const scratch = Tensor.empty(x.device, [planes, 5, H, W]);
  const uniformDecl = { n: 'u32', h: 'u32', w: 'u32', c1: 'f32', c2: 'f32' } as const;
  const uniforms = { n, h: H, w: W, c1: (k1 * dataRange) ** 2, c2: (k2 * dataRange) ** 2 };
  runKernel({
    op: 'ssimRows',
    key: '',
    decl: { inputs: ['xs', 'ys'], outputs: ['st'], uniforms: uniformDecl },
    wgsl: () => /* wgsl */ `
${header}
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
    uniforms,
    workgroups: flatWorkgroups(n, WG),
  });
  const out = Tensor.empty(x.device, x.shape);
  runKernel({
    op: 'ssimCols',
    key: '',
    decl: { inputs: ['st'], outputs: ['out'], uniforms: uniformDecl },
    wgsl: () => /* wgsl */ `
${header}
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
    uniforms,
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
