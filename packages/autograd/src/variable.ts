import { type Device, fmtShape, keep, LifetimeError, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import { isGradEnabled } from './grad_mode.js';
import type { Needs } from './rules.js';
import { Node, runBackward, sameShape, share } from './tape.js';

export interface VariableOptions {
  requiresGrad?: boolean;
}

/**
 * A tensor in the autograd graph: its value (`data`), the gradient that
 * backward() accumulated into it (`grad`, leaves only), and the node that
 * produced it (`node`, null for leaves).
 *
 * Ownership: a variable owns its `data` and `grad` handles; dispose() frees
 * both. Tensors are immutable except where an optimizer or loadStateDict
 * writes parameters in place.
 */
export class Variable {
  /** The gradient accumulated by backward() (leaves that require grad only); null until then. */
  grad: Tensor | null = null;
  /** Leaves: whether backward() computes a gradient for it. Op outputs: whether a graph was recorded. */
  requiresGrad: boolean;
  readonly shape: Shape;
  /** The op that produced this variable; null for leaves and for results computed without a graph. */
  node: Node | null = null;
  /** Which output of `node` this is (multi-output ops such as split). */
  outputIndex = 0;
  private value: Tensor | null;
  /** What freed `data` early: 'backward()' or 'freeGraph()'. */
  private freedBy: string | null = null;

  constructor(data: Tensor, options: VariableOptions = {}) {
    this.value = data;
    this.shape = data.shape;
    this.requiresGrad = options.requiresGrad ?? false;
  }

  get data(): Tensor {
    if (!this.value) {
      const what = `variable ${fmtShape(this.shape)}${this.node ? ` (output of "${this.node.op}")` : ''}`;
      throw new LifetimeError(
        this.freedBy
          ? `${what} was freed by ${this.freedBy}; call .detach() before ${this.freedBy} to keep it`
          : `${what} was used after dispose()`,
      );
    }
    return this.value;
  }

  get isLeaf(): boolean {
    return this.node === null;
  }

  get device(): Device {
    return this.data.device;
  }

  get size(): number {
    return this.data.size;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Whether `data` is gone (freed by backward() or disposed). */
  get isFreed(): boolean {
    return this.value === null || this.value.isDisposed;
  }

  /**
   * Computes gradients of this variable with respect to every leaf that
   * requires grad, adding them to their `.grad`. A non-scalar output needs
   * `grad` (same shape; the caller keeps ownership of it). Frees the graph
   * (saved tensors and intermediate values) as it goes.
   */
  backward(grad?: Tensor): void {
    if (!this.requiresGrad) {
      throw new LifetimeError(
        `backward: this variable ${fmtShape(this.shape)} does not require grad and has no graph ` +
          '(were all inputs constants, or was it computed inside noGrad()?)',
      );
    }
    const data = this.data;
    let seed: Tensor;
    if (grad) {
      if (!sameShape(grad.shape, this.shape)) {
        throw new ShapeError(
          `backward: the gradient ${fmtShape(grad.shape)} must have the output's shape ${fmtShape(this.shape)}`,
        );
      }
      seed = share(grad);
    } else {
      if (data.size !== 1) {
        throw new ShapeError(
          `backward: output ${fmtShape(this.shape)} is not a scalar; pass its upstream gradient: y.backward(dy)`,
        );
      }
      seed = Tensor.full(data.device, this.shape, 1);
    }
    runBackward(this, seed);
  }

  /** A new leaf sharing this value's storage, outside the graph; it survives backward(). */
  detach(): Variable {
    return new Variable(share(this.data));
  }

  /** Frees `.grad` (PyTorch's zero_grad with set_to_none). */
  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  /** Frees data and grad. The graph behind it stays until backward(), freeGraph() or the enclosing tidy. */
  dispose(): void {
    this.value?.dispose();
    this.value = null;
    this.zeroGrad();
  }

  /**
   * Frees the graph behind this variable as backward() would (saved tensors
   * and intermediate values; this variable's own value stays), for a graph
   * that will never run backward. tidy() frees what it drops the same way.
   */
  freeGraph(): void {
    if (!this.node) return;
    for (const node of graphNodes(this.node)) {
      node.free();
      for (const v of node.outputs) if (v !== this) v.releaseData('freeGraph()');
    }
  }

  /** What tidy() must keep when this variable escapes a scope: its value, its grad and its graph's saved tensors. */
  scopeTensors(): Tensor[] {
    const out: Tensor[] = [];
    if (this.value && !this.value.isDisposed) out.push(this.value);
    if (this.grad) out.push(this.grad);
    if (this.node) for (const node of graphNodes(this.node)) out.push(...node.savedTensors());
    return out;
  }

  async toArray(): Promise<Float32Array> {
    return this.data.toArray();
  }

  async item(): Promise<number> {
    return this.data.item();
  }

  toString(): string {
    return `Variable${fmtShape(this.shape)}${this.node ? ` <${this.node.op}>` : ''}`;
  }

  /** @internal backward() frees intermediate values once no step needs them. */
  releaseData(by = 'backward()'): void {
    if (!this.value) return;
    this.value.dispose();
    this.value = null;
    this.freedBy = by;
  }
}

function graphNodes(root: Node): Set<Node> {
  const seen = new Set<Node>([root]);
  const stack = [root];
  while (stack.length) {
    const n = stack.pop()!;
    for (const v of Object.values(n.inputs)) {
      if (v.node && !seen.has(v.node)) {
        seen.add(v.node);
        stack.push(v.node);
      }
    }
  }
  return seen;
}

/** Wraps `data` (taking ownership) as a leaf; a constant unless requiresGrad. */
export function variable(data: Tensor, options: VariableOptions = {}): Variable {
  return new Variable(data, options);
}

/** A trainable leaf (requiresGrad), kept out of every tidy scope: its owner (a module) disposes it. */
export function parameter(data: Tensor): Variable {
  return new Variable(keep(data), { requiresGrad: true });
}

/**
 * Wraps the outputs of an op computed on the inputs' data. When grad mode is
 * on and some input requires grad, records a node: `save(needs)` then returns
 * what the op's gradient rule reads (tensors in it must be handles the node
 * owns, e.g. share(x.data)); it is not called otherwise.
 */
export function record(
  op: string,
  inputs: Readonly<Record<string, Variable | null | undefined>>,
  outputs: readonly Tensor[],
  save: (needs: Needs) => Record<string, unknown>,
  multiOutput = outputs.length !== 1,
): Variable[] {
  const tracked: Record<string, Variable> = {};
  let any = false;
  if (isGradEnabled()) {
    for (const [name, v] of Object.entries(inputs)) {
      if (v?.requiresGrad) {
        tracked[name] = v;
        any = true;
      }
    }
  }
  if (!any) return outputs.map((t) => new Variable(t));
  const node = new Node(op, tracked, {}, multiOutput);
  node.saved = save(node.needs);
  return outputs.map((t, i) => {
    const v = new Variable(t, { requiresGrad: true });
    v.node = node;
    v.outputIndex = i;
    node.outputs.push(v);
    return v;
  });
}
