import {
  batchNorm2dBackward,
  bceWithLogitsLossBackward,
  binaryMap,
  type Conv2dOptions,
  type ConvTranspose2dOptions,
  concat,
  conv2dBackwardBias,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  convTranspose2dBackwardInput,
  convTranspose2dBackwardWeight,
  div,
  dropoutBackward,
  instanceNorm2dActBackward,
  instanceNorm2dBackward,
  l1LossBackward,
  mseLossBackward,
  mul,
  type NormActivation,
  neg,
  reflectionPad2dBackward,
  reluBackward,
  replicationPad2dBackward,
  split,
  sub,
  sum,
  tanhBackward,
  UNARY_GRAD_OPS,
  UNARY_OPS,
  type UnaryArgs,
  type UnaryGradOp,
  type UnaryRecord,
  type UnarySaved,
  type UpsampleMode,
  unaryBackward,
  upsample2dBackward,
  zeroPad2dBackward,
} from '@cg/kernels-wgsl';
import { type Shape, Tensor } from '@cg/tensor-core';
import { expandTo, sumTo } from './broadcast_grad.js';

/** Which inputs need a gradient (absent = no). */
export type Needs = Readonly<Record<string, boolean>>;
/** Gradient per input name; null where not needed. */
export type Grads = Record<string, Tensor | null | undefined>;

type Target = Tensor | number;
type Pads = [number, number, number, number];
type NormSaved = { x: Tensor; mean: Tensor; invStd: Tensor; weight: Tensor | null };

/**
 * The gradient rules, one per op (PyTorch's derivatives.yaml): upstream
 * gradient `dy`, what the forward saved, and which inputs need a gradient.
 * Rules run inside tidy(), so temporaries need no cleanup; they may return
 * dy or a saved tensor itself (the engine makes its own handle).
 * Composite ops (built from these in functional.ts) need no rule.
 */
