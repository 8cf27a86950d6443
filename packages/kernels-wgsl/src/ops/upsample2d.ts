import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { kernelDecl, runKernel } from '../runtime.js';
import { ROW_PLANES_UNIFORMS, rowPlanesDispatch, rowPlanesMain } from './row_planes.js';

/**
 * Integer-factor spatial upsampling of NCHW tensors, nearest and bilinear
 * (PyTorch's align_corners=False). Forward and backward are both gathers:
 * backward visits, for each input element, the small window of outputs that
 * can read it and recomputes the forward's weights, so no float atomics and
 * the weights match the forward bit for bit. Sizes and the factor are
 * uniforms: one pipeline per mode and direction serves every shape.
 */

export type UpsampleMode = 'nearest' | 'bilinear';

interface Geometry {
  planes: number;
  H: number;
  W: number;
  S: number;
}

function geometry(op: string, xShape: Shape, scale: number, mode: UpsampleMode): Geometry {
  if (xShape.length !== 4 || xShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(`${op}: x must be [N,C,H,W] with every dimension ≥ 1 (got x ${fmtShape(xShape)})`);
  }
  if (!Number.isInteger(scale) || scale < 1) {
    throw new ShapeError(
      `${op}: scale must be a positive integer (expected 1, 2, 3, …, got ${scale}; x ${fmtShape(xShape)})`,
    );
  }
  if (mode !== 'nearest' && mode !== 'bilinear') {
    throw new ShapeError(`${op}: unknown mode (expected 'nearest' or 'bilinear', got ${JSON.stringify(mode)})`);
  }
  const [N, C, H, W] = xShape;
  const n = N * C * H * W * scale * scale;
  if (n >= 2 ** 31) throw new ShapeError(`${op}: output has ${n} elements, above the 2^31 - 1 limit`);
  return { planes: N * C, H, W, S: scale };
}

/** Output shape of upsampling `xShape` by `scale`. */
export function upsampled2dShape(xShape: Shape, scale: number): number[] {
  const [N, C, H, W] = xShape;
  return [N, C, H * scale, W * scale];
}

const DECL = kernelDecl({
  inputs: ['src'],
  outputs: ['dst'],
  uniforms: { H: 'i32', W: 'i32', S: 'i32', HO: 'i32', WO: 'i32', ...ROW_PLANES_UNIFORMS },
});

const header = /* wgsl */ `
struct Tap { i0: i32, i1: i32, l1: f32 }
// PyTorch's area_pixel_compute_source_index (align_corners=False), clamped at 0.
fn tap(o: i32, n: i32) -> Tap {
  let s = max((f32(o) + 0.5) / f32(u.S) - 0.5, 0.0);
  let i0 = min(i32(s), n - 1);
  return Tap(i0, min(i0 + 1, n - 1), s - f32(i0));
}
// Weight of input coordinate i in output coordinate o along one axis.
fn weight(o: i32, i: i32, n: i32) -> f32 {
  let t = tap(o, n);
  return select(0.0, 1.0 - t.l1, t.i0 == i) + select(0.0, t.l1, t.i1 == i);
}`;

// Forward rows r are output rows. Nearest strides input columns c and
// writes their S copies, so no column index is divided.
function forwardWgsl(mode: UpsampleMode): string {
  const body =
    mode === 'nearest'
      ? rowPlanesMain(
          `let srcRow = (p * u.H + r / u.S) * u.W;
    let dstRow = (p * u.HO + r) * u.WO;`,
          `let v = src[srcRow + c];
      for (var j = 0; j < u.S; j++) { dst[dstRow + c * u.S + j] = v; }`,
        )
      : rowPlanesMain(
          `let th = tap(r, u.H);
    let r0 = (p * u.H + th.i0) * u.W;
    let r1 = (p * u.H + th.i1) * u.W;
    let dstRow = (p * u.HO + r) * u.WO;`,
          `let tw = tap(c, u.W);
      let top = (1.0 - tw.l1) * src[r0 + tw.i0] + tw.l1 * src[r0 + tw.i1];
      let bot = (1.0 - tw.l1) * src[r1 + tw.i0] + tw.l1 * src[r1 + tw.i1];
      dst[dstRow + c] = (1.0 - th.l1) * top + th.l1 * bot;`,
        );
  return `${header}
${body}`;
}

// Backward rows r and columns c are input coordinates (h, w). An output o
// reads input i only if its source coordinate lies in [i - 1, i + 1), i.e.
// o in [S(i - 1/2) - 1/2, S(i + 3/2) - 1/2); the windows below are that
// range widened by one on each side (weights outside it are 0).
function backwardWgsl(mode: UpsampleMode): string {
  const setup = `let h = r;
    let dyPlane = p * u.HO * u.WO;
    let dxRow = (p * u.H + h) * u.W;`;
  const body =
    mode === 'nearest'
      ? rowPlanesMain(
          setup,
          `var s = 0.0;
      for (var a = 0; a < u.S; a++) {
        let row = dyPlane + (h * u.S + a) * u.WO + c * u.S;
        for (var b = 0; b < u.S; b++) { s += src[row + b]; }
      }
      dst[dxRow + c] = s;`,
        )
      : rowPlanesMain(
          `${setup}
    let oh0 = max(0, u.S * h - u.S / 2 - 1);
    let oh1 = min(u.HO - 1, u.S * h + u.S + u.S / 2 + 1);`,
          `let ow0 = max(0, u.S * c - u.S / 2 - 1);
      let ow1 = min(u.WO - 1, u.S * c + u.S + u.S / 2 + 1);
      var s = 0.0;
      for (var oh = oh0; oh <= oh1; oh++) {
        let a = weight(oh, h, u.H);
        if (a == 0.0) { continue; }
        var t = 0.0;
        for (var ow = ow0; ow <= ow1; ow++) { t += weight(ow, c, u.W) * src[dyPlane + oh * u.WO + ow]; }
        s += a * t;
      }
      dst[dxRow + c] = s;`,
        );
  return `${header}
${body}`;
}

