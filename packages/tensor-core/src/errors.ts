/** Base class of every error this project throws on purpose. */
export class CgError extends Error {
  // Spelled out, not new.target.name: bundlers rename classes.
  override name = 'CgError';
}

/** A tensor had the wrong shape, size or rank for an op. */
export class ShapeError extends CgError {
  override name = 'ShapeError';
}

/** No adapter, device lost, or a WebGPU validation/out-of-memory error. */
export class DeviceError extends CgError {
  override name = 'DeviceError';
}

/** A tensor was used after dispose(), or on a different device. */
export class LifetimeError extends CgError {
  override name = 'LifetimeError';
}

/** A checkpoint file is unreadable, unsafe, or does not match the model. */
export class CheckpointError extends CgError {
  override name = 'CheckpointError';
}

/** A dataset folder or image cannot be used. */
export class DataError extends CgError {
  override name = 'DataError';
}

/** An option has a value that cannot work. */
export class OptionError extends CgError {
  override name = 'OptionError';
}

/** `[1,3,64,64]` — the way shapes appear in every message. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
