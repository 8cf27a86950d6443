import type { UpsampleMode } from '@cg/kernels-wgsl';
import type { Rng } from '@cg/tensor-core';
import { F } from '../F.js';
import { type Conv2dArgs, type Padding2d, pads4 } from '../functional.js';
import type { Variable } from '../variable.js';
import { Conv2d } from './conv.js';
import { getDefaultRng } from './defaults.js';
import { fusionEnabled } from './fusion.js';
import { Module } from './module.js';
import { InstanceNorm2d } from './norm.js';

/** Layers without parameters, named as in PyTorch. */

export class ReflectionPad2d extends Module {
  /** [left, right, top, bottom], or one number for all four. */
  constructor(readonly padding: Padding2d) {
    super();
  }
  forward(x: Variable): Variable {
    return F.reflectionPad2d(x, this.padding);
  }
}

export class ZeroPad2d extends Module {
  constructor(readonly padding: Padding2d) {
    super();
  }
  forward(x: Variable): Variable {
    return F.zeroPad2d(x, this.padding);
  }
}

export class ReplicationPad2d extends Module {
  constructor(readonly padding: Padding2d) {
    super();
  }
  forward(x: Variable): Variable {
    return F.replicationPad2d(x, this.padding);
  }
}

export class ReLU extends Module {
  forward(x: Variable): Variable {
    return F.relu(x);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Variable): Variable {
    return F.leakyRelu(x, this.negativeSlope);
  }
}

export class Tanh extends Module {
  forward(x: Variable): Variable {
    return F.tanh(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Variable): Variable {
    return F.sigmoid(x);
  }
}

export class Identity extends Module {
  forward(x: Variable): Variable {
    return x;
  }
}

/** Inverted dropout in train mode, identity in eval; each forward draws a mask seed from `rng`. */
export class Dropout extends Module {
  private readonly rng: Rng | null;
  constructor(
    readonly p = 0.5,
    options: { rng?: Rng } = {},
  ) {
    super();
    this.rng = options.rng ?? null;
  }
  forward(x: Variable): Variable {
    if (!this.training || this.p === 0) return x;
    const seed = (this.rng ?? getDefaultRng()).nextU32();
    return F.dropout(x, this.p, true, seed);
  }
}

export class Upsample extends Module {
  constructor(
    readonly scaleFactor: number,
    readonly mode: UpsampleMode = 'nearest',
  ) {
    super();
  }
  forward(x: Variable): Variable {
    return F.upsample2d(x, this.scaleFactor, this.mode);
  }
}

/** Runs its children in order; they are named "0", "1", … as in PyTorch. */
export class Sequential extends Module {
  private readonly layers: Module[] = [];

  constructor(...modules: Module[]) {
    super();
    for (const m of modules) this.append(m);
  }

  /**
   * From a list of any length: spreading a long array into the constructor
   * overflows the call stack, so networks whose depth comes from a file or
   * an option build through this.
   */
  static from(modules: Iterable<Module>): Sequential {
    const seq = new Sequential();
    for (const m of modules) seq.append(m);
    return seq;
  }

  append(m: Module): this {
    this.registerModule(String(this.layers.length), m);
    this.layers.push(m);
    return this;
  }

  get length(): number {
    return this.layers.length;
  }

  at(i: number): Module {
    const m = this.layers.at(i);
    if (!m) throw new RangeError(`Sequential.at: index ${i} is out of range for ${this.layers.length} layers`);
    return m;
  }

  forward(x: Variable): Variable {
    return runLayers(this.layers, x, 0, this.layers.length);
  }

  /** Layers [start, end) on x, fused as forward() fuses them (a block that applies its first layer itself). */
  forwardRange(x: Variable, start = 0, end = this.layers.length): Variable {
    return runLayers(this.layers, x, start, end);
  }

