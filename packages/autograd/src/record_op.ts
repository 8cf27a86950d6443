import type { Tensor } from '@cg/tensor-core';
import type { Needs, OpName, SavedOf } from './rules.js';
import { share } from './tape.js';
import { record, type Variable } from './variable.js';

/** Records `op` with one output; `save` runs only when a node is recorded. */
export function op<K extends OpName>(
  name: K,
  inputs: Readonly<Record<string, Variable | null | undefined>>,
  y: Tensor,
  save: (needs: Needs) => SavedOf<K>,
): Variable {
  return record(name, inputs, [y], save as (needs: Needs) => Record<string, unknown>)[0];
}

export const keepIf = (cond: boolean | undefined, t: Tensor): Tensor | null => (cond ? share(t) : null);