/** One dispatch over every plane; `rows` × `cols` is what each plane's invocations walk. */
function launch(
  op: string,
  wgsl: () => string,
  g: Geometry,
  src: Tensor,
  dst: Tensor,
  rows: number,
  cols: number,
  key: string,
) {
  const { rowsPerGroup, workgroups } = rowPlanesDispatch(g.planes, rows, cols);
  runKernel({
    op,
    key,
    decl: DECL,
    wgsl,
    inputs: [src],
    outputs: [dst],
    uniforms: { H: g.H, W: g.W, S: g.S, HO: g.H * g.S, WO: g.W * g.S, rows, cols, rowsPerGroup, planes: g.planes },
    workgroups,
  });
}

/** Upsamples x: [N, C, H, W] → [N, C, H·scale, W·scale]. */
export function upsample2d(x: Tensor, scale = 2, mode: UpsampleMode = 'nearest'): Tensor {
  const op = 'upsample2d';
  const g = geometry(op, x.shape, scale, mode);
  const y = Tensor.empty(x.device, upsampled2dShape(x.shape, scale));
  // nearest walks input columns (writing S outputs each), bilinear output columns.
  launch(op, () => forwardWgsl(mode), g, x, y, g.H * g.S, mode === 'nearest' ? g.W : g.W * g.S, mode);
  return y;
}

/** Gradient of upsample2d: dy [N, C, H·scale, W·scale] → dx of shape xShape. */
export function upsample2dBackward(dy: Tensor, xShape: Shape, scale = 2, mode: UpsampleMode = 'nearest'): Tensor {
  const op = 'upsample2dBackward';
  const g = geometry(op, xShape, scale, mode);
  const want = upsampled2dShape(xShape, scale);
  if (dy.rank !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(
      `${op}: dy must have the upsampled shape (expected ${fmtShape(want)}, got ${fmtShape(dy.shape)}; x ${fmtShape(xShape)}, scale ${scale})`,
    );
  }
  const dx = Tensor.empty(dy.device, xShape);
  launch(op, () => backwardWgsl(mode), g, dy, dx, g.H, g.W, mode);
  return dx;
}

// ---- float64 references --------------------------------------------------------

/** The (index, weight) pairs output coordinate o reads along an axis of input size n. */
function tapsRef(mode: UpsampleMode, o: number, n: number, scale: number): [number, number][] {
  if (mode === 'nearest') return [[Math.floor(o / scale), 1]];
  const s = Math.max((o + 0.5) / scale - 0.5, 0);
  const i0 = Math.min(Math.floor(s), n - 1);
  const i1 = Math.min(i0 + 1, n - 1);
  const l1 = s - i0;
  return [
    [i0, 1 - l1],
    [i1, l1],
  ];
}

/** Float64 reference of upsample2d. */
export function upsample2dRef(
  x: ArrayLike<number>,
  xShape: Shape,
  scale = 2,
  mode: UpsampleMode = 'nearest',
): { data: Float64Array; shape: number[] } {
  const [N, C, H, W] = xShape;
  const shape = upsampled2dShape(xShape, scale);
  const [, , HO, WO] = shape;
  const data = new Float64Array(N * C * HO * WO);
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < HO; oh++) {
      for (let ow = 0; ow < WO; ow++) {
        let v = 0;
        for (const [ih, a] of tapsRef(mode, oh, H, scale)) {
          for (const [iw, b] of tapsRef(mode, ow, W, scale)) v += a * b * x[(p * H + ih) * W + iw];
        }
        data[(p * HO + oh) * WO + ow] = v;
      }
    }
  }
  return { data, shape };
}

/** Float64 reference of upsample2dBackward: the adjoint, as a scatter-add over outputs. */
export function upsample2dBackwardRef(
  dy: ArrayLike<number>,
  xShape: Shape,
  scale = 2,
  mode: UpsampleMode = 'nearest',
): { data: Float64Array; shape: number[] } {
  const [N, C, H, W] = xShape;
  const [, , HO, WO] = upsampled2dShape(xShape, scale);
  const data = new Float64Array(N * C * H * W);
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < HO; oh++) {
      for (let ow = 0; ow < WO; ow++) {
        const d = dy[(p * HO + oh) * WO + ow];
        for (const [ih, a] of tapsRef(mode, oh, H, scale)) {
          for (const [iw, b] of tapsRef(mode, ow, W, scale)) data[(p * H + ih) * W + iw] += a * b * d;
        }
      }
    }
  }
  return { data, shape: [...xShape] };
}
