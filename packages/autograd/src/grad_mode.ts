/**
 * Whether ops record a graph. A counter rather than a flag so nested
 * noGrad blocks compose; async functions keep it raised until they settle,
 * which is "async-safe enough": other work interleaved meanwhile also runs
 * without grad, as in any single-threaded tfjs-style engine.
 */
let disabled = 0;

export function isGradEnabled(): boolean {
  return disabled === 0;
}

/** Runs `fn` without recording a graph (PyTorch's `torch.no_grad()`). */
export function noGrad<T>(fn: () => T): T {
  disabled++;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    disabled--;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      disabled--;
    }) as T;
  }
  disabled--;
  return result;
}
