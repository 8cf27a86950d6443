import type { UpsampleMode } from '@cg/kernels-wgsl';
import type { Rng } from '@cg/tensor-core';
import { F } from '../F.js';
import type { Padding2d } from '../functional.js';
import type { Variable } from '../variable.js';
import { getDefaultRng } from './defaults.js';
import { Module } from './module.js';

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
    let y = x;
    for (const m of this.layers) y = m.forward(y);
    return y;
  }
}