export const RULES = {
  // ---- elementwise one-input ops: generated from their records (relu, tanh, gelu, …) --
  ...unaryRules(),

  // ---- elementwise, with NumPy broadcasting --------------------------------
  add: (dy: Tensor, s: { aShape: Shape; bShape: Shape }, n: Needs) => ({
    a: n.a ? sumTo(dy, s.aShape) : null,
    b: n.b ? sumTo(dy, s.bShape) : null,
  }),
  sub: (dy: Tensor, s: { aShape: Shape; bShape: Shape }, n: Needs) => ({
    a: n.a ? sumTo(dy, s.aShape) : null,
    b: n.b ? neg(sumTo(dy, s.bShape)) : null,
  }),
  mul: (dy: Tensor, s: { a: Tensor | null; b: Tensor | null; aShape: Shape; bShape: Shape }, n: Needs) => ({
    a: n.a ? sumTo(mul(dy, s.b!), s.aShape) : null,
    b: n.b ? sumTo(mul(dy, s.a!), s.bShape) : null,
  }),
  // y = a / b: da = dy / b, db = −dy·a/b² = −da·y.
  div: (dy: Tensor, s: { b: Tensor; y: Tensor | null; aShape: Shape; bShape: Shape }, n: Needs) => {
    const da = div(dy, s.b);
    return {
      a: n.a ? sumTo(da, s.aShape) : null,
      b: n.b ? sumTo(binaryMap('divBackwardB', '-a * b', da, s.y!), s.bShape) : null,
    };
  },
  dropout: (dy: Tensor, s: { mask: Tensor }) => ({ x: dropoutBackward(dy, s.mask) }),

  // ---- reductions and views ------------------------------------------------
  sum: (dy: Tensor, s: { xShape: Shape; axes: number[] }) => ({ x: expandTo(dy, s.xShape, s.axes) }),
  mean: (dy: Tensor, s: { xShape: Shape; axes: number[]; n: number }) => ({
    x: expandTo(dy, s.xShape, s.axes, 1 / s.n),
  }),
  reshape: (dy: Tensor, s: { xShape: Shape }) => ({ x: dy.reshape(s.xShape) }),

  concat: (dy: Tensor, s: { sizes: number[]; axis: number }, n: Needs) => {
    const parts = split(dy, s.sizes, s.axis);
    return Object.fromEntries(parts.map((p, i) => [String(i), n[i] ? p : null]));
  },
  // Multi-output: one upstream gradient per piece, null for pieces nobody used.
  split: (dys: (Tensor | null)[], s: { shapes: Shape[]; axis: number }) => {
    const device = dys.find((d) => d)!.device;
    return {
      x: concat(
        dys.map((d, i) => d ?? Tensor.zeros(device, s.shapes[i])),
        s.axis,
      ),
    };
  },

  // ---- convolutions (an adjoint pair: each one's input gradient is the other) --
  // A fused epilogue's backward first (from the saved output, as the unfused relu/tanh rules compute it);
  // folded pads (opts.padMode) are the kernels' business: dx comes back for the unpadded x.
  conv2d: (
    dy: Tensor,
    s: {
      x: Tensor | null;
      w: Tensor | null;
      xShape: Shape;
      wShape: Shape;
      opts: Conv2dOptions;
      epilogue: Conv2dOptions['epilogue'];
      y: Tensor | null;
    },
    n: Needs,
  ) => {
    const dz = s.epilogue === 'tanh' ? tanhBackward(dy, s.y!) : s.epilogue === 'relu' ? reluBackward(dy, s.y!) : dy;
    return {
      x: n.x ? conv2dBackwardInput(dz, s.w!, s.xShape, s.opts) : null,
      w: n.w ? conv2dBackwardWeight(dz, s.x!, s.wShape, s.opts) : null,
      b: n.b ? conv2dBackwardBias(dz) : null,
    };
  },
  convTranspose2d: (
    dy: Tensor,
    s: { x: Tensor | null; w: Tensor | null; xShape: Shape; wShape: Shape; opts: ConvTranspose2dOptions },
    n: Needs,
  ) => ({
    x: n.x ? convTranspose2dBackwardInput(dy, s.w!, s.xShape, s.opts) : null,
    w: n.w ? convTranspose2dBackwardWeight(dy, s.x!, s.wShape, s.opts) : null,
    b: n.b ? conv2dBackwardBias(dy) : null,
  }),

  // ---- normalisation -------------------------------------------------------
  instanceNorm2d: (dy: Tensor, s: NormSaved) => normGrads(instanceNorm2dBackward(dy, s.x, s.mean, s.invStd, s.weight)),
  // Fused chains (nn.Sequential, ResnetBlock): the activation's mask comes from the saved output y.
  instanceNorm2dAct: (dy: Tensor, s: NormSaved & { y: Tensor; act: NormActivation; slope: number }) =>
    normGrads(instanceNorm2dActBackward(dy, s.x, s.y, s.mean, s.invStd, s.weight, s.act, s.slope)),
  instanceNorm2dAdd: (
    dy: Tensor,
    s: { x: Tensor | null; mean: Tensor | null; invStd: Tensor | null; weight: Tensor | null },
    n: Needs,
  ) => ({
    skip: n.skip ? dy : null,
    ...(s.x ? normGrads(instanceNorm2dBackward(dy, s.x, s.mean!, s.invStd!, s.weight)) : {}),
  }),
  batchNorm2d: (dy: Tensor, s: NormSaved) => normGrads(batchNorm2dBackward(dy, s.x, s.mean, s.invStd, s.weight)),
  // Running statistics are constants: y = x̂·w + b with x̂ = (x − mean)·invStd per channel.
  batchNorm2dEval: (dy: Tensor, s: NormSaved, n: Needs) => {
    const c = (t: Tensor) => t.reshape([1, t.size, 1, 1]);
    const xhat = () => mul(sub(s.x, c(s.mean)), c(s.invStd));
    return {
      x: n.x ? mul(dy, c(s.weight ? mul(s.weight, s.invStd) : s.invStd)) : null,
      weight: n.weight ? sum(mul(dy, xhat()), [0, 2, 3]) : null,
      bias: n.bias ? sum(dy, [0, 2, 3]) : null,
    };
  },

  // ---- padding and resampling ---------------------------------------------
  reflectionPad2d: (dy: Tensor, s: { xShape: Shape; pads: Pads }) => ({
    x: reflectionPad2dBackward(dy, s.xShape, s.pads),
  }),
  zeroPad2d: (dy: Tensor, s: { xShape: Shape; pads: Pads }) => ({ x: zeroPad2dBackward(dy, s.xShape, s.pads) }),
  replicationPad2d: (dy: Tensor, s: { xShape: Shape; pads: Pads }) => ({
    x: replicationPad2dBackward(dy, s.xShape, s.pads),
  }),
  upsample2d: (dy: Tensor, s: { xShape: Shape; scale: number; mode: UpsampleMode }) => ({
    x: upsample2dBackward(dy, s.xShape, s.scale, s.mode),
  }),

  // ---- losses (mean-reduced, scalar output) ---------------------------------
  mseLoss: (dy: Tensor, s: { x: Tensor; t: Target }, n: Needs) => lossGrads(mseLossBackward(dy, s.x, s.t), n),
  l1Loss: (dy: Tensor, s: { x: Tensor; t: Target }, n: Needs) => lossGrads(l1LossBackward(dy, s.x, s.t), n),
  // ∂/∂t of max(x,0) − x·t + log(1+e^−|x|) is −x.
  bceWithLogitsLoss: (dy: Tensor, s: { x: Tensor; t: Target }, n: Needs) => ({
    x: n.x ? bceWithLogitsLossBackward(dy, s.x, s.t) : null,
    target: n.target ? binaryMap('bceWithLogitsLossBackwardTarget', '-p * a * b', s.x, dy, 1 / s.x.size) : null,
  }),
} as const;

