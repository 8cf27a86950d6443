import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { kernelDecl, runKernel } from '../runtime.js';
import { ROW_PLANES_UNIFORMS, rowPlanesDispatch, rowPlanesMain } from './row_planes.js';

/**
 * Spatial padding of NCHW tensors: reflect, replicate and zero, forward and
 * backward. Both directions are gathers (one invocation per destination element),
 * so the backward sums every padded copy of an input element without float
 * atomics. Sizes and pads are uniforms, so one pipeline per mode and
 * direction serves every shape (baking them in as constants made LLVM
 * unroll the replicate loops: one pipeline took 24 s to compile on a loaded
 * lavapipe).
 */

/** PyTorch's order, as in ReflectionPad2d((left, right, top, bottom)). */
export type Pads = [left: number, right: number, top: number, bottom: number];

export type PadMode = 'reflect' | 'replicate' | 'zero';

const OPS: Record<PadMode, string> = {
  reflect: 'reflectionPad2d',
  replicate: 'replicationPad2d',
  zero: 'zeroPad2d',
};

interface Geometry {
  planes: number;
  H: number;
  W: number;
  HO: number;
  WO: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** Validates x's shape and the pads for `mode`; returns the padded geometry. */
function geometry(op: string, mode: PadMode, xShape: Shape, pads: Pads): Geometry {
  if (xShape.length !== 4 || xShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(`${op}: x must be [N,C,H,W] with every dimension ≥ 1 (got x ${fmtShape(xShape)})`);
  }
  if (!Array.isArray(pads) || pads.length !== 4 || pads.some((p) => !Number.isInteger(p))) {
    throw new ShapeError(
      `${op}: pads must be 4 integers [left, right, top, bottom] (got ${JSON.stringify(pads)}; x ${fmtShape(xShape)})`,
    );
  }
  const [N, C, H, W] = xShape;
  const [left, right, top, bottom] = pads;
  if (mode !== 'zero' && pads.some((p) => p < 0)) {
    throw new ShapeError(`${op}: pads must be ≥ 0 (got [${pads.join(',')}]; x ${fmtShape(xShape)})`);
  }
  if (mode === 'reflect') {
    const bad = (
      [
        ['left', left, W, 'W'],
        ['right', right, W, 'W'],
        ['top', top, H, 'H'],
        ['bottom', bottom, H, 'H'],
      ] as const
    ).find(([, p, d]) => p >= d);
    if (bad) {
      const [side, p, d, dim] = bad;
      throw new ShapeError(
        `${op}: ${side} pad must be smaller than the input's ${dim} (expected < ${d}, got ${p}; x ${fmtShape(xShape)})`,
      );
    }
  }
  const HO = H + top + bottom;
  const WO = W + left + right;
  if (HO < 1 || WO < 1) {
    throw new ShapeError(
      `${op}: pads leave no output (expected an output of at least 1×1, got ${HO}×${WO}; x ${fmtShape(xShape)})`,
    );
  }
  return { planes: N * C, H, W, HO, WO, left, top, right, bottom };
}

/** Output shape of padding `xShape`. */
export function padded2dShape(xShape: Shape, pads: Pads): number[] {
  const [N, C, H, W] = xShape;
  return [N, C, H + pads[2] + pads[3], W + pads[0] + pads[1]];
}

const DECL = kernelDecl({
  inputs: ['src'],
  outputs: ['dst'],
  uniforms: {
    H: 'i32',
    W: 'i32',
    HO: 'i32',
    WO: 'i32',
    top: 'i32',
    left: 'i32',
    bottom: 'i32',
    right: 'i32',
    ...ROW_PLANES_UNIFORMS,
  },
});

// Source index along one axis of the input for output coordinate i - pad.
const MAP: Record<PadMode, string> = {
  // -i mirrors without repeating the edge; valid because every pad < size.
  reflect: 'fn srcIndex(i: i32, n: i32) -> i32 { let j = abs(i); return select(j, 2 * (n - 1) - j, j >= n); }',
  replicate: 'fn srcIndex(i: i32, n: i32) -> i32 { return clamp(i, 0, n - 1); }',
  zero: 'fn srcIndex(i: i32, n: i32) -> i32 { return select(-1, i, i >= 0 && i < n); }',
};

function forwardWgsl(mode: PadMode): string {
  return `${MAP[mode]}
${rowPlanesMain(
  `let ih = srcIndex(r - u.top, u.H);
    let srcRow = (p * u.H + ih) * u.W;
    let dstRow = (p * u.HO + r) * u.WO;`,
  `let iw = srcIndex(c - u.left, u.W);
      ${
        mode === 'zero'
          ? 'dst[dstRow + c] = select(0.0, src[max(srcRow + iw, 0)], ih >= 0 && iw >= 0);'
          : 'dst[dstRow + c] = src[srcRow + iw];'
      }`,
)}`;
}

/**
 * Backward gathers, per input coordinate along each axis, the output
 * coordinates that read it:
 *  - reflect: itself, its mirror across the low edge (1 ≤ h ≤ top) and its
 *    mirror across the high edge (H-1-bottom ≤ h ≤ H-2): at most 3 × 3;
 *  - replicate: itself, plus the whole low pad for h = 0 and the whole high
 *    pad for h = H-1: a contiguous range;
 *  - zero: itself if it survived a negative pad.
 * Here r, c are the input row (h) and column (w).
 */
function backwardWgsl(mode: PadMode): string {
  const rowSetup = `let h = r;
    let dyPlane = p * u.HO * u.WO;
    let dxRow = (p * u.H + h) * u.W;`;
  let row: string;
  let col: string;
  if (mode === 'reflect') {
    row = `${rowSetup}
    var hs = array<i32, 3>(h + u.top, select(-1, u.top - h, h >= 1 && h <= u.top),
      select(-1, 2 * (u.H - 1) - h + u.top, h >= u.H - 1 - u.bottom && h <= u.H - 2));`;
    col = `let w = c;
      var ws = array<i32, 3>(w + u.left, select(-1, u.left - w, w >= 1 && w <= u.left),
        select(-1, 2 * (u.W - 1) - w + u.left, w >= u.W - 1 - u.right && w <= u.W - 2));
      var s = 0.0;
      for (var a = 0; a < 3; a++) {
        let oh = hs[a];
        if (oh < 0) { continue; }
        for (var b = 0; b < 3; b++) {
          let ow = ws[b];
          if (ow >= 0) { s += src[dyPlane + oh * u.WO + ow]; }
        }
      }
      dst[dxRow + w] = s;`;
  } else if (mode === 'replicate') {
    row = `${rowSetup}
    let h0 = select(h + u.top, 0, h == 0);
    let h1 = select(h + u.top, u.HO - 1, h == u.H - 1);`;
    col = `let w = c;
      let w0 = select(w + u.left, 0, w == 0);
      let w1 = select(w + u.left, u.WO - 1, w == u.W - 1);
      var s = 0.0;
      for (var oh = h0; oh <= h1; oh++) {
        for (var ow = w0; ow <= w1; ow++) { s += src[dyPlane + oh * u.WO + ow]; }
      }
      dst[dxRow + w] = s;`;
  } else {
    row = `${rowSetup}
    let oh = h + u.top;`;
    col = `let ow = c + u.left;
      let inside = oh >= 0 && oh < u.HO && ow >= 0 && ow < u.WO;
      dst[dxRow + c] = select(0.0, src[max(dyPlane + oh * u.WO + ow, 0)], inside);`;
  }
  return rowPlanesMain(row, col);
}

/** The kernels index with i32. */
function checkIndexable(op: string, shape: Shape): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n >= 2 ** 31) throw new ShapeError(`${op}: ${fmtShape(shape)} has ${n} elements, above the 2^31 - 1 limit`);
}

