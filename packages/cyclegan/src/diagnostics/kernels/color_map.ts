import { flatGroupIndex, flatWorkgroups, runKernel } from '@cg/kernels-wgsl';
import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { expectImages, WG } from './common.js';

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
    decl: { inputs: ['xs'], outputs: ['out'], uniforms: { n: 'u32', hw: 'u32', lo: 'f32', inv: 'f32' } },
    wgsl: () => /* wgsl */ `
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
    uniforms: { n, hw: H * W, lo, inv: 1 / (hi - lo) },
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