  /**
   * skip + this.forward(x) (a residual block's output); with fusion on, a
   * closing InstanceNorm2d adds the skip in its own output write.
   */
  forwardAdd(x: Variable, skip: Variable): Variable {
    const last = this.layers.at(-1);
    if (fusionEnabled() && is(last, InstanceNorm2d) && (last as InstanceNorm2d).fusable()) {
      const norm = last as InstanceNorm2d;
      const h = runLayers(this.layers, x, 0, this.layers.length - 1);
      return F.instanceNorm2dAdd(h, skip, norm.weight, norm.bias, norm.eps);
    }
    return F.add(skip, this.forward(x));
  }
}

/**
 * The exact class, not a subclass: a subclass may override forward(), and a
 * fused chain would silently skip it.
 */
// biome-ignore lint/suspicious/noExplicitAny: any constructor
const is = (m: unknown, cls: abstract new (...args: any[]) => unknown): boolean =>
  m !== null && m !== undefined && Object.getPrototypeOf(m) === cls.prototype;

const PAD_MODES = [
  [ReflectionPad2d, 'reflect'],
  [ReplicationPad2d, 'replicate'],
  [ZeroPad2d, 'zeros'],
] as const;

/**
 * [pad?, Conv2d, Tanh | ReLU?] from layers[i] as one conv2d call: a pad module with equal left/right and
 * top/bottom pads before an unpadded conv becomes the conv's padding and padMode (folded into its index
 * math), a conv's own reflect/replicate paddingMode likewise, and a following Tanh or ReLU its epilogue.
 * Null when nothing would be saved, or when the unfused layers would reject the input (their errors stay).
 */
function fusedConv(
  layers: readonly Module[],
  i: number,
  end: number,
  x: Variable,
): { conv: Conv2d; args: Conv2dArgs; layers: number } | null {
  let j = i;
  let padMode: Conv2dArgs['padMode'] = 'zeros';
  let padding: [number, number] | null = null;
  const first = layers[i];
  const mode = PAD_MODES.find(([cls]) => is(first, cls))?.[1];
  if (mode && i + 1 < end && is(layers[i + 1], Conv2d)) {
    const [l, r, t, b] = pads4((first as ReflectionPad2d).padding);
    const c = layers[i + 1] as Conv2d;
    if (l !== r || t !== b || c.padding[0] !== 0 || c.padding[1] !== 0) return null;
    padMode = mode;
    padding = [t, l];
    j = i + 1;
  }
  if (!is(layers[j], Conv2d)) return null;
  const conv = layers[j] as Conv2d;
  if (!padding) {
    padding = conv.padding;
    padMode = conv.paddingMode;
  }
  // ReflectionPad2d's own check (pad < side) reports a too-small input; leave that to it.
  if (padMode === 'reflect' && (padding[0] >= x.shape[2] || padding[1] >= x.shape[3])) return null;
  const next = j + 1 < end ? layers[j + 1] : null;
  const epilogue = is(next, Tanh) ? 'tanh' : is(next, ReLU) ? 'relu' : 'none';
  const used = j - i + 1 + (epilogue === 'none' ? 0 : 1);
  if (used === 1 && (padMode === 'zeros' || (padding[0] === 0 && padding[1] === 0))) return null;
  return { conv, args: { stride: conv.stride, padding, padMode, epilogue }, layers: used };
}

/** layers[start..end) on x, each fusable chain (see fusion.ts) as one fused op. */
function runLayers(layers: readonly Module[], x: Variable, start: number, end: number): Variable {
  const fuse = fusionEnabled();
  let y = x;
  for (let i = start; i < end; i++) {
    const m = layers[i];
    const next = i + 1 < end ? layers[i + 1] : null;
    const conv = fuse ? fusedConv(layers, i, end, y) : null;
    if (conv) {
      y = F.conv2d(y, conv.conv.weight, conv.conv.bias, conv.args);
      i += conv.layers - 1;
      continue;
    }
    if (fuse && is(m, InstanceNorm2d) && (m as InstanceNorm2d).fusable()) {
      const norm = m as InstanceNorm2d;
      if (is(next, ReLU)) {
        y = F.instanceNorm2dAct(y, norm.weight, norm.bias, 'relu', 0, norm.eps);
        i++;
        continue;
      }
      // The fused backward reads the activation's mask from its output, which needs slope ≥ 0.
      const slope = is(next, LeakyReLU) ? (next as LeakyReLU).negativeSlope : -1;
      if (slope >= 0) {
        y = F.instanceNorm2dAct(y, norm.weight, norm.bias, 'leakyRelu', slope, norm.eps);
        i++;
        continue;
      }
    }
    y = m.forward(y);
  }
  return y;
}
