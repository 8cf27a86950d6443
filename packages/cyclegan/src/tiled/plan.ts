import { nn } from '@cg/autograd';
import { ArgumentError } from '@cg/tensor-core';
import { ResnetBlock, ResnetGenerator } from '../networks/resnet_generator.js';
import { UnetGenerator, UnetSkipConnectionBlock } from '../networks/unet_generator.js';
import type { FillMode } from './tile_math.js';

/** [left, right, top, bottom], as nn.ReflectionPad2d. */
export type Pads4 = [number, number, number, number];

/**
 * One layer of the streamed network. A padding module and the convolution
 * after it are one `conv` step: the tile is gathered from the host activation
 * with the pad's indexing, so no padded activation ever exists.
 */
export type Step =
  | { kind: 'conv'; conv: nn.Conv2d; fill: FillMode; pads: Pads4 }
  | { kind: 'convT'; conv: nn.ConvTranspose2d }
  | { kind: 'norm'; norm: nn.InstanceNorm2d | nn.BatchNorm2d }
  | { kind: 'relu' }
  | { kind: 'leakyRelu'; slope: number }
  | { kind: 'tanh' }
  | { kind: 'sigmoid' }
  | { kind: 'dropout'; dropout: nn.Dropout }
  | { kind: 'residual'; body: Step[] }
  /** UnetSkipConnectionBlock (not outermost): h = head(x); concat([h, body(h)]) along channels. */
  | { kind: 'skipConcat'; head: Step[]; body: Step[] };

function pads4(p: number | readonly number[]): Pads4 {
  return typeof p === 'number' ? [p, p, p, p] : [p[0], p[1], p[2], p[3]];
}

const unsupported = (m: nn.Module, why = '') =>
  new ArgumentError(
    `tiled: ${m.constructor.name} is not supported by the tiled executor${why} ` +
      '(supported: ResnetGenerator, UnetGenerator and Sequentials of pads, Conv2d, ConvTranspose2d, norms, activations, Dropout, ResnetBlock)',
  );

/** The generator as a flat list of steps (residual blocks nest), in forward order. */
export function planNetwork(net: nn.Module): Step[] {
  if (net instanceof ResnetGenerator) return planSequence(net.model, [...seqChildren(net.model)]);
  if (net instanceof UnetGenerator) return planSequence(net, [net.model]);
  if (net instanceof nn.Sequential) return planSequence(net, [...seqChildren(net)]);
  throw unsupported(net);
}

function* seqChildren(s: nn.Sequential): Iterable<nn.Module> {
  for (let i = 0; i < s.length; i++) yield s.at(i);
}

function planSequence(owner: nn.Module, mods: nn.Module[]): Step[] {
  const steps: Step[] = [];
  for (let i = 0; i < mods.length; i++) {
    const m = mods[i];
    if (m instanceof nn.ReflectionPad2d || m instanceof nn.ReplicationPad2d || m instanceof nn.ZeroPad2d) {
      const next = mods[i + 1];
      if (!(next instanceof nn.Conv2d) || next.padding[0] !== 0 || next.padding[1] !== 0) {
        throw unsupported(m, ` unless a Conv2d without padding follows it (in ${owner.constructor.name})`);
      }
      const fill: FillMode =
        m instanceof nn.ReflectionPad2d ? 'reflect' : m instanceof nn.ReplicationPad2d ? 'replicate' : 'zeros';
      steps.push({ kind: 'conv', conv: next, fill, pads: pads4(m.padding) });
      i++;
    } else if (m instanceof nn.Conv2d) {
      const [pH, pW] = m.padding;
      steps.push({ kind: 'conv', conv: m, fill: m.paddingMode, pads: [pW, pW, pH, pH] });
    } else if (m instanceof nn.ConvTranspose2d) {
      steps.push({ kind: 'convT', conv: m });
    } else if (m instanceof nn.InstanceNorm2d || m instanceof nn.BatchNorm2d) {
      steps.push({ kind: 'norm', norm: m });
    } else if (m instanceof nn.ReLU) {
      steps.push({ kind: 'relu' });
    } else if (m instanceof nn.LeakyReLU) {
      steps.push({ kind: 'leakyRelu', slope: m.negativeSlope });
    } else if (m instanceof nn.Tanh) {
      steps.push({ kind: 'tanh' });
    } else if (m instanceof nn.Sigmoid) {
      steps.push({ kind: 'sigmoid' });
    } else if (m instanceof nn.Dropout) {
      steps.push({ kind: 'dropout', dropout: m });
    } else if (m instanceof nn.Identity) {
      // nothing to run
    } else if (m instanceof ResnetBlock) {
      steps.push({ kind: 'residual', body: planSequence(m, [...seqChildren(m.conv_block)]) });
    } else if (m instanceof UnetSkipConnectionBlock) {
      const layers = [...seqChildren(m.model)];
      // The official forward: outermost is model(x); the others apply model[0] (an in-place LeakyReLU) once and reuse it as the skip.
      if ((m as unknown as { outermost: boolean }).outermost) steps.push(...planSequence(m, layers));
      else
        steps.push({
          kind: 'skipConcat',
          head: planSequence(m, layers.slice(0, 1)),
          body: planSequence(m, layers.slice(1)),
        });
    } else if (m instanceof nn.Sequential) {
      steps.push(...planSequence(m, [...seqChildren(m)]));
    } else {
      throw unsupported(m);
    }
  }
  return steps;
}