/** One dispatch over every plane of `dst`, whose planes are rows × cols. */
function launch(op: string, wgsl: () => string, g: Geometry, src: Tensor, dst: Tensor, rows: number, cols: number) {
  const { rowsPerGroup, workgroups } = rowPlanesDispatch(g.planes, rows, cols);
  runKernel({
    op,
    key: '',
    decl: DECL,
    wgsl,
    inputs: [src],
    outputs: [dst],
    uniforms: {
      H: g.H,
      W: g.W,
      HO: g.HO,
      WO: g.WO,
      top: g.top,
      left: g.left,
      bottom: g.bottom,
      right: g.right,
      rows,
      cols,
      rowsPerGroup,
      planes: g.planes,
    },
    workgroups,
  });
}

/** Pads x: [N, C, H, W] → [N, C, H + top + bottom, W + left + right]. */
export function pad2d(x: Tensor, pads: Pads, mode: PadMode): Tensor {
  const op = OPS[mode];
  const g = geometry(op, mode, x.shape, pads);
  const outShape = padded2dShape(x.shape, pads);
  checkIndexable(op, outShape);
  const y = Tensor.empty(x.device, outShape);
  launch(op, () => forwardWgsl(mode), g, x, y, g.HO, g.WO);
  return y;
}

/** Gradient of pad2d: dy [N, C, H', W'] → dx of shape xShape. */
export function pad2dBackward(dy: Tensor, xShape: Shape, pads: Pads, mode: PadMode): Tensor {
  const op = `${OPS[mode]}Backward`;
  const g = geometry(op, mode, xShape, pads);
  const want = padded2dShape(xShape, pads);
  if (dy.rank !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(
      `${op}: dy must have the padded shape (expected ${fmtShape(want)}, got ${fmtShape(dy.shape)}; x ${fmtShape(xShape)}, pads [${pads.join(',')}])`,
    );
  }
  checkIndexable(op, want);
  const dx = Tensor.empty(dy.device, xShape);
  launch(op, () => backwardWgsl(mode), g, dy, dx, g.H, g.W);
  return dx;
}

