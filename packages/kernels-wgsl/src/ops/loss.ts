import { fmtShape, ShapeError, Tensor } from '@cg/tensor-core';
import { flatGroupIndex, flatWorkgroups, runKernel, sameDevice } from '../runtime.js';
import { expectSameShape } from '../shape.js';
import { kahanAdd, workgroupSum } from '../wgsl_reduce.js';
import { sumAll } from './reduce.js';

/**
 * Mean-reduced losses of logits/predictions x against a target (a tensor of
 * x's shape, or a number such as the GAN labels 1 and 0, which is passed as
 * a uniform instead of being materialised).
 *
 * Forward: one fused pass computes each element's loss and a per-workgroup
 * partial (Kahan within a thread, a tree across the workgroup); sumAll then
 * combines the partials, so the error grows with log(n) like reduce.ts.
 * Backward: dx = dLoss · grad(x, t) / n, with dLoss read from its GPU
 * buffer (no readback between the loss and its gradient).
 *
 * `loss` and `grad` are WGSL expressions in x and t; `ref`/`gradRef` are the
 * float64 references written from the math. `grad` excludes the 1/n.
 */
interface LossDef {
  loss: string;
  grad: string;
  ref: (x: number, t: number) => number;
  gradRef: (x: number, t: number) => number;
}

/** softplus(z) = log(1 + e^z), evaluated without overflow. */
const softplus = (z: number) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));

export const LOSS_OPS = {
  mseLoss: {
    loss: '(x - t) * (x - t)',
    grad: '2.0 * (x - t)',
    ref: (x, t) => (x - t) ** 2,
    gradRef: (x, t) => 2 * (x - t),
  },
  l1Loss: {
    // WGSL's sign(0) is 0, PyTorch's l1 gradient at x = t is 0 too.
    loss: 'abs(x - t)',
    grad: 'sign(x - t)',
    ref: (x, t) => Math.abs(x - t),
    gradRef: (x, t) => Math.sign(x - t),
  },
  bceWithLogitsLoss: {
    // −t·log σ(x) − (1−t)·log(1−σ(x)) rewritten so nothing overflows or
    // cancels: exp only ever sees −|x|.
    loss: 'max(x, 0.0) - x * t + log1pSmall(exp(-abs(x)))',
    grad: 'sigmoid(x) - t',
    // The reference keeps the textbook form t·softplus(−x) + (1−t)·softplus(x).
    ref: (x, t) => t * softplus(-x) + (1 - t) * softplus(x),
    gradRef: (x, t) => 1 / (1 + Math.exp(-x)) - t,
  },
} satisfies Record<string, LossDef>;

export type LossOp = keyof typeof LOSS_OPS;

const HELPERS = /* wgsl */ `
// log(1 + z) for z in [0, 1] as 2·atanh(s), s = z / (2 + z) <= 1/3: the odd
// series converges fast enough that eight terms give f32 precision, and
// unlike log(1.0 + z) it keeps the value of tiny z (and does not depend on
// the accuracy of the adapter's log near 1).
fn log1pSmall(z: f32) -> f32 {
  let s = z / (2.0 + z);
  let w = s * s;
  let q = 1.0 / 13.0 + w * (1.0 / 15.0);
  let r = 1.0 / 5.0 + w * (1.0 / 7.0 + w * (1.0 / 9.0 + w * (1.0 / 11.0 + w * q)));
  return 2.0 * s * (1.0 + w * (1.0 / 3.0 + w * r));
}
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}`;

const WG = 256;
const PER_THREAD = 8;
const BWD_WG = 64;
const BWD_PER_THREAD = 4;

function checkArgs(op: string, x: Tensor, target: Tensor | number): void {
  if (typeof target !== 'number') {
    sameDevice(op, x, target);
    expectSameShape(op, x, target, ['x', 'target']);
  }
  if (x.size === 0) throw new ShapeError(`${op}: x is empty (got ${fmtShape(x.shape)}); the mean is undefined`);
}

/** Target binding and the WGSL that reads t, for a tensor or a number target. */
function targetParts(target: Tensor | number) {
  const isScalar = typeof target === 'number';
  return {
    key: isScalar ? 'scalar' : 'tensor',
    bindings: isScalar ? [] : ['ts'],
    read: isScalar ? 'u.t' : 'ts[i]',
    inputs: isScalar ? [] : [target],
    value: isScalar ? target : 0,
  };
}

/** The mean of op's per-element loss, as a tensor of shape []. */
export function meanLoss(op: LossOp, x: Tensor, target: Tensor | number): Tensor {
  checkArgs(op, x, target);
  const def: LossDef = LOSS_OPS[op];
  const tp = targetParts(target);
  const n = x.size;
  const groups = Math.ceil(n / (WG * PER_THREAD));
  const single = groups === 1;
  const out = Tensor.empty(x.device, single ? [] : [groups]);
  runKernel({
    op,
    key: tp.key,
    decl: { inputs: ['xs', ...tp.bindings], outputs: ['ys'], uniforms: { n: 'u32', t: 'f32', scale: 'f32' } },
    wgsl: () => /* wgsl */ `
${HELPERS}
${workgroupSum(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = ${flatGroupIndex};
  let base = g * ${WG * PER_THREAD}u + lid;
  var s = 0.0;
  var c = 0.0;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let i = base + k * ${WG}u;
    if (i < u.n) {
      let x = xs[i];
      let t = ${tp.read};
      ${kahanAdd('s', 'c', def.loss)}
    }
  }
  let total = treeSum(lid, s);
  if (lid == 0u && g < arrayLength(&ys)) { ys[g] = total * u.scale; }
}`,
    inputs: [x, ...tp.inputs],
    outputs: [out],
    uniforms: { n, t: tp.value, scale: single ? 1 / n : 1 },
    workgroups: flatWorkgroups(groups, 1),
  });
  if (single) return out;
  const mean = sumAll(out, 1 / n);
  out.dispose();
  return mean;
}

