/**
 * Every elementwise one-input op, declared once (JAX's primitive, derivative
 * and lowering on adjacent lines). From each record unary.ts generates the
 * forward kernel and its float64 reference, activation_backward.ts the
 * backward kernel and its reference, and @cg/autograd the gradient rule
 * and the `F.*` function. Adding an op is one record here plus its test rows.
 *
 * WGSL expressions are in `x` (the input), `y` (the forward output; grad
 * only) and `p` (the op's f32 parameter), and may call the functions in
 * UNARY_WGSL_LIB. `ref` is float64 written from the math, not from the WGSL.
 */
export interface UnaryRecord {
  wgsl: string;
  ref: (x: number, p: number) => number;
  /** The scalar parameter `p`, if the op takes one: its name, and the default when it is optional. */
  param?: { name: string; default?: number };
  grad?: {
    /**
     * What the backward reads: the input x, the output y (when f' is a
     * function of y the tape keeps one tensor instead of two), or nothing.
     */
    saved: 'x' | 'y' | 'none';
    /** f' in the saved value (and p); the generated kernel multiplies it by the incoming gradient. */
    wgsl: string;
    /** f' in float64, from the saved value (unused for 'none') and p. */
    ref: (saved: number, p: number) => number;
  };
}

export const UNARY_OPS = {
  neg: { wgsl: '-x', ref: (x) => -x, grad: { saved: 'none', wgsl: '-1.0', ref: () => -1 } },
  abs: { wgsl: 'abs(x)', ref: (x) => Math.abs(x), grad: { saved: 'x', wgsl: 'sign(x)', ref: (x) => Math.sign(x) } },
  square: { wgsl: 'x * x', ref: (x) => x * x, grad: { saved: 'x', wgsl: '2.0 * x', ref: (x) => 2 * x } },
  sqrt: { wgsl: 'sqrt(x)', ref: (x) => Math.sqrt(x), grad: { saved: 'y', wgsl: '0.5 / y', ref: (y) => 0.5 / y } },
  exp: { wgsl: 'exp(x)', ref: (x) => Math.exp(x), grad: { saved: 'y', wgsl: 'y', ref: (y) => y } },
  log: { wgsl: 'log(x)', ref: (x) => Math.log(x), grad: { saved: 'x', wgsl: '1.0 / x', ref: (x) => 1 / x } },

  // d/dx max(x, 0) is taken as 0 at x = 0, as PyTorch does.
  relu: {
    wgsl: 'max(x, 0.0)',
    ref: (x) => Math.max(x, 0),
    grad: { saved: 'x', wgsl: 'select(0.0, 1.0, x > 0.0)', ref: (x) => (x > 0 ? 1 : 0) },
  },
  // PyTorch's default slope; CycleGAN's networks pass 0.2.
  leakyRelu: {
    wgsl: 'select(p * x, x, x > 0.0)',
    ref: (x, p) => (x > 0 ? x : p * x),
    param: { name: 'negativeSlope', default: 0.01 },
    grad: { saved: 'x', wgsl: 'select(p, 1.0, x > 0.0)', ref: (x, p) => (x > 0 ? 1 : p) },
  },
  // exp of -2|x| never overflows, unlike the textbook (e^2x - 1) / (e^2x + 1).
  tanh: {
    wgsl: 'sign(x) * (1.0 - exp(-2.0 * abs(x))) / (1.0 + exp(-2.0 * abs(x)))',
    ref: (x) => Math.tanh(x),
    grad: { saved: 'y', wgsl: '1.0 - y * y', ref: (y) => 1 - y * y },
  },
  sigmoid: {
    wgsl: 'sigmoid(x)',
    ref: (x) => 1 / (1 + Math.exp(-x)),
    grad: { saved: 'y', wgsl: 'y * (1.0 - y)', ref: (y) => y * (1 - y) },
  },
  // PyTorch's default F.gelu: x·Φ(x) with the exact normal CDF, not the tanh approximation.
  gelu: {
    wgsl: 'x * normal_cdf(x)',
    ref: (x) => x * normalCdf(x),
    grad: { saved: 'x', wgsl: 'normal_cdf(x) + x * normal_pdf(x)', ref: (x) => normalCdf(x) + x * normalPdf(x) },
  },
  // x·σ(x); σ(−x) = 1 − σ(x) without the cancellation.
  silu: {
    wgsl: 'x * sigmoid(x)',
    ref: (x) => x / (1 + Math.exp(-x)),
    grad: {
      saved: 'x',
      wgsl: 'sigmoid(x) * (1.0 + x * sigmoid(-x))',
      ref: (x) => (1 + x * (1 - 1 / (1 + Math.exp(-x)))) / (1 + Math.exp(-x)),
    },
  },

  scale: {
    wgsl: 'p * x',
    ref: (x, p) => p * x,
    param: { name: 's' },
    grad: { saved: 'none', wgsl: 'p', ref: (_s, p) => p },
  },
  // f' = 1: the generated rule hands dy back without a kernel.
  addScalar: {
    wgsl: 'x + p',
    ref: (x, p) => x + p,
    param: { name: 's' },
    grad: { saved: 'none', wgsl: '1.0', ref: () => 1 },
  },
  fill: { wgsl: 'p + 0.0 * x', ref: (_x, p) => p, param: { name: 'value' } },
} satisfies Record<string, UnaryRecord>;

