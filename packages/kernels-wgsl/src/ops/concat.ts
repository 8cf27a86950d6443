import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { flatGroupIndex, flatWorkgroups, runKernel, sameDevice } from '../runtime.js';
import { sizeOf, stridesOf } from '../shape.js';

/**
 * concat and split along any axis; each is the other's gradient. Seen as
 * [outer, len·inner] matrices, every input is a block of columns of the
 * output. When there are few rows (axis 1 with a small batch, as in U-Net)
 * each row is one buffer-to-buffer copy, a memcpy on any adapter; with many
 * rows a strided-copy kernel moves the block in one dispatch.
 */

/** Up to this many rows per block, copy rows with copyBufferToBuffer instead of a kernel. */
const MAX_COPY_ROWS = 16;
const WG = 64;
const PER_THREAD = 4;

function normalizeAxis(op: string, axis: number, shape: Shape): number {
  const ax = axis < 0 ? axis + shape.length : axis;
  if (!Number.isInteger(ax) || ax < 0 || ax >= shape.length) {
    throw new ShapeError(
      `${op}: axis out of range (expected an integer in [${-shape.length}, ${shape.length - 1}], got ${axis}; x ${fmtShape(shape)})`,
    );
  }
  return ax;
}

/** dst[dstOff + r·dstStride + c] = src[srcOff + r·srcStride + c] for r < rows, c < cols (in elements). */
function copyBlock(
  op: string,
  src: Tensor,
  dst: Tensor,
  rows: number,
  cols: number,
  srcStride: number,
  srcOff: number,
  dstStride: number,
  dstOff: number,
): void {
  const n = rows * cols;
  if (n === 0) return;
  if (rows <= MAX_COPY_ROWS) {
    for (let r = 0; r < rows; r++) {
      src.device.copy(src.buffer, dst.buffer, cols * 4, (srcOff + r * srcStride) * 4, (dstOff + r * dstStride) * 4);
    }
    return;
  }
  runKernel({
    op,
    key: 'block',
    decl: {
      inputs: ['src'],
      outputs: ['dst'],
      uniforms: { n: 'u32', cols: 'u32', srcStride: 'u32', srcOff: 'u32', dstStride: 'u32', dstOff: 'u32' },
    },
    wgsl: () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = (${flatGroupIndex}) * ${WG * PER_THREAD}u + lid;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let i = base + k * ${WG}u;
    if (i < u.n) {
      let r = i / u.cols;
      let c = i - r * u.cols;
      dst[u.dstOff + r * u.dstStride + c] = src[u.srcOff + r * u.srcStride + c];
    }
  }
}`,
    inputs: [src],
    outputs: [dst],
    uniforms: { n, cols, srcStride, srcOff, dstStride, dstOff },
    workgroups: flatWorkgroups(n, WG * PER_THREAD),
  });
}

/** Output shape of concatenating `shapes` along `axis` (validated). */
function concatShape(op: string, shapes: readonly Shape[], axis: number): { shape: number[]; axis: number } {
  if (shapes.length === 0) throw new ShapeError(`${op}: needs at least one tensor (got 0)`);
  const first = shapes[0];
  const ax = normalizeAxis(op, axis, first);
  let total = 0;
  shapes.forEach((s, i) => {
    if (s.length !== first.length || s.some((d, j) => j !== ax && d !== first[j])) {
      throw new ShapeError(
        `${op}: tensor ${i} does not match tensor 0 outside axis ${ax} (expected ${fmtShape(first.map((d, j) => (j === ax ? s[j] : d)))}, got ${fmtShape(s)}; shapes ${shapes.map(fmtShape).join(', ')})`,
      );
    }
    total += s[ax];
  });
  return { shape: first.map((d, j) => (j === ax ? total : d)), axis: ax };
}

/** Concatenates tensors of equal shape outside `axis` (default 1, NCHW channels). */
export function concat(xs: readonly Tensor[], axis = 1): Tensor {
  const op = 'concat';
  const { shape, axis: ax } = concatShape(
    op,
    xs.map((t) => t.shape),
    axis,
  );
  sameDevice(op, ...xs);
  const out = Tensor.empty(xs[0].device, shape);
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  let offset = 0;
  for (const x of xs) {
    const cols = x.shape[ax] * inner;
    copyBlock(op, x, out, outer, cols, cols, 0, shape[ax] * inner, offset * inner);
    offset += x.shape[ax];
  }
  return out;
}

/** Splits x along `axis` (default 1) into pieces of the given sizes, which must add up to x.shape[axis]. */
export function split(x: Tensor, sizes: readonly number[], axis = 1): Tensor[] {
  const op = 'split';
  const ax = normalizeAxis(op, axis, x.shape);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (sizes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s < 0) || total !== x.shape[ax]) {
    throw new ShapeError(
      `${op}: sizes must be non-negative integers adding up to the axis length (expected a sum of ${x.shape[ax]}, got [${sizes.join(',')}]; x ${fmtShape(x.shape)}, axis ${ax})`,
    );
  }
  const outer = sizeOf(x.shape.slice(0, ax));
  const inner = sizeOf(x.shape.slice(ax + 1));
  let offset = 0;
  return sizes.map((s) => {
    const y = Tensor.empty(
      x.device,
      x.shape.map((d, j) => (j === ax ? s : d)),
    );
    const cols = s * inner;
    copyBlock(op, x, y, outer, cols, x.shape[ax] * inner, offset * inner, cols, 0);
    offset += s;
    return y;
  });
}

// ---- float64 references --------------------------------------------------------

/** Float64 reference of concat, written with multi-indices. */
export function concatRef(
  xs: readonly { data: ArrayLike<number>; shape: Shape }[],
  axis = 1,
): { data: Float64Array; shape: number[] } {
  const { shape, axis: ax } = concatShape(
    'concat',
    xs.map((x) => x.shape),
    axis,
  );
  const data = new Float64Array(sizeOf(shape));
  const outStrides = stridesOf(shape);
  let offset = 0;
  for (const x of xs) {
    const st = stridesOf(x.shape);
    for (let i = 0; i < x.data.length; i++) {
      let o = 0;
      for (let d = 0; d < shape.length; d++) {
        const c = Math.floor(i / st[d]) % x.shape[d];
        o += (d === ax ? c + offset : c) * outStrides[d];
      }
      data[o] = x.data[i];
    }
    offset += x.shape[ax];
  }
  return { data, shape };
}

/** Float64 reference of split. */
export function splitRef(
  x: ArrayLike<number>,
  shape: Shape,
  sizes: readonly number[],
  axis = 1,
): { data: Float64Array; shape: number[] }[] {
  const ax = normalizeAxis('split', axis, shape);
  const st = stridesOf(shape);
  let offset = 0;
  return sizes.map((s) => {
    const outShape = shape.map((d, j) => (j === ax ? s : d));
    const ost = stridesOf(outShape);
    const data = new Float64Array(sizeOf(outShape));
    for (let i = 0; i < data.length; i++) {
      let src = 0;
      for (let d = 0; d < shape.length; d++) {
        const c = Math.floor(i / ost[d]) % outShape[d];
        src += (d === ax ? c + offset : c) * st[d];
      }
      data[i] = x[src];
    }
    offset += s;
    return { data, shape: outShape };
  });
}
