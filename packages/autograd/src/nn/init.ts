import { fmtShape, type Rng, type Shape, ShapeError, sizeOf, type Tensor } from '@cg/tensor-core';
import { Variable } from '../variable.js';
import { getDefaultRng } from './defaults.js';

/**
 * Weight initialisation as torch.nn.init, computed in float64 on the CPU
 * with a seeded Rng and uploaded in place. Every function takes an explicit
 * `rng` or falls back to the module-level default (`manualSeed`).
 */

type Target = Tensor | Variable;

function tensorOf(t: Target): Tensor {
  return t instanceof Variable ? t.data : t;
}

function upload(target: Target, fill: (i: number) => number): void {
  const t = tensorOf(target);
  const data = new Float32Array(t.size);
  for (let i = 0; i < data.length; i++) data[i] = fill(i);
  if (t.size > 0) t.device.write(t.buffer, data);
}

/** PyTorch's _calculate_fan_in_and_fan_out: dim 1 is fan-in, dim 0 fan-out, times the receptive field. */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new ShapeError(`init: fan in and fan out need at least 2 dimensions, got ${fmtShape(shape)}`);
  }
  const receptive = sizeOf(shape.slice(2));
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** torch.nn.init.calculate_gain for the nonlinearities CycleGAN uses. */
export function calculateGain(
  nonlinearity: 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu',
  param?: number,
): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv2d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.sqrt(2);
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
  }
}

export function constant_(t: Target, value: number): void {
  upload(t, () => value);
}

export function zeros_(t: Target): void {
  constant_(t, 0);
}

export function ones_(t: Target): void {
  constant_(t, 1);
}

export function uniform_(t: Target, a = 0, b = 1, rng: Rng = getDefaultRng()): void {
  upload(t, () => a + (b - a) * rng.random());
}

export function normal_(t: Target, mean = 0, std = 1, rng: Rng = getDefaultRng()): void {
  upload(t, () => rng.normal(mean, std));
}

export function xavierUniform_(t: Target, gain = 1, rng: Rng = getDefaultRng()): void {
  const { fanIn, fanOut } = fans(tensorOf(t).shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  uniform_(t, -bound, bound, rng);
}

export function xavierNormal_(t: Target, gain = 1, rng: Rng = getDefaultRng()): void {
  const { fanIn, fanOut } = fans(tensorOf(t).shape);
  normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), rng);
}

export interface KaimingOptions {
  /** Negative slope of the leaky ReLU that follows (0: ReLU). */
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: 'relu' | 'leaky_relu';
}

function kaimingStd(shape: Shape, { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' }: KaimingOptions): number {
  const { fanIn, fanOut } = fans(shape);
  const gain = calculateGain(nonlinearity, a);
  return gain / Math.sqrt(mode === 'fan_in' ? fanIn : fanOut);
}

export function kaimingNormal_(t: Target, options: KaimingOptions = {}, rng: Rng = getDefaultRng()): void {
  normal_(t, 0, kaimingStd(tensorOf(t).shape, options), rng);
}

export function kaimingUniform_(t: Target, options: KaimingOptions = {}, rng: Rng = getDefaultRng()): void {
  const bound = Math.sqrt(3) * kaimingStd(tensorOf(t).shape, options);
  uniform_(t, -bound, bound, rng);
}

/**
 * A (semi-)orthogonal matrix of the tensor flattened to [rows, rest], as
 * torch.nn.init.orthogonal_: QR of a Gaussian matrix (Householder, float64)
 * with R's diagonal signs folded into Q so the result is uniformly distributed.
 */
export function orthogonal_(t: Target, gain = 1, rng: Rng = getDefaultRng()): void {
  const shape = tensorOf(t).shape;
  if (shape.length < 2) throw new ShapeError(`orthogonal_: needs at least 2 dimensions, got ${fmtShape(shape)}`);
  const rows = shape[0];
  const cols = sizeOf(shape) / rows;
  const g = new Float64Array(rows * cols);
  for (let i = 0; i < g.length; i++) g[i] = rng.normal();
  // Work on a tall matrix A (m × n, m ≥ n): the transpose when rows < cols.
  const tall = rows >= cols;
  const m = tall ? rows : cols;
  const n = tall ? cols : rows;
  const a = tall ? g : transpose(g, rows, cols);
  const q = householderQ(a, m, n);
  const out = tall ? q : transpose(q, m, n);
  upload(t, (i) => gain * out[i]);
}

function transpose(a: Float64Array, r: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a[i * c + j];
  return out;
}

/** The thin Q (m × n, row-major) of A = QR with diag(R) made positive. A is overwritten. */
function householderQ(a: Float64Array, m: number, n: number): Float64Array {
  const vs: Float64Array[] = [];
  const rDiag = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let norm = 0;
    for (let i = k; i < m; i++) norm += a[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    const x0 = a[k * n + k];
    const alpha = x0 > 0 ? -norm : norm;
    const v = new Float64Array(m - k);
    for (let i = k; i < m; i++) v[i - k] = a[i * n + k];
    v[0] -= alpha;
    let vv = 0;
    for (const e of v) vv += e * e;
    vs.push(v);
    rDiag[k] = alpha;
    if (vv === 0) continue;
    for (let j = k; j < n; j++) {
      let s = 0;
      for (let i = k; i < m; i++) s += v[i - k] * a[i * n + j];
      const f = (2 * s) / vv;
      for (let i = k; i < m; i++) a[i * n + j] -= f * v[i - k];
    }
  }
  // Q = H0·H1·…·H(n−1) applied to the first n columns of the identity.
  const q = new Float64Array(m * n);
  for (let j = 0; j < n; j++) q[j * n + j] = 1;
  for (let k = n - 1; k >= 0; k--) {
    const v = vs[k];
    let vv = 0;
    for (const e of v) vv += e * e;
    if (vv === 0) continue;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = k; i < m; i++) s += v[i - k] * q[i * n + j];
      const f = (2 * s) / vv;
      for (let i = k; i < m; i++) q[i * n + j] -= f * v[i - k];
    }
  }
  // Make R's diagonal positive (torch: q *= sign(diag(r))).
  for (let j = 0; j < n; j++) {
    if (rDiag[j] < 0) for (let i = 0; i < m; i++) q[i * n + j] = -q[i * n + j];
  }
  return q;
}
