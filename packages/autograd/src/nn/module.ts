import { fmtShape, type Shape, sizeOf, type Tensor } from '@cg/tensor-core';
import { StateDictError } from '../errors.js';
import type { Variable } from '../variable.js';

/** A tensor on the CPU, as checkpoints hold them. */
export interface HostTensor {
  shape: readonly number[];
  data: Float32Array;
}

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/**
 * Base of every layer and network (PyTorch's nn.Module). Children,
 * parameters and buffers are registered by name in order, which gives the
 * PyTorch state_dict keys: `model.10.conv_block.1.weight`.
 */
export abstract class Module {
  /** Train mode (dropout active, batch statistics); eval() clears it. */
  training = true;
  private readonly params = new Map<string, Variable | null>();
  private readonly buffers = new Map<string, Tensor | null>();
  private readonly submodules = new Map<string, Module | null>();

  abstract forward(x: Variable): Variable;

  /** Registers a parameter (null: a declared but absent one, like a conv without bias). */
  registerParameter<T extends Variable | null>(name: string, p: T): T {
    this.checkName(name);
    this.params.set(name, p);
    return p;
  }

  /** Registers a buffer: state that is saved but not trained (running statistics). */
  registerBuffer<T extends Tensor | null>(name: string, t: T): T {
    this.checkName(name);
    this.buffers.set(name, t);
    return t;
  }

  /** Registers a child module under `name` (its keys get the prefix `name.`). */
  registerModule<M extends Module | null>(name: string, m: M): M {
    this.checkName(name);
    this.submodules.set(name, m);
    return m;
  }

  /** The tensor of this module's own buffer `name` (null when registered as absent). */
  getBuffer(name: string): Tensor | null {
    if (!this.buffers.has(name))
      throw new Error(`getBuffer: "${name}" is not a registered buffer of ${this.constructor.name}`);
    return this.buffers.get(name) ?? null;
  }

  /** Replaces a registered buffer's tensor, disposing the old one. */
  protected setBuffer(name: string, t: Tensor): void {
    if (!this.buffers.has(name)) throw new Error(`setBuffer: "${name}" is not a registered buffer`);
    const old = this.buffers.get(name);
    if (old !== t) old?.dispose();
    this.buffers.set(name, t);
  }

  private checkName(name: string): void {
    if (!name || name.includes('.')) throw new Error(`Module: invalid name "${name}" (non-empty, no dots)`);
    if (this.params.has(name) || this.buffers.has(name) || this.submodules.has(name)) {
      throw new Error(`Module: "${name}" is already registered on ${this.constructor.name}`);
    }
  }

  // ---- traversal ----------------------------------------------------------------

  *namedChildren(): IterableIterator<[string, Module]> {
    for (const [name, m] of this.submodules) if (m) yield [name, m];
  }

  children(): Module[] {
    return [...this.namedChildren()].map(([, m]) => m);
  }

