import { ArgumentError, type Tensor } from '@cg/tensor-core';
import { flatGroupIndex, flatWorkgroups, runKernel, sameDevice } from '../runtime.js';
import { expectSameShape } from '../shape.js';

/**
 * Fused Adam update, exactly torch.optim.Adam's single-tensor (non-amsgrad,
 * non-maximize) formula:
 *   g = grad + wd·p                                (only when wd ≠ 0)
 *   m = β1·m + (1 − β1)·g
 *   v = β2·v + (1 − β2)·g²
 *   p = p − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
 * The step-dependent factors are computed in float64 on the CPU and passed
 * as uniforms, so the kernel does no pow() and one dispatch updates p, m
 * and v in place.
 */
export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, already incremented for this update. */
  step: number;
}

const WG = 64;
const PER_THREAD = 4;

function checkHyper(h: AdamHyper): void {
  const bad = (what: string, v: number) => new ArgumentError(`adamStep: ${what}, got ${v}`);
  if (!(h.lr >= 0)) throw bad('lr must be >= 0', h.lr);
  if (!(h.beta1 >= 0 && h.beta1 < 1)) throw bad('beta1 must be in [0, 1)', h.beta1);
  if (!(h.beta2 >= 0 && h.beta2 < 1)) throw bad('beta2 must be in [0, 1)', h.beta2);
  if (!(h.eps >= 0)) throw bad('eps must be >= 0', h.eps);
  if (!(h.weightDecay >= 0)) throw bad('weightDecay must be >= 0', h.weightDecay);
  if (!(Number.isInteger(h.step) && h.step >= 1)) throw bad('step must be an integer >= 1 (1-based)', h.step);
}

/** Updates param, m and v in place from grad (grad is not modified). */
export function adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, h: AdamHyper): void {
  sameDevice('adamStep', param, grad, m, v);
  expectSameShape('adamStep', param, grad, ['param', 'grad']);
  expectSameShape('adamStep', param, m, ['param', 'm']);
  expectSameShape('adamStep', param, v, ['param', 'v']);
  checkHyper(h);
  const decay = h.weightDecay !== 0;
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  runKernel({
    op: 'adamStep',
    key: decay ? 'wd' : '',
    // param and its moments are updated in place: read_write outputs.
    decl: {
      inputs: ['gs'],
      outputs: ['ps', 'ms', 'vs'],
      uniforms: {
        n: 'u32',
        beta1: 'f32',
        oneMinusBeta1: 'f32',
        beta2: 'f32',
        oneMinusBeta2: 'f32',
        wd: 'f32',
        stepSize: 'f32',
        sqrtBc2: 'f32',
        eps: 'f32',
      },
    },
    wgsl: () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = ((${flatGroupIndex}) * ${WG}u + lid) * ${PER_THREAD}u;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let i = base + k;
    if (i < u.n) {
      let p = ps[i];
      var g = gs[i];
      ${decay ? 'g = g + u.wd * p;' : ''}
      let m = u.beta1 * ms[i] + u.oneMinusBeta1 * g;
      let v = u.beta2 * vs[i] + u.oneMinusBeta2 * g * g;
      ms[i] = m;
      vs[i] = v;
      ps[i] = p - u.stepSize * (m / (sqrt(v) / u.sqrtBc2 + u.eps));
    }
  }
}`,
    inputs: [grad],
    outputs: [param, m, v],
    uniforms: {
      n: param.size,
      beta1: h.beta1,
      oneMinusBeta1: 1 - h.beta1,
      beta2: h.beta2,
      oneMinusBeta2: 1 - h.beta2,
      wd: h.weightDecay,
      stepSize: h.lr / bc1,
      sqrtBc2: Math.sqrt(bc2),
      eps: h.eps,
    },
    workgroups: flatWorkgroups(param.size, WG * PER_THREAD),
  });
}

/** Float64 reference of one step, in place on param, m and v. */
export function adamStepRef(
  param: Float64Array,
  grad: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  h: AdamHyper,
): void {
  checkHyper(h);
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] + h.weightDecay * param[i];
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps;
    param[i] -= (h.lr / bc1) * (m[i] / denom);
  }
}