/** dx = dLoss · ∂loss/∂x for the mean-reduced loss; dLoss is a one-element GPU tensor. */
export function meanLossBackward(op: LossOp, dLoss: Tensor, x: Tensor, target: Tensor | number): Tensor {
  const name = `${op}Backward`;
  checkArgs(name, x, target);
  sameDevice(name, dLoss, x);
  if (dLoss.size !== 1) {
    throw new ShapeError(`${name}: dLoss must hold one element (expected shape [], got ${fmtShape(dLoss.shape)})`);
  }
  const def: LossDef = LOSS_OPS[op];
  const tp = targetParts(target);
  const n = x.size;
  const dx = Tensor.empty(x.device, x.shape);
  runKernel({
    op: name,
    key: tp.key,
    decl: { inputs: ['dl', 'xs', ...tp.bindings], outputs: ['dxs'], uniforms: { n: 'u32', t: 'f32', scale: 'f32' } },
    wgsl: () => /* wgsl */ `
${HELPERS}
@compute @workgroup_size(${BWD_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = ((${flatGroupIndex}) * ${BWD_WG}u + lid) * ${BWD_PER_THREAD}u;
  let k = dl[0] * u.scale;
  for (var j = 0u; j < ${BWD_PER_THREAD}u; j++) {
    let i = base + j;
    if (i < u.n) {
      let x = xs[i];
      let t = ${tp.read};
      dxs[i] = k * (${def.grad});
    }
  }
}`,
    inputs: [dLoss, x, ...tp.inputs],
    outputs: [dx],
    uniforms: { n, t: tp.value, scale: 1 / n },
    workgroups: flatWorkgroups(n, BWD_WG * BWD_PER_THREAD),
  });
  return dx;
}

/** mean((x − t)²) */
export const mseLoss = (x: Tensor, target: Tensor | number): Tensor => meanLoss('mseLoss', x, target);
/** dx = dLoss · 2(x − t)/n */
export const mseLossBackward = (dLoss: Tensor, x: Tensor, target: Tensor | number): Tensor =>
  meanLossBackward('mseLoss', dLoss, x, target);
/** mean(|x − t|) */
export const l1Loss = (x: Tensor, target: Tensor | number): Tensor => meanLoss('l1Loss', x, target);
/** dx = dLoss · sign(x − t)/n, sign(0) = 0 */
export const l1LossBackward = (dLoss: Tensor, x: Tensor, target: Tensor | number): Tensor =>
  meanLossBackward('l1Loss', dLoss, x, target);
/** mean(max(x, 0) − x·t + log(1 + e^−|x|)): binary cross-entropy of sigmoid(x), from logits. */
export const bceWithLogitsLoss = (x: Tensor, target: Tensor | number): Tensor =>
  meanLoss('bceWithLogitsLoss', x, target);
/** dx = dLoss · (sigmoid(x) − t)/n */
export const bceWithLogitsLossBackward = (dLoss: Tensor, x: Tensor, target: Tensor | number): Tensor =>
  meanLossBackward('bceWithLogitsLoss', dLoss, x, target);

type RefTarget = ArrayLike<number> | number;

function refTarget(op: string, x: ArrayLike<number>, target: RefTarget): (i: number) => number {
  if (typeof target === 'number') return () => target;
  if (target.length !== x.length) throw new Error(`${op}Ref: x has ${x.length} elements, target ${target.length}`);
  return (i) => target[i];
}

/** Float64 reference of the mean loss. */
export function meanLossRef(op: LossOp, x: ArrayLike<number>, target: RefTarget): number {
  const f: LossDef['ref'] = LOSS_OPS[op].ref;
  const t = refTarget(op, x, target);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += f(x[i], t(i));
  return s / x.length;
}

/** Float64 reference of dx for upstream gradient dLoss. */
export function meanLossBackwardRef(op: LossOp, dLoss: number, x: ArrayLike<number>, target: RefTarget): Float64Array {
  const f: LossDef['gradRef'] = LOSS_OPS[op].gradRef;
  const t = refTarget(op, x, target);
  const n = x.length;
  return Float64Array.from(x, (v, i) => (dLoss * f(v, t(i))) / n);
}

export const mseLossRef = (x: ArrayLike<number>, target: RefTarget) => meanLossRef('mseLoss', x, target);
export const mseLossBackwardRef = (dLoss: number, x: ArrayLike<number>, target: RefTarget) =>
  meanLossBackwardRef('mseLoss', dLoss, x, target);
export const l1LossRef = (x: ArrayLike<number>, target: RefTarget) => meanLossRef('l1Loss', x, target);
export const l1LossBackwardRef = (dLoss: number, x: ArrayLike<number>, target: RefTarget) =>
  meanLossBackwardRef('l1Loss', dLoss, x, target);
export const bceWithLogitsLossRef = (x: ArrayLike<number>, target: RefTarget) =>
  meanLossRef('bceWithLogitsLoss', x, target);
export const bceWithLogitsLossBackwardRef = (dLoss: number, x: ArrayLike<number>, target: RefTarget) =>
  meanLossBackwardRef('bceWithLogitsLoss', dLoss, x, target);
