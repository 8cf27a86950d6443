import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { sameDevice } from '../runtime.js';
import { sizeOf } from '../shape.js';
import { convStrategy } from './conv_strategy.js';
import {
  type ConvBaseOptions,
  type ConvGeometry,
  conv2d,
  convGeometry,
  expect4,
  transposedConv,
  weightGrad,
} from './conv2d.js';

/**
 * convTranspose2d (PyTorch semantics: w is [Cin, Cout, kH, kW]; output
 * size (H − 1)·stride − 2·padding + kH + output_padding). It is the adjoint
 * of conv2d, so it runs conv2dBackwardInput's kernel, its input gradient is
 * a conv2d, and its weight gradient is conv2d's with x and dy swapped.
 */

export interface ConvTranspose2dOptions extends ConvBaseOptions {
  /** Extra rows/columns added at the bottom/right (each < stride); picks among the sizes that conv2d maps back to H. */
  outputPadding?: number | [number, number];
}

function checkedShape(op: string, xShape: Shape, wShape: Shape, opts: ConvTranspose2dOptions) {
  const ctx = () => `x ${fmtShape(xShape)}, w ${fmtShape(wShape)}`;
  expect4(op, 'x', '[N, Cin, H, W]', xShape, ctx);
  expect4(op, 'w', '[Cin, Cout, kH, kW]', wShape, ctx);
  const g = convGeometry(op, opts, ctx);
  const opad = opts.outputPadding;
  if (Array.isArray(opad) && opad.length !== 2) {
    throw new ShapeError(`${op}: outputPadding must be a number or [oH, oW] (got ${JSON.stringify(opad)}; ${ctx()})`);
  }
  const [oH, oW] = typeof opad === 'number' ? [opad, opad] : opad ? [opad[0], opad[1]] : [0, 0];
  if (![oH, oW].every((v) => Number.isInteger(v) && v >= 0)) {
    throw new ShapeError(
      `${op}: outputPadding must be a non-negative integer (expected ≥ 0, got ${oH}, ${oW}; ${ctx()})`,
    );
  }
  if (oH >= g.sH || oW >= g.sW) {
    throw new ShapeError(
      `${op}: outputPadding must be smaller than the stride (expected < [${g.sH},${g.sW}], got [${oH},${oW}]; ${ctx()})`,
    );
  }
  const [N, Cin, H, W] = xShape;
  const [Cw, Cout, kH, kW] = wShape;
  if (Cin !== Cw) {
    throw new ShapeError(
      `${op}: input channels differ (expected w.shape[0] = x.shape[1] = ${Cin}, got ${Cw}; ${ctx()})`,
    );
  }
  const Ho = (H - 1) * g.sH - 2 * g.pH + kH + oH;
  const Wo = (W - 1) * g.sW - 2 * g.pW + kW + oW;
  if (Ho < 1 || Wo < 1) {
    throw new ShapeError(
      `${op}: output would be empty (expected (H − 1)·stride − 2·padding + k + outputPadding ≥ 1, got ${Ho}×${Wo}; ` +
        `${ctx()}, stride [${g.sH},${g.sW}], padding [${g.pH},${g.pW}])`,
    );
  }
  return { N, Cin, H, W, Cout, kH, kW, Ho, Wo, g, ctx };
}

/** [N, Cout, Ho, Wo] of convTranspose2d(x, w) with Ho = (H − 1)·sH − 2·pH + kH + outputPadding. */
export function convTranspose2dOutputShape(xShape: Shape, wShape: Shape, opts: ConvTranspose2dOptions = {}): number[] {
  const s = checkedShape('convTranspose2dOutputShape', xShape, wShape, opts);
  return [s.N, s.Cout, s.Ho, s.Wo];
}

function checkDy(op: string, dy: Tensor, want: Shape, ctx: () => string): void {
  if (dy.rank !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(
      `${op}: dy has the wrong shape (expected ${fmtShape(want)}, got ${fmtShape(dy.shape)}; ${ctx()})`,
    );
  }
}

function geometryOf(s: { g: ConvGeometry }): ConvGeometry {
  return { sH: s.g.sH, sW: s.g.sW, pH: s.g.pH, pW: s.g.pW };
}

/** y = convTranspose2d(x, w) + bias for x: [N, Cin, H, W], w: [Cin, Cout, kH, kW], bias: [Cout]. */
export function convTranspose2d(x: Tensor, w: Tensor, bias: Tensor | null, opts: ConvTranspose2dOptions = {}): Tensor {
  const op = 'convTranspose2d';
  const s = checkedShape(op, x.shape, w.shape, opts);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== s.Cout)) {
    throw new ShapeError(`${op}: bias must be [Cout] (expected [${s.Cout}], got ${fmtShape(bias.shape)}; ${s.ctx()})`);
  }
  sameDevice(op, x, w, ...(bias ? [bias] : []));
  const y = Tensor.empty(x.device, [s.N, s.Cout, s.Ho, s.Wo]);
  transposedConv(
    op,
    x,
    w,
    bias,
    y,
    { kH: s.kH, kW: s.kW, wInStride: s.Cout * s.kH * s.kW, wOutStride: s.kH * s.kW, ...geometryOf(s) },
    convStrategy(x.device, opts.strategy),
  );
  return y;
}