/** Activation shape [C, H, W] after a step, for planning budgets without running anything. */
export function stepOutputShape(step: Step, shape: readonly number[]): [number, number, number] {
  return walk([step], shape, () => {});
}

/**
 * Shapes through `steps` from `shape`; `visit(bytes, padded)` sees every
 * tensor the whole-image path would create (`padded`: a pad module's copy).
 */
function walk(steps: Step[], shape: readonly number[], visit: (bytes: number) => void): [number, number, number] {
  let [C, H, W] = shape;
  for (const step of steps) {
    switch (step.kind) {
      case 'conv': {
        const [, , kH, kW] = step.conv.weight.shape;
        const [l, r, t, b] = step.pads;
        const [sH, sW] = step.conv.stride;
        if (l || r || t || b) visit(4 * C * (H + t + b) * (W + l + r));
        [C, H, W] = [
          step.conv.outChannels,
          Math.floor((H + t + b - kH) / sH) + 1,
          Math.floor((W + l + r - kW) / sW) + 1,
        ];
        break;
      }
      case 'convT': {
        const [, , kH, kW] = step.conv.weight.shape;
        const [sH, sW] = step.conv.stride;
        const [pH, pW] = step.conv.padding;
        const [oH, oW] = step.conv.outputPadding;
        [C, H, W] = [step.conv.outChannels, (H - 1) * sH - 2 * pH + kH + oH, (W - 1) * sW - 2 * pW + kW + oW];
        break;
      }
      case 'residual':
        [C, H, W] = walk(step.body, [C, H, W], visit);
        break;
      case 'skipConcat': {
        const h = walk(step.head, [C, H, W], visit);
        const b = walk(step.body, h, visit);
        [C, H, W] = [h[0] + b[0], b[1], b[2]];
        break;
      }
      default:
        break;
    }
    visit(4 * C * H * W);
  }
  return [C, H, W];
}

/**
 * GPU bytes the whole-image path holds at its peak for a [C, H, W] input: it
 * keeps every intermediate until the forward returns (one tidy), padded
 * copies included; and the largest single tensor, which must fit one binding.
 */
export function wholeImageBytes(steps: Step[], shape: readonly number[]): { total: number; largest: number } {
  let total = 4 * shape[0] * shape[1] * shape[2];
  let largest = total;
  walk(steps, shape, (bytes) => {
    total += bytes;
    largest = Math.max(largest, bytes);
  });
  return { total, largest };
}

/**
 * Multiply-adds of the convolutions through `steps` from `shape`: the unit of
 * the tiled executor's progress, so a progress bar moves with the work.
 */
export function convWork(steps: Step[], shape: readonly number[]): number {
  let work = 0;
  const visit = (list: Step[], from: [number, number, number]): [number, number, number] => {
    let cur = from;
    for (const step of list) {
      if (step.kind === 'residual') cur = visit(step.body, cur);
      else if (step.kind === 'skipConcat') {
        const h = visit(step.head, cur);
        const b = visit(step.body, h);
        cur = [h[0] + b[0], b[1], b[2]];
      } else {
        const out = stepOutputShape(step, cur);
        if (step.kind === 'conv' || step.kind === 'convT') {
          const [, , kH, kW] = step.conv.weight.shape;
          // A transposed conv does per input pixel what a conv does per output pixel.
          const pixels = step.kind === 'conv' ? out[1] * out[2] : cur[1] * cur[2];
          work += pixels * kH * kW * cur[0] * out[0];
        }
        cur = out;
      }
    }
    return cur;
  };
  visit(steps, [shape[0], shape[1], shape[2]]);
  return work;
}

/**
 * Upper bound on the host bytes the tiled executor holds at once for a
 * [C, H, W] input: the activation being read, the one being written, every
 * skip input an enclosing residual or U-Net block keeps, and the copy an
 * in-place step makes of an activation a skip still shares.
 */
export function tiledHostBytes(steps: Step[], shape: readonly number[]): number {
  const bytes = (s: readonly number[]) => 4 * s[0] * s[1] * s[2];
  const visit = (
    list: Step[],
    from: [number, number, number],
    held: number,
  ): { out: [number, number, number]; peak: number } => {
    let cur = from;
    let peak = held + bytes(cur);
    for (const step of list) {
      if (step.kind === 'residual') {
        const r = visit(step.body, cur, held + bytes(cur));
        peak = Math.max(peak, r.peak);
        cur = r.out;
      } else if (step.kind === 'skipConcat') {
        const h = visit(step.head, cur, held);
        const b = visit(step.body, h.out, held + bytes(h.out));
        cur = [h.out[0] + b.out[0], b.out[1], b.out[2]];
        peak = Math.max(peak, h.peak, b.peak, held + bytes(h.out) + bytes(cur));
      } else {
        const out = stepOutputShape(step, cur);
        peak = Math.max(peak, held + bytes(cur) + bytes(out));
        cur = out;
      }
    }
    return { out: cur, peak };
  };
  return visit(steps, [shape[0], shape[1], shape[2]], 0).peak;
}
