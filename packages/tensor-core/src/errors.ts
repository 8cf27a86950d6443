// The errors of the tensor layer. Each package owns the errors of its own domain: autograd has
// StateDictError, @cg/cyclegan has CheckpointError, DataError and OptionError. All extend CgError, whose
// `code` is what a program tests (a CLI decides by class or code, never by message text).

/** Base class of every error this project throws on purpose. */
export class CgError extends Error {
  // Spelled out, not new.target.name: bundlers rename classes.
  override name = 'CgError';
  /** Stable, machine-readable kind: 'SHAPE', 'DEVICE', 'CHECKPOINT', … */
  readonly code: string = 'CG_ERROR';
}

/** A tensor had the wrong shape, size or rank for an op. */
export class ShapeError extends CgError {
  override name = 'ShapeError';
  override readonly code: string = 'SHAPE';
}

/** No adapter, device lost, or a WebGPU validation/out-of-memory error. */
export class DeviceError extends CgError {
  override name = 'DeviceError';
  override readonly code: string = 'DEVICE';
}

/** A tensor was used after dispose(), or on a different device. */
export class LifetimeError extends CgError {
  override name = 'LifetimeError';
  override readonly code: string = 'LIFETIME';
}

/** A function got an argument value that cannot work (a probability outside [0, 1], a negative rate). */
export class ArgumentError extends CgError {
  override name = 'ArgumentError';
  override readonly code: string = 'ARGUMENT';
}

/** `[1,3,64,64]` — the way shapes appear in every message. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
