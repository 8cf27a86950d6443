import type { Norm } from '../options.js';
import type { GraphBuilder } from './graph.js';
import type { OnnxMode } from './options.js';

/** torch's eps for BatchNorm2d and InstanceNorm2d, and ours. */
const EPS = 1e-5;

/**
 * One emitter per PyTorch layer, each taking its torch key prefix (`model.10.conv_block.1`) so the
 * initializers keep torch's names. `x` is the name of the input value; each returns its output's.
 */
export interface Layers {
  g: GraphBuilder;
  mode: OnnxMode;
}

export interface ConvOptions {
  inC: number;
  outC: number;
  k: number;
  stride?: number;
  padding?: number;
  bias: boolean;
}

export function conv2d(l: Layers, x: string, key: string, o: ConvOptions): string {
  const inputs = [x, l.g.weight(`${key}.weight`, [o.outC, o.inC, o.k, o.k])];
  if (o.bias) inputs.push(l.g.weight(`${key}.bias`, [o.outC]));
  const p = o.padding ?? 0;
  const s = o.stride ?? 1;
  return l.g.node('Conv', inputs, { kernel_shape: [o.k, o.k], strides: [s, s], pads: [p, p, p, p] }, key);
}

/** Weights `[inC, outC, k, k]`, as in torch; output side (H − 1)·stride − 2·padding + k + outputPadding. */
export function convTranspose2d(
  l: Layers,
  x: string,
  key: string,
  o: ConvOptions & { stride: number; padding: number; outputPadding: number },
): string {
  const inputs = [x, l.g.weight(`${key}.weight`, [o.inC, o.outC, o.k, o.k])];
  if (o.bias) inputs.push(l.g.weight(`${key}.bias`, [o.outC]));
  const p = o.padding;
  const attrs = { kernel_shape: [o.k, o.k], strides: [o.stride, o.stride], pads: [p, p, p, p] };
  const op = o.outputPadding;
  return l.g.node('ConvTranspose', inputs, op ? { ...attrs, output_padding: [op, op] } : attrs, key);
}

/** ReflectionPad2d(p) on `[N, C, H, W]`: ONNX pads are all begins, then all ends. */
export function reflectionPad2d(l: Layers, x: string, p: number, key: string): string {
  return l.g.node('Pad', [x, l.g.int64Const(`pads${p}`, [0, 0, p, p, 0, 0, p, p])], { mode: 'reflect' }, key);
}

export const relu = (l: Layers, x: string, key: string) => l.g.node('Relu', [x], {}, key);
export const leakyRelu = (l: Layers, x: string, key: string) =>
  l.g.node('LeakyRelu', [x], { alpha: { float: 0.2 } }, key);
export const tanh = (l: Layers, x: string, key: string) => l.g.node('Tanh', [x], {}, key);

/** networks.get_norm_layer's layer at `key` over `c` channels. */
export function norm2d(l: Layers, x: string, norm: Norm, key: string, c: number): string {
  if (norm === 'none') return x;
  if (norm === 'instance') {
    // affine=False, track_running_stats=False: per-sample, per-channel statistics in either mode.
    const scale = l.g.floatConst('ones', [c], new Float32Array(c).fill(1));
    const bias = l.g.floatConst('zeros', [c], new Float32Array(c));
    return l.g.node('InstanceNormalization', [x, scale, bias], { epsilon: { float: EPS } }, key);
  }
  const w = l.g.weight(`${key}.weight`, [c]);
  const b = l.g.weight(`${key}.bias`, [c]);
  l.g.ignore(`${key}.num_batches_tracked`);
  if (l.mode === 'eval') {
    const mean = l.g.weight(`${key}.running_mean`, [c]);
    const variance = l.g.weight(`${key}.running_var`, [c]);
    return l.g.node('BatchNormalization', [x, w, b, mean, variance], { epsilon: { float: EPS } }, key);
  }
  // Train mode: the batch's own statistics, y = (x − mean) / sqrt(var + eps) · w + b, with mean and
  // the biased variance over N, H, W (what torch normalises with). The running stats are unused.
  l.g.ignore(`${key}.running_mean`);
  l.g.ignore(`${key}.running_var`);
  const axes = { axes: [0, 2, 3], keepdims: 1 };
  const mean = l.g.node('ReduceMean', [x], axes, `${key}/mean`);
  const d = l.g.node('Sub', [x, mean], {}, `${key}/centered`);
  const variance = l.g.node('ReduceMean', [l.g.node('Mul', [d, d], {}, `${key}/sq`)], axes, `${key}/var`);
  const eps = l.g.floatConst('eps', [], [EPS]);
  const std = l.g.node('Sqrt', [l.g.node('Add', [variance, eps], {}, `${key}/var_eps`)], {}, `${key}/std`);
  const shape = l.g.int64Const('channel_shape', [1, -1, 1, 1]);
  const w4 = l.g.node('Reshape', [w, shape], {}, `${key}/weight4d`);
  const b4 = l.g.node('Reshape', [b, shape], {}, `${key}/bias4d`);
  const normed = l.g.node('Div', [d, std], {}, `${key}/normed`);
  return l.g.node('Add', [l.g.node('Mul', [normed, w4], {}, `${key}/scaled`), b4], {}, key);
}
