// The errors autograd owns. The tensor layer's (ShapeError, LifetimeError, ArgumentError, …) come from
// @cg/tensor-core; a file's name is not known here, so callers that load files wrap these with it.
import { CgError } from '@cg/tensor-core';

/** A state dict (module weights, optimizer moments) does not fit what it is loaded into. */
export class StateDictError extends CgError {
  override name = 'StateDictError';
  override readonly code: string = 'STATE_DICT';
}