/** What a generated unary rule reads: x, y or nothing, plus the parameter p when the op has one. */
export type UnarySavedOf<K extends UnaryGradOp> = {
  x: { x: Tensor };
  y: { y: Tensor };
  none: Record<never, never>;
}[UnarySaved<K>] &
  (UnaryArgs<K> extends [] ? Record<never, never> : { p: number });

type UnaryRules = { [K in UnaryGradOp]: (dy: Tensor, s: UnarySavedOf<K>) => { x: Tensor } };

/** One rule per elementwise record with a `grad`: dx = dy·f'(saved), by the generated backward kernel. */
function unaryRules(): UnaryRules {
  const rule = (op: UnaryGradOp) => {
    const g = (UNARY_OPS[op] as UnaryRecord).grad!;
    // f' = 1: dy itself is the gradient.
    if (g.saved === 'none' && g.wgsl === '1.0') return (dy: Tensor) => ({ x: dy });
    return (dy: Tensor, s: { x?: Tensor; y?: Tensor; p?: number }) => ({
      x: unaryBackward(op, dy, s.x ?? s.y ?? null, s.p),
    });
  };
  return Object.fromEntries(UNARY_GRAD_OPS.map((op) => [op, rule(op)])) as UnaryRules;
}

function normGrads(g: { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null }): Grads {
  return { x: g.dx, weight: g.dweight, bias: g.dbias };
}

/** mse and l1 depend on x − t only: the target's gradient is −dx. */
function lossGrads(dx: Tensor, n: Needs): Grads {
  return { x: n.x ? dx : null, target: n.target ? neg(dx) : null };
}

export type OpName = keyof typeof RULES;
/** What op K's forward must save for its rule (an empty object when the rule reads nothing). */
export type SavedOf<K extends OpName> =
  Parameters<(typeof RULES)[K]> extends [unknown, infer S, ...unknown[]] ? S : Record<string, never>;

type AnyRule = (dy: Tensor | (Tensor | null)[], saved: Record<string, unknown>, needs: Needs) => Grads;

export function ruleFor(op: string): AnyRule {
  const rule = (RULES as unknown as Record<string, AnyRule | undefined>)[op];
  if (!rule || !Object.hasOwn(RULES, op)) throw new Error(`autograd: no gradient rule for "${op}"`);
  return rule;
}