  /**
   * This module and all below it, depth first (each module before its
   * children), with dotted names ('' for this one). An explicit stack, not
   * recursion: a network's depth may come from a checkpoint.
   */
  *namedModules(prefix = ''): IterableIterator<[string, Module]> {
    const stack: [string, Module][] = [[prefix, this]];
    for (let next = stack.pop(); next; next = stack.pop()) {
      const [name, m] = next;
      yield next;
      // Pushed in reverse so that they pop in registration order.
      const kids = [...m.namedChildren()];
      for (let i = kids.length - 1; i >= 0; i--) {
        const [k, child] = kids[i];
        stack.push([name ? `${name}.${k}` : k, child]);
      }
    }
  }

  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }

  /** Every parameter with its dotted name, in PyTorch's order. */
  *namedParameters(prefix = ''): IterableIterator<[string, Variable]> {
    for (const [name, m] of this.namedModules(prefix)) {
      for (const [k, p] of m.params) if (p) yield [name ? `${name}.${k}` : k, p];
    }
  }

  parameters(): Variable[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  *namedBuffers(prefix = ''): IterableIterator<[string, Tensor]> {
    for (const [name, m] of this.namedModules(prefix)) {
      for (const [k, b] of m.buffers) if (b) yield [name ? `${name}.${k}` : k, b];
    }
  }

  /** Calls `fn` on every module, children first then this one (PyTorch's Module.apply). */
  apply(fn: (m: Module) => void): this {
    // Post-order without recursion: pre-order with the children taken last-first, reversed.
    const order: Module[] = [];
    const stack: Module[] = [this];
    for (let m = stack.pop(); m; m = stack.pop()) {
      order.push(m);
      for (const [, child] of m.namedChildren()) stack.push(child);
    }
    for (let i = order.length - 1; i >= 0; i--) fn(order[i]);
    return this;
  }

  // ---- modes ----------------------------------------------------------------------

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Freezes (false) or unfreezes every parameter. Frozen parameters get no
   * gradient, but gradients still flow through the module to earlier ones.
   */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad = flag;
    return this;
  }

  /** Frees every parameter's gradient (set_to_none). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  numParameters(): number {
    let n = 0;
    for (const p of this.parameters()) n += sizeOf(p.shape);
    return n;
  }

  // ---- state ------------------------------------------------------------------------

  /**
   * Parameters and buffers by PyTorch key, in PyTorch's order (each module's
   * own parameters, then its buffers, then its children). The tensors are
   * the live ones: do not dispose them.
   */
  stateDict(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    // namedModules' pre-order gives exactly that order, without recursion.
    for (const [name, m] of this.namedModules(prefix)) {
      const dot = name ? `${name}.` : '';
      for (const [k, p] of m.params) if (p) out.set(dot + k, p.data);
      for (const [k, b] of m.buffers) if (b) out.set(dot + k, b);
    }
    return out;
  }

  /** stateDict() read back to the CPU. */
  async stateDictHost(): Promise<Map<string, HostTensor>> {
    const entries = [...this.stateDict()];
    const data = await Promise.all(entries.map(([, t]) => t.toArray()));
    return new Map(entries.map(([k, t], i) => [k, { shape: [...t.shape], data: data[i] }]));
  }

  /**
   * Copies `sd` into the parameters and buffers in place. Any key with the
   * wrong shape is an error; with `strict` (default) so is any missing or
   * unexpected key. Nothing is written unless all checks pass. One
   * StateDictError lists every problem.
   */
  loadStateDict(sd: ReadonlyMap<string, HostTensor>, { strict = true }: { strict?: boolean } = {}): LoadResult {
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !sd.has(k));
    const unexpectedKeys = [...sd.keys()].filter((k) => !own.has(k));
    const misshaped: string[] = [];
    for (const [k, t] of own) {
      const src = sd.get(k);
      if (!src) continue;
      if (!sameShape(src.shape, t.shape)) {
        misshaped.push(`${k}: expected ${fmtShape(t.shape)}, got ${fmtShape(src.shape)}`);
      } else if (src.data.length !== t.size) {
        misshaped.push(`${k}: shape ${fmtShape(t.shape)} needs ${t.size} values, got ${src.data.length}`);
      }
    }
    const problems: string[] = [];
    if (misshaped.length) problems.push(listing('mis-shaped keys', misshaped));
    if (strict && missingKeys.length) problems.push(listing('missing keys', missingKeys));
    if (strict && unexpectedKeys.length) problems.push(listing('unexpected keys', unexpectedKeys));
    if (problems.length) {
      throw new StateDictError(
        `loadStateDict: the state dict does not fit ${this.constructor.name}\n${problems.join('\n')}` +
          (strict && !misshaped.length ? '\n(pass { strict: false } to load the keys that match)' : ''),
      );
    }
    for (const [k, t] of own) {
      const src = sd.get(k);
      if (src && t.size > 0) t.device.write(t.buffer, src.data);
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Frees every parameter (and its gradient) and buffer of this module and its children. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const p of m.params.values()) p?.dispose();
      for (const b of m.buffers.values()) b?.dispose();
    }
  }

  /** tidy() keeps a module returned from a scope whole. */
  scopeTensors(): Tensor[] {
    const out: Tensor[] = [...this.stateDict().values()];
    for (const p of this.parameters()) if (p.grad) out.push(p.grad);
    return out;
  }
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function listing(what: string, items: string[], max = 20): string {
  const shown = items.slice(0, max).map((s) => `    ${s}`);
  if (items.length > max) shown.push(`    … and ${items.length - max} more`);
  return `  ${what} (${items.length}):\n${shown.join('\n')}`;
}
