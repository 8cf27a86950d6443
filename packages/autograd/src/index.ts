/**
 * @cg/autograd: reverse-mode autograd over @cg/kernels-wgsl, PyTorch-style.
 *
 *   import { Adam, F, nn, noGrad, Variable } from '@cg/autograd';
 */
export { StateDictError } from './errors.js';
export { F } from './F.js';
export type { Padding2d } from './functional.js';
export { isGradEnabled, noGrad } from './grad_mode.js';
export { manualSeed } from './nn/defaults.js';
export * as nn from './nn/index.js';
export type { HostTensor, LoadResult } from './nn/module.js';
export { Adam, type AdamOptions, type AdamParamState, type AdamStateDict } from './optim/adam.js';
export { type Grads, type Needs, type OpName, RULES, ruleFor, type SavedOf, type UnarySavedOf } from './rules.js';
export { Node } from './tape.js';
export { parameter, record, Variable, type VariableOptions, variable } from './variable.js';
