import type { Tensor } from './tensor.js';

/**
 * Scopes collect every tensor created while they are open, so a block of
 * work can free its temporaries in one place (tfjs's `tidy`).
 */
const stack: Set<Tensor>[] = [];

/** @internal Called by the Tensor constructor. */
export function track(t: Tensor): void {
  stack[stack.length - 1]?.add(t);
}

/** @internal Called by dispose(). */
export function untrack(t: Tensor): void {
  stack[stack.length - 1]?.delete(t);
}

/**
 * Runs `fn` and disposes every tensor created inside it, except the tensors
 * reachable from its return value (a tensor, or arrays/plain objects of them)
 * and tensors passed to `keep()`. Those move to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  stack.pop();
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    for (const t of scope) t.dispose();
    throw new TypeError('tidy(fn): fn returned a Promise; tidy only works for synchronous work');
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors, 0);
  const outer = stack[stack.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) outer?.add(t);
    else t.dispose();
  }
  return result;
}

/**
 * @internal A scope for async work, which `tidy` rejects (Device.compileAhead): it collects the tensors
 * created until `closeScope`, which disposes them all. Only sound while nothing else creates tensors in
 * between, i.e. while the work awaits nothing but already-settled promises.
 */
export function openScope(): Set<Tensor> {
  const scope = new Set<Tensor>();
  stack.push(scope);
  return scope;
}

/** @internal Closes a scope from `openScope` (by identity, so an unbalanced inner scope cannot pop it) and disposes its tensors. */
export function closeScope(scope: Set<Tensor>): void {
  const i = stack.lastIndexOf(scope);
  if (i >= 0) stack.splice(i, 1);
  for (const t of scope) t.dispose();
}

/** Exempts `t` from disposal by the scopes open now; the caller owns it. */
export function keep<T extends Tensor>(t: T): T {
  for (const scope of stack) scope.delete(t);
  return t;
}

function collectTensors(value: unknown, out: Set<Tensor>, depth: number): void {
  if (value === null || typeof value !== 'object' || depth > 8) return;
  if ((value as { isTensor?: boolean }).isTensor === true) {
    out.add(value as Tensor);
    return;
  }
  // Wrappers (e.g. autograd variables) name the tensors they own.
  const owned = (value as { scopeTensors?: () => Iterable<Tensor> }).scopeTensors;
  if (typeof owned === 'function') {
    for (const t of owned.call(value)) out.add(t);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collectTensors(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, depth + 1);
  }
}
