// The errors of the application layer: files, data and options a user controls. Each names the file,
// key or option and says what to do; the CLI prints it as one line (cli-errors.ts).
import { StateDictError } from '@cg/autograd';
import { CgError } from '@cg/tensor-core';

/** A checkpoint file is unreadable, unsafe, or does not match the model. */
export class CheckpointError extends CgError {
  override name = 'CheckpointError';
  override readonly code: string = 'CHECKPOINT';
}

/** A dataset folder or image cannot be used. */
export class DataError extends CgError {
  override name = 'DataError';
  override readonly code: string = 'DATA';
}

/** An option has a value that cannot work. */
export class OptionError extends CgError {
  override name = 'OptionError';
  override readonly code: string = 'OPTION';
}

/** Another `train` holds this run's lock. */
export class RunLockedError extends CgError {
  override name = 'RunLockedError';
  override readonly code: string = 'RUN_LOCKED';
}

/**
 * Runs `load` (a loadStateDict) and names `source` when the weights do not fit: autograd knows the
 * keys but not which file they came from.
 */
export function loadingFrom<T>(source: string, load: () => T, hint = ''): T {
  try {
    return load();
  } catch (e) {
    if (e instanceof StateDictError) throw new CheckpointError(`${source}: ${e.message}${hint}`);
    throw e;
  }
}
