import { add } from '@cg/kernels-wgsl';
import { fmtShape, keep, LifetimeError, ShapeError, type Tensor, tidy } from '@cg/tensor-core';
import { type Grads, type Needs, ruleFor } from './rules.js';
import type { Variable } from './variable.js';

/**
 * One recorded op: its inputs that need a gradient, what its gradient rule
 * needs from the forward pass (`saved`), and the variables it produced.
 * Multi-output ops (split) get a list of output gradients.
 */
export class Node {
  /** What the rule reads; tensors in it are owned handles (views) freed after the backward step. */
  saved: Record<string, unknown> | null;
  readonly outputs: Variable[] = [];

  constructor(
    readonly op: string,
    /** Only the inputs that require grad; the rule skips the others. */
    readonly inputs: Readonly<Record<string, Variable>>,
    saved: Record<string, unknown>,
    readonly multiOutput: boolean,
  ) {
    this.saved = saved;
  }

  get freed(): boolean {
    return this.saved === null;
  }

  get needs(): Needs {
    const n: Record<string, boolean> = {};
    for (const k of Object.keys(this.inputs)) n[k] = true;
    return n;
  }

  savedTensors(): Tensor[] {
    const out: Tensor[] = [];
    for (const v of Object.values(this.saved ?? {})) {
      if (isTensor(v)) out.push(v);
      else if (Array.isArray(v)) for (const t of v) if (isTensor(t)) out.push(t);
    }
    return out;
  }

  /** Drops what the rule would have read; the node can no longer run backward. */
  free(): void {
    for (const t of this.savedTensors()) t.dispose();
    this.saved = null;
  }
}

export function isTensor(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && (v as { isTensor?: unknown }).isTensor === true;
}

/** A second handle on `t`'s storage, owned by whoever asked (a node's saved tensors, a detached variable). */
export function share(t: Tensor): Tensor {
  return t.reshape(t.shape);
}

/** Every node `root` depends on, each after all nodes that consume it (reverse topological order). */
export function reverseTopo(root: Node): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>([root]);
  // Iterative post-order DFS: deep generators would overflow a recursive one.
  const stack: [Node, Variable[]][] = [[root, Object.values(root.inputs)]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const next = top[1].pop();
    if (!next) {
      order.push(top[0]);
      stack.pop();
      continue;
    }
    const n = next.node;
    if (n && !seen.has(n)) {
      seen.add(n);
      stack.push([n, Object.values(n.inputs)]);
    }
  }
  return order.reverse();
}

/**
 * Reverse-mode sweep from `root` with upstream gradient `seed` (owned by
 * the sweep). Gradients of the same tensor from several consumers add up;
 * leaf gradients add to what earlier backward() calls left in `.grad`.
 *
 * Memory: each node's saved tensors are freed right after its step, and so
 * is the data of every non-leaf variable it produced (except the root):
 * the steps that still need a value hold their own handle on its storage.
 */
export function runBackward(root: Variable, seed: Tensor): void {
  const rootNode = root.node;
  if (!rootNode) {
    accumulateLeaf(root, seed);
    return;
  }
  const order = reverseTopo(rootNode);
  try {
    for (const node of order) {
      if (node.freed) {
        throw new LifetimeError(
          `backward: the graph behind this output was already freed by an earlier backward() (op "${node.op}"); ` +
            'run the forward pass again to build a new graph',
        );
      }
      ruleFor(node.op); // throws for an op without a rule, before anything is freed
    }
  } catch (e) {
    seed.dispose();
    throw e;
  }

  const pending = new Map<Node, (Tensor | null)[]>();
  pending.set(rootNode, slot(rootNode, root.outputIndex, seed, []));
  try {
    for (const node of order) {
      const dys = pending.get(node) ?? [];
      pending.delete(node);
      try {
        if (dys.some((d) => d)) step(node, dys, pending);
      } finally {
        for (const d of dys) d?.dispose();
        node.free();
        for (const v of node.outputs) if (v !== root) v.releaseData();
      }
    }
  } finally {
    // Only non-empty after a rule threw.
    for (const list of pending.values()) for (const d of list) d?.dispose();
  }
}

function step(node: Node, dys: (Tensor | null)[], pending: Map<Node, (Tensor | null)[]>): void {
  const rule = ruleFor(node.op);
  const upstream = node.multiOutput ? dys : (dys[0] as Tensor);
  const grads: Grads = tidy(() => rule(upstream, node.saved!, node.needs));
  // Rules may pass dy (or a saved tensor) straight through, or return one
  // tensor for two inputs: every consumer gets its own handle, made before
  // any of them is consumed.
  const borrowed = new Set<Tensor>([...node.savedTensors(), ...(dys.filter((d) => d) as Tensor[])]);
  const routed: [Variable, Tensor][] = [];
  for (const [name, g0] of Object.entries(grads)) {
    if (!g0) continue;
    const input = node.inputs[name];
    if (!input) {
      // A gradient nobody asked for.
      if (!borrowed.has(g0)) g0.dispose();
      continue;
    }
    routed.push([input, borrowed.has(g0) ? share(g0) : g0]);
    borrowed.add(g0);
  }
  for (const [input, g] of routed) {
    if (!sameShape(g.shape, input.shape)) {
      for (const [, t] of routed) t.dispose();
      throw new ShapeError(
        `autograd: rule for "${node.op}" returned a gradient of shape ${fmtShape(g.shape)} ` +
          `for an input of shape ${fmtShape(input.shape)}`,
      );
    }
  }
  for (const [input, g] of routed) {
    if (input.node) {
      pending.set(input.node, slot(input.node, input.outputIndex, g, pending.get(input.node) ?? []));
    } else {
      accumulateLeaf(input, g);
    }
  }
}

/** Adds `g` into the gradient list of `node` at output `index`. */
function slot(node: Node, index: number, g: Tensor, list: (Tensor | null)[]): (Tensor | null)[] {
  while (list.length < node.outputs.length) list.push(null);
  const old = list[index];
  if (old) {
    list[index] = add(old, g);
    old.dispose();
    g.dispose();
  } else {
    list[index] = g;
  }
  return list;
}

/** `.grad += g` for a leaf; gradients outlive every tidy scope (like parameters). */
function accumulateLeaf(leaf: Variable, g: Tensor): void {
  if (!leaf.requiresGrad) {
    g.dispose();
    return;
  }
  const old = leaf.grad;
  if (old) {
    leaf.grad = keep(add(old, g));
    old.dispose();
    g.dispose();
  } else {
    leaf.grad = keep(g);
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