/** dx of y = convTranspose2d(x, w): the conv2d of dy with the same weights. */
export function convTranspose2dBackwardInput(
  dy: Tensor,
  w: Tensor,
  xShape: Shape,
  opts: ConvTranspose2dOptions = {},
): Tensor {
  const op = 'convTranspose2dBackwardInput';
  const s = checkedShape(op, xShape, w.shape, opts);
  checkDy(op, dy, [s.N, s.Cout, s.Ho, s.Wo], () => `${s.ctx()}, dy ${fmtShape(dy.shape)}`);
  // w [Cin, Cout, kH, kW] read as a conv2d weight maps Cout channels back to Cin.
  return conv2d(dy, w, null, { stride: [s.g.sH, s.g.sW], padding: [s.g.pH, s.g.pW], strategy: opts.strategy });
}

/** dw of y = convTranspose2d(x, w): conv2d's weight gradient with x in the role of dy and dy in the role of x. */
export function convTranspose2dBackwardWeight(
  dy: Tensor,
  x: Tensor,
  wShape: Shape,
  opts: ConvTranspose2dOptions = {},
): Tensor {
  const op = 'convTranspose2dBackwardWeight';
  const s = checkedShape(op, x.shape, wShape, opts);
  checkDy(op, dy, [s.N, s.Cout, s.Ho, s.Wo], () => `${s.ctx()}, dy ${fmtShape(dy.shape)}`);
  sameDevice(op, dy, x);
  return weightGrad(op, x, dy, s.kH, s.kW, geometryOf(s), convStrategy(x.device, opts.strategy));
}

// ---- float64 references (from the definition: every input pixel scatters a weighted kernel) ----

/** y[n, o, i·sH − pH + kh, j·sW − pW + kw] += x[n, c, i, j] · w[c, o, kh, kw] (writes outside y are cropped), plus b[o]. */
export function convTranspose2dRef(
  x: ArrayLike<number>,
  xShape: Shape,
  w: ArrayLike<number>,
  wShape: Shape,
  bias: ArrayLike<number> | null,
  opts: ConvTranspose2dOptions = {},
): { data: Float64Array; shape: number[] } {
  const shape = convTranspose2dOutputShape(xShape, wShape, opts);
  const { sH, sW, pH, pW } = convGeometry('convTranspose2dRef', opts, () => '');
  const [N, C, H, W] = xShape;
  const [, O, Ho, Wo] = shape;
  const [, , kH, kW] = wShape;
  const data = new Float64Array(sizeOf(shape));
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const b = bias ? bias[o] : 0;
      for (let k = 0; k < Ho * Wo; k++) data[(n * O + o) * Ho * Wo + k] = b;
    }
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < H; i++) {
        for (let j = 0; j < W; j++) {
          const xv = x[((n * C + c) * H + i) * W + j];
          for (let o = 0; o < O; o++) {
            for (let kh = 0; kh < kH; kh++) {
              const oy = i * sH - pH + kh;
              if (oy < 0 || oy >= Ho) continue;
              for (let kw = 0; kw < kW; kw++) {
                const ox = j * sW - pW + kw;
                if (ox < 0 || ox >= Wo) continue;
                data[((n * O + o) * Ho + oy) * Wo + ox] += xv * w[((c * O + o) * kH + kh) * kW + kw];
              }
            }
          }
        }
      }
    }
  }
  return { data, shape };
}

/** Gradients of L = Σ dy·convTranspose2d(x, w, b): each scattered product x·w sends dy back to x (times w) and w (times x). */
export function convTranspose2dBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  xShape: Shape,
  w: ArrayLike<number>,
  wShape: Shape,
  opts: ConvTranspose2dOptions = {},
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [, O, Ho, Wo] = convTranspose2dOutputShape(xShape, wShape, opts);
  const { sH, sW, pH, pW } = convGeometry('convTranspose2dBackwardRef', opts, () => '');
  const [N, C, H, W] = xShape;
  const [, , kH, kW] = wShape;
  const dx = new Float64Array(sizeOf(xShape));
  const dw = new Float64Array(sizeOf(wShape));
  const db = new Float64Array(O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let k = 0; k < Ho * Wo; k++) db[o] += dy[(n * O + o) * Ho * Wo + k];
    }
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < H; i++) {
        for (let j = 0; j < W; j++) {
          const xi = ((n * C + c) * H + i) * W + j;
          for (let o = 0; o < O; o++) {
            for (let kh = 0; kh < kH; kh++) {
              const oy = i * sH - pH + kh;
              if (oy < 0 || oy >= Ho) continue;
              for (let kw = 0; kw < kW; kw++) {
                const ox = j * sW - pW + kw;
                if (ox < 0 || ox >= Wo) continue;
                const g = dy[((n * O + o) * Ho + oy) * Wo + ox];
                const wi = ((c * O + o) * kH + kh) * kW + kw;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}