/**
 * WGSL functions the records call; every elementwise kernel includes them
 * (unused ones compile away).
 */
export const UNARY_WGSL_LIB = /* wgsl */ `
// σ(x) from e^-|x|, which never overflows.
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
// e^(c - x²/2) for |x| ≤ 20 (0 beyond). Rounding x² in f32 would cost a
// relative error of ~x²·6e-8 in the result; s keeps the top 12 bits of |x|,
// so s² is exact and x² = s² + (|x| - s)(|x| + s).
fn exp_minus_half_square(c: f32, x: f32) -> f32 {
  let a = min(abs(x), 20.0);
  let s = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
  return exp(-0.5 * s * s) * exp(c - 0.5 * (a - s) * (a + s));
}
fn normal_pdf(x: f32) -> f32 {
  return 0.3989422804014327 * exp_minus_half_square(0.0, x);
}
// Φ(x). The tail Φ(-|x|) = erfc(|x|/√2)/2 is Numerical Recipes' erfcc, a
// Chebyshev fit with relative error < 1.2e-7 for every z ≥ 0; taking it as a
// relative-accurate tail avoids 1 + erf(x/√2), which cancels for x < 0.
fn normal_cdf(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * 0.7071067811865476 * abs(x));
  let q = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let tail = 0.5 * t * exp_minus_half_square(q, x);
  return select(tail, 1.0 - tail, x >= 0.0);
}
`;

export type UnaryOp = keyof typeof UNARY_OPS;
type Rec<K extends UnaryOp> = (typeof UNARY_OPS)[K];

/** The ops whose record has a gradient (autograd gives each a rule and an `F.*` function). */
export type UnaryGradOp = { [K in UnaryOp]: Rec<K> extends { grad: object } ? K : never }[UnaryOp];
export const UNARY_GRAD_OPS = (Object.keys(UNARY_OPS) as UnaryOp[]).filter(
  (op): op is UnaryGradOp => 'grad' in UNARY_OPS[op],
);
/** What op K's backward reads. */
export type UnarySaved<K extends UnaryGradOp> = Rec<K>['grad']['saved'];
/** The arguments after x: none, a required p, or an optional p with the record's default. */
export type UnaryArgs<K extends UnaryOp> =
  Rec<K> extends { param: { default: number } } ? [p?: number] : Rec<K> extends { param: object } ? [p: number] : [];

/** The value of `p` when the caller gives none: the record's default, else 0. */
export function defaultParam(op: UnaryOp): number {
  const def: UnaryRecord = UNARY_OPS[op];
  return def.param?.default ?? 0;
}

// ---- float64 helpers for the references, from the series and continued fraction --

const SQRT_PI = Math.sqrt(Math.PI);

/** erfc(z) for z ≥ 0, relative error ~1e-12 (Python's math.erfc on a 0.001 grid to 12). */
function erfcNonNegative(z: number): number {
  if (z < 2.5) {
    // erf z = 2/√π · e^(-z²) · Σ (2z²)^n z / (1·3·…·(2n+1)): positive terms, no cancellation.
    let term = z;
    let sum = z;
    for (let n = 1; term > 1e-17 * sum; n++) {
      term *= (2 * z * z) / (2 * n + 1);
      sum += term;
    }
    return 1 - (2 / SQRT_PI) * Math.exp(-z * z) * sum;
  }
  // erfc z = e^(-z²)/√π / (z + (1/2)/(z + 1/(z + (3/2)/(z + …)))), evaluated from the tail.
  let f = z;
  for (let k = 60; k >= 1; k--) f = z + k / 2 / f;
  return Math.exp(-z * z) / SQRT_PI / f;
}

function normalCdf(x: number): number {
  const tail = 0.5 * erfcNonNegative(Math.abs(x) / Math.SQRT2);
  return x >= 0 ? 1 - tail : tail;
}

function normalPdf(x: number): number {
  return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
}