/** Mirror padding without repeating the edge (PyTorch's ReflectionPad2d); every pad must be < that dimension. */
export const reflectionPad2d = (x: Tensor, pads: Pads): Tensor => pad2d(x, pads, 'reflect');
export const reflectionPad2dBackward = (dy: Tensor, xShape: Shape, pads: Pads): Tensor =>
  pad2dBackward(dy, xShape, pads, 'reflect');
/** Edge replication (PyTorch's ReplicationPad2d). */
export const replicationPad2d = (x: Tensor, pads: Pads): Tensor => pad2d(x, pads, 'replicate');
export const replicationPad2dBackward = (dy: Tensor, xShape: Shape, pads: Pads): Tensor =>
  pad2dBackward(dy, xShape, pads, 'replicate');
/** Zero padding (PyTorch's ZeroPad2d); negative pads crop. */
export const zeroPad2d = (x: Tensor, pads: Pads): Tensor => pad2d(x, pads, 'zero');
export const zeroPad2dBackward = (dy: Tensor, xShape: Shape, pads: Pads): Tensor =>
  pad2dBackward(dy, xShape, pads, 'zero');

// ---- float64 references --------------------------------------------------------

/** Source coordinate of output coordinate o along an axis of size n padded by `before`; -1 = zero. */
function srcRef(mode: PadMode, o: number, before: number, n: number): number {
  const i = o - before;
  if (mode === 'replicate') return Math.min(Math.max(i, 0), n - 1);
  if (mode === 'zero') return i >= 0 && i < n ? i : -1;
  // reflect: walk back and forth over [0, n-1] without repeating the edges
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

/** Float64 reference of pad2d (a gather from the definition). */
export function pad2dRef(
  x: ArrayLike<number>,
  xShape: Shape,
  pads: Pads,
  mode: PadMode,
): { data: Float64Array; shape: number[] } {
  const [N, C, H, W] = xShape;
  const shape = padded2dShape(xShape, pads);
  const [, , HO, WO] = shape;
  const data = new Float64Array(N * C * HO * WO);
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < HO; oh++) {
      const ih = srcRef(mode, oh, pads[2], H);
      for (let ow = 0; ow < WO; ow++) {
        const iw = srcRef(mode, ow, pads[0], W);
        data[(p * HO + oh) * WO + ow] = ih < 0 || iw < 0 ? 0 : x[(p * H + ih) * W + iw];
      }
    }
  }
  return { data, shape };
}

/** Float64 reference of pad2dBackward: the adjoint, as a scatter-add over outputs. */
export function pad2dBackwardRef(
  dy: ArrayLike<number>,
  xShape: Shape,
  pads: Pads,
  mode: PadMode,
): { data: Float64Array; shape: number[] } {
  const [N, C, H, W] = xShape;
  const [, , HO, WO] = padded2dShape(xShape, pads);
  const data = new Float64Array(N * C * H * W);
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < HO; oh++) {
      const ih = srcRef(mode, oh, pads[2], H);
      for (let ow = 0; ow < WO; ow++) {
        const iw = srcRef(mode, ow, pads[0], W);
        if (ih >= 0 && iw >= 0) data[(p * H + ih) * W + iw] += dy[(p * HO + oh) * WO + ow];
      }
    }
  }
  return { data, shape: [...xShape] };
}

export const reflectionPad2dRef = (x: ArrayLike<number>, xShape: Shape, pads: Pads) =>
  pad2dRef(x, xShape, pads, 'reflect');
export const reflectionPad2dBackwardRef = (dy: ArrayLike<number>, xShape: Shape, pads: Pads) =>
  pad2dBackwardRef(dy, xShape, pads, 'reflect');
export const replicationPad2dRef = (x: ArrayLike<number>, xShape: Shape, pads: Pads) =>
  pad2dRef(x, xShape, pads, 'replicate');
export const replicationPad2dBackwardRef = (dy: ArrayLike<number>, xShape: Shape, pads: Pads) =>
  pad2dBackwardRef(dy, xShape, pads, 'replicate');
export const zeroPad2dRef = (x: ArrayLike<number>, xShape: Shape, pads: Pads) => pad2dRef(x, xShape, pads, 'zero');
export const zeroPad2dBackwardRef = (dy: ArrayLike<number>, xShape: Shape, pads: Pads) =>
  pad2dBackwardRef(dy, xShape, pads, 'zero');
